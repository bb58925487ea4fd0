"""Redis or PostgreSQL restarted while a stream is held: the stream keeps flowing (or fails over), the lease
comes back, no duplicate connection, and nothing Zoom sent is lost. Private servers on free ports; the
machine's shared Redis and PostgreSQL are never touched."""

import subprocess
import sys

import pytest
import redis

from tests import processes
from tests.integration.streams_stack import (
    overlapping_live_connections,
    streams_stack,
    wait_for_row,
)
from tests.postgres_server import PrivatePostgres, unavailable_reason
from tests.redis_server import PrivateRedis


def worker_log_mentions(stack, text):
    return text in stack.workers[0].log_text()


def audio_frames_stored(stack, stream_id, using="default"):
    from rtms.models import MediaFile

    """Mixed audio frames in the media index, over every segment (uploaded or still in the spool)."""
    return sum(MediaFile.objects.using(using).filter(stream__rtms_stream_id=stream_id, kind="audio_mixed")
               .values_list("frames", flat=True))


def test_redis_restart_keeps_the_stream_and_its_lease(stack_env, tmp_path, django_db_blocker):
    from rtms.models import StreamSession, TranscriptSegment

    private_redis = PrivateRedis(tmp_path).start()
    # A lease ttl longer than the outage: the holder keeps its sockets and re-takes the vanished key.
    with streams_stack(stack_env, tmp_path, "redis-restart", django_db_blocker, REDIS_URL=private_redis.url,
                       RTMS_LEASE_TTL="4") as stack:
        meeting = stack.start_meeting("Redis restart")
        stream_id = stack.start_stream(meeting)
        held = wait_for_row(django_db_blocker, lambda: StreamSession.objects.filter(
            rtms_stream_id=stream_id, state="active").first(), "the stream to be held", timeout=30)
        lease_key = f"{stack.namespace}:rtms:lease:{stream_id}"
        assert redis.Redis.from_url(private_redis.url).get(lease_key)

        private_redis.stop()
        stack.speak(meeting, "Said while Redis was down")
        processes.wait_for(lambda: worker_log_mentions(stack, "control channel lost"), 10,
                           "the worker to notice Redis is gone")
        private_redis.start()

        lease = processes.wait_for(lambda: redis.Redis.from_url(private_redis.url).get(lease_key), 15,
                                   "the lease to be back in the restarted Redis")
        assert lease.decode().startswith(held.owner_worker)
        stack.speak(meeting, "Said after Redis came back")
        for line in ("Said while Redis was down", "Said after Redis came back"):
            wait_for_row(django_db_blocker, lambda line=line: TranscriptSegment.objects.filter(
                stream__rtms_stream_id=stream_id, text=line).exists(), f"{line!r} to be stored")
        assert overlapping_live_connections(stack.signaling_connections(stream_id)) == []
        assert stack.sim.post(f"/_sim/meetings/{meeting['id']}/end").ok
        wait_for_row(django_db_blocker, lambda: StreamSession.objects.filter(
            rtms_stream_id=stream_id, state="stopped", stop_reason=6).exists(), "the stream to stop")
        print(f"\nredis restart: {len(stack.signaling_connections(stream_id))} signaling connection(s) for the stream")
    private_redis.stop()


@pytest.mark.skipif(unavailable_reason() is not None, reason=unavailable_reason() or "")
def test_postgres_restart_loses_no_line_and_no_audio(stack_env, tmp_path, django_db_blocker):
    from django.db import connections

    from rtms.models import StreamSession, TranscriptSegment

    database = PrivatePostgres().init()
    env = dict(stack_env, DATABASE_URL=database.url)
    subprocess.run([sys.executable, "manage.py", "migrate", "-v", "0"], cwd=processes.ROOT, env=env, check=True,
                   timeout=120)
    connections.settings["restart_pg"] = {**connections.settings["default"], "NAME": "rtms", "HOST": "127.0.0.1",
                                          "PORT": database.port, "USER": "postgres", "PASSWORD": ""}
    try:
        with streams_stack(stack_env, tmp_path, "pg-restart", django_db_blocker, database="restart_pg",
                           DATABASE_URL=database.url) as stack:
            streams = StreamSession.objects.using("restart_pg")
            lines = TranscriptSegment.objects.using("restart_pg")
            meeting = stack.start_meeting("PostgreSQL restart")
            stream_id = stack.start_stream(meeting)
            wait_for_row(django_db_blocker, lambda: streams.filter(rtms_stream_id=stream_id, state="active").exists(),
                         "the stream to be held", timeout=30)
            stack.speak(meeting, "Before the database restart")
            wait_for_row(django_db_blocker, lambda: lines.filter(stream__rtms_stream_id=stream_id).exists(),
                         "the first line to be stored")

            database.stop()
            with django_db_blocker.unblock():
                connections["restart_pg"].close()
            during = [f"Said while the database was down {n}" for n in range(3)]
            for line in during:
                stack.speak(meeting, line)
            processes.wait_for(lambda: worker_log_mentions(stack, "rows not stored yet"), 15,
                               "the worker to keep the rows it cannot write")
            database.start()

            stack.speak(meeting, "After the database came back")
            for line in [*during, "After the database came back"]:
                wait_for_row(django_db_blocker, lambda line=line: lines.filter(
                    stream__rtms_stream_id=stream_id, text=line).exists(), f"{line!r} to be stored", timeout=30)
            assert stack.sim.post(f"/_sim/meetings/{meeting['id']}/end").ok
            wait_for_row(django_db_blocker, lambda: streams.filter(rtms_stream_id=stream_id, state="stopped").exists(),
                         "the stream to stop", timeout=30)
            sent = stack.sim_stream(stream_id)["frames_sent"]["audio"]
            stored = wait_for_row(django_db_blocker, lambda: audio_frames_stored(stack, stream_id, "restart_pg") >= sent
                                  and audio_frames_stored(stack, stream_id, "restart_pg"), "every audio frame stored")
            with django_db_blocker.unblock():
                stored_lines = lines.filter(stream__rtms_stream_id=stream_id).count()
            print(f"\npostgres restart: {stored} of {sent} audio frames stored, {stored_lines} lines")
            assert overlapping_live_connections(stack.signaling_connections(stream_id)) == []
    finally:
        with django_db_blocker.unblock():
            connections["restart_pg"].close()
        database.remove()
