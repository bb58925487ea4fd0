"""Placement against the real Redis (rtms/placement.py): a stream goes to the least loaded process with room,
never past a process's capacity, never to a process whose heartbeat stopped or that left to drain; when every
process is full it waits, visibly (waiting_streams(), the console's live streams and the metric), and is placed
once room appears."""

import time

import pytest
import redis
from django.conf import settings as django_settings

from rtms import placement
from rtms.redis_connection import key

pytestmark = pytest.mark.django_db


@pytest.fixture
def fleet_redis(settings):
    settings.REDIS_NAMESPACE = f"{django_settings.REDIS_NAMESPACE}-placement"
    client = redis.Redis.from_url(settings.REDIS_URL)
    for stale in client.scan_iter(f"{settings.REDIS_NAMESPACE}:*"):
        client.delete(stale)
    return client


def inbox(client, worker):
    return [s.decode() for s in client.lrange(placement.inbox_key(worker), 0, -1)]


def fleet_loads(client):
    """{worker id: {"load", "capacity"}} of every process the fleet knows, as placement keeps them in Redis."""
    loads = client.zrange(key("rtms", "fleet", "load"), 0, -1, withscores=True)
    capacities = client.hgetall(key("rtms", "fleet", "capacity"))
    return {worker.decode(): {"load": int(load), "capacity": int(capacities[worker])} for worker, load in loads}


def test_the_least_loaded_process_with_room_gets_each_stream(fleet_redis):
    placement.heartbeat("node-a:1", 3, 4, fleet_redis)
    placement.heartbeat("node-b:2", 1, 4, fleet_redis)
    placed = placement.place_many([f"{n:032x}" for n in range(4)])
    assert list(placed.values()) == ["node-b:2", "node-b:2", "node-a:1", "node-b:2"]
    assert fleet_loads(fleet_redis) == {"node-a:1": {"load": 4, "capacity": 4},
                                        "node-b:2": {"load": 4, "capacity": 4}}
    assert inbox(fleet_redis, "node-a:1") == [f"{2:032x}"]
    # A stream placed a moment ago is not placed twice (the reconciler, Zoom's retried webhook).
    assert placement.place(f"{0:032x}") == "node-b:2" and len(inbox(fleet_redis, "node-b:2")) == 3


def test_when_every_process_is_full_the_stream_waits_visibly_until_room_appears(fleet_redis):
    placement.heartbeat("node-a:1", 2, 2, fleet_redis)
    waiting = "a" * 32
    assert placement.place(waiting) is None
    assert list(placement.waiting_streams()) == [waiting]
    assert "rtms_streams_waiting_for_capacity 1.0" in metrics_text()

    placement.heartbeat("node-c:3", 0, 2, fleet_redis)  # a node joins (or one drained a stream)
    assert placement.place(waiting) == "node-c:3"
    assert placement.waiting_streams() == {}
    assert "rtms_streams_waiting_for_capacity 0.0" in metrics_text()


def test_a_process_that_left_or_went_silent_gets_nothing(fleet_redis, settings):
    placement.heartbeat("node-a:1", 0, 10, fleet_redis)
    placement.heartbeat("node-b:2", 5, 10, fleet_redis)
    assert placement.place("b" * 32) == "node-a:1"
    returned = placement.leave("node-a:1")  # SIGTERM: out of placement first; its queued claims come back
    assert returned == ["b" * 32]
    assert placement.place("b" * 32) == "node-b:2"
    settings.RTMS_LEASE_TTL = 0.001  # node-b's last heartbeat is now older than a lease: it may be dead
    time.sleep(0.01)
    assert placement.place("c" * 32) is None


def test_a_process_that_died_without_leaving_is_forgotten(fleet_redis, settings):
    """kill -9, out of memory, a lost node: no leave. Once its heartbeat is four lease ttls old, the fleet's next
    sweep (a heartbeat of any process, one every four ttls) forgets it: a worker id is new with every process, and
    every placement walks them all. A process merely late is back at its next heartbeat."""
    settings.RTMS_LEASE_TTL = 0.25
    placement.heartbeat("node-a:1", 3, 10, fleet_redis)  # its last one
    time.sleep(1.1)
    placement.heartbeat("node-b:2", 1, 10, fleet_redis)
    assert fleet_loads(fleet_redis) == {"node-b:2": {"load": 1, "capacity": 10}}

    assert placement.heartbeat("node-a:1", 3, 10, fleet_redis) == (3, False)  # no second sweep within four ttls
    assert set(fleet_loads(fleet_redis)) == {"node-a:1", "node-b:2"}


def metrics_text():
    from prometheus_client import generate_latest

    return generate_latest().decode()
