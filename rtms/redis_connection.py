"""The one Redis client of this process (leases, heartbeats, stop messages, health)."""

import functools

import redis
from django.conf import settings


@functools.cache
def redis_client():
    return redis.Redis.from_url(
        settings.REDIS_URL, socket_timeout=2, socket_connect_timeout=2, health_check_interval=10
    )


def key(*parts):
    """A Redis key in this deployment's namespace."""
    return ":".join((settings.REDIS_NAMESPACE, *map(str, parts)))
