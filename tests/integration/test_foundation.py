"""The stack's plumbing, through real processes: Celery worker, Redis, daphne, /healthz."""

import re
import socket
import time

import pytest
import requests

from tests import processes
from tests.redis_server import PrivateRedis
from zoomapp.health import ping


def test_task_round_trip_through_real_worker(worker):
    hostname, _, pid = ping.apply_async().get(timeout=20).partition(" pid ")
    assert hostname == socket.gethostname()
    with open(f"/proc/{pid}/stat") as stat:  # the answer was computed in a pool process of our worker
        assert int(stat.read().rsplit(")", 1)[1].split()[1]) == worker.pid


def test_healthz_reports_every_part_healthy(daphne, worker, beat):
    def healthy():
        response = requests.get(f"{daphne.url}/healthz?deep=1", timeout=10)
        return response if response.status_code == 200 else None

    response = processes.wait_for(healthy, 30, "/healthz to report healthy")
    body = response.json()
    assert body["status"] == "ok"
    assert body["database"] == "ok"
    assert body["secrets"].startswith("ok")
    assert body["redis"] == "ok"
    assert body["worker"].startswith("ok (")
    assert body["reconciler"].startswith("ok (ran ")  # beat's thread completed a run moments ago


def test_no_worker_or_no_redis_fails_the_deep_check_but_keeps_the_web_in_rotation(stack_env, logs_dir, tmp_path):
    """Webhooks are still accepted while the workers or Redis are down: the load balancer's /healthz stays 200 (and
    logs nothing), the operators' ?deep=1 names what is down."""
    redis_server = PrivateRedis(tmp_path).start()  # a Redis no worker of this run heartbeats into
    env = dict(stack_env, REDIS_URL=redis_server.url)
    web = processes.start_daphne(env, tmp_path)
    try:
        for down, failing in (("no worker nor beat", ["worker", "reconciler"]),
                              ("Redis stopped", ["redis", "worker", "reconciler"])):
            if down == "Redis stopped":
                redis_server.stop()
            logged_before = len(web.log_text())
            plain = requests.get(f"{web.url}/healthz", timeout=15)
            assert plain.status_code == 200, down
            assert plain.json()["status"] == "ok" and set(plain.json()) == {"status", "database", "secrets"}, down
            assert "level=error" not in web.log_text()[logged_before:], down
            deep = requests.get(f"{web.url}/healthz?deep=1", timeout=15)
            assert deep.status_code == 503, down
            body = deep.json()
            assert body["status"] == "unhealthy" and body["failing"] == failing, down
            assert all(body[part].startswith("error: ") for part in failing), down
            assert body["database"] == "ok"
    finally:
        web.stop()
        redis_server.stop()


def test_a_reconciler_that_stopped_completing_runs_fails_the_deep_check(stack_env, tmp_path):
    """Failover after a worker dies is the reconciler's (beat's thread): one stuck on a dead database connection,
    or failing every run, is named by ?deep=1 with when it last completed a run."""
    import redis

    from rtms.redis_connection import key

    redis_server = PrivateRedis(tmp_path).start()  # a Redis no beat of this run records its runs in
    web = processes.start_daphne(dict(stack_env, REDIS_URL=redis_server.url), tmp_path)
    try:
        recorded = redis.Redis.from_url(redis_server.url)

        def reconciler(last_run):
            recorded.set(key("reconciler"), last_run)
            return requests.get(f"{web.url}/healthz?deep=1", timeout=15).json()["reconciler"]

        stale = reconciler(time.time() - 600)
        assert stale.startswith("error: ") and re.search(r"last completed a run 60\d s ago", stale)
        assert "failover is stopped" in stale
        assert reconciler(time.time() - 1).startswith("ok (ran ")
    finally:
        web.stop()
        redis_server.stop()


@pytest.mark.django_db
def test_a_database_connection_whose_server_vanished_fails_within_a_minute():
    """After a PostgreSQL failover the old server may never close our connections: a call on one waited for hours
    (the reconciler's thread with it). The kernel probes an idle connection and drops one whose data goes
    unacknowledged."""
    import os

    from django.db import connection

    connection.ensure_connection()
    with socket.socket(fileno=os.dup(connection.connection.fileno())) as kept:
        assert kept.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE) == 1
        idle, every, probes = (kept.getsockopt(socket.IPPROTO_TCP, option)
                               for option in (socket.TCP_KEEPIDLE, socket.TCP_KEEPINTVL, socket.TCP_KEEPCNT))
        assert idle + every * probes <= 60
        assert 0 < kept.getsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT) <= 60_000


@pytest.mark.django_db(transaction=True)
def test_group_message_from_a_celery_task_reaches_a_websocket_on_daphne(daphne, worker):
    """A consent change made inside a Celery task (worker process) is pushed through the Redis channel layer to
    a panel socket held by daphne (another process)."""
    import json
    from datetime import timedelta

    from django.utils import timezone
    from websockets.sync.client import connect

    from tests.consent_support import make_app, meeting_uuid
    from zoomapp.consent import meetings, tokens
    from zoomapp.consent.models import Share
    from zoomapp.consent.tasks import fail_stuck_starts

    app = make_app()
    meeting = meetings.get_meeting(app, meeting_uuid(), host_user_id="host1")
    share = Share.objects.create(meeting=meeting, app=app, user_id="ben1", user_name="Ben", status="starting",
                                 start_attempt=1)
    Share.objects.filter(pk=share.pk).update(updated=timezone.now() - timedelta(hours=1))  # Zoom never started it
    token = tokens.mint(app.client_id, meeting.uuid, "ben1")
    with connect(f"{daphne.url.replace('http', 'ws')}/ws/panel/?token={token}", open_timeout=10) as socket:
        snapshot = json.loads(socket.recv(timeout=10))
        assert snapshot["state"]["shares"][0]["status"] == "starting"
        fail_stuck_starts.delay()
        pushed = json.loads(socket.recv(timeout=20))
    assert pushed["type"] == "state" and pushed["state"]["version"] > snapshot["state"]["version"]
    assert pushed["state"]["shares"][0]["status"] == "host_cannot_approve"
