"""A session host lets go of what it no longer holds, whatever happened to it. A stream whose last write failed (the
disk full) is still let go once its row says stopped: lease released, no longer held, its live figures gone, the
failure logged naming the stream and the meeting, what was written before still uploaded (docs/ARCHITECTURE.md,
"No re-claim of ended streams"). The live figures a dead holder left go at the fleet's sweep ("Capacity and
placement"). A real session host, its threads, the suite's Redis (a namespace of its own) and PostgreSQL; the
disk full is /dev/full, where the stream's next audio segment is created."""

import asyncio
import errno
import json
import logging
import os
import threading
import time

import pytest
from django.db import connection

from rtms import leases, log_context, sinks, stats
from rtms.client import Outcome, StopReason, StreamResult
from rtms.host import HeldStream, SessionHost
from rtms.models import ChatMessage, StreamSession, StreamState
from rtms.redis_connection import redis_client
from zoomapp.logfmt import LogfmtFormatter

pytestmark = pytest.mark.django_db(transaction=True)

WORKER = "last-write-test"
STREAM_ID = "1e" * 16
MEETING = "lastwrite=="
FRAME = b"\x01\x00" * 320  # 20 ms of 16 kHz audio


@pytest.fixture
def host(settings, tmp_path):
    # Its own namespace: the fleet's sweep (one heartbeat in the fleet every four lease ttls) is this host's.
    settings.REDIS_NAMESPACE = f"{settings.REDIS_NAMESPACE}-lets-go"
    _clear_namespace(settings.REDIS_NAMESPACE)
    settings.RTMS_SPOOL_DIR = tmp_path / "spool"
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.RTMS_LEASE_TTL = 1.5
    settings.RTMS_SEGMENT_SECONDS = 3600  # no segment rolls by itself within the test
    host = SessionHost(WORKER)
    # The loop and the lease renewal as start() runs them. Not start() itself: it registers the process's metrics
    # collector, which a process does once (tests/unit/test_holder_wakes.py starts a host too).
    ready = threading.Event()
    threading.Thread(target=host._run_loop, args=(ready,), daemon=True).start()
    assert ready.wait(10)
    threading.Thread(target=host._renew_leases, daemon=True).start()
    host.accepting = True  # its heartbeat is published
    yield host
    host.shutdown(timeout=10)
    _clear_namespace(settings.REDIS_NAMESPACE)


def _clear_namespace(namespace):
    redis = redis_client()
    for stale in redis.scan_iter(f"{namespace}:*"):
        redis.delete(stale)


def _wait_until(check, what, timeout=10.0):
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"not {what} within {timeout} s"
        time.sleep(0.05)


def _on_loop(host, fn):
    async def call():
        return fn()

    return asyncio.run_coroutine_threadsafe(call(), host.loop).result(10)


def test_a_last_write_on_a_full_disk_still_lets_the_stream_go(host, tmp_path, settings, caplog):
    stream = StreamSession.objects.create(rtms_stream_id=STREAM_ID, meeting_uuid=MEETING, client_id="lastwrite",
                                          state=StreamState.ACTIVE, audio_per_participant=True, lease_generation=1)
    lease = leases.new_lease_value(WORKER)
    assert leases.try_acquire(STREAM_ID, lease)
    held = HeldStream(stream, lease, host.spool, WORKER)
    held.store = sinks.StreamStore(stream.pk, STREAM_ID, "lastwrite", per_participant_audio=True)
    redis_client().hset(stats.stats_key(), STREAM_ID, json.dumps({"worker": WORKER, "at": time.time()}))

    def hold():
        host.streams[STREAM_ID] = held
        for n in range(50):
            held.store.on_audio(16778240, "Ana", 1000 + 20 * n, FRAME)

    _on_loop(host, hold)
    ana = host.spool / "rtms" / STREAM_ID / "audio" / "user-16778240-1000-g1.wav"
    _wait_until(lambda: ana.exists() and ana.stat().st_size == 44 + 50 * len(FRAME), "written by the ticks")
    # Ben speaks last, on a disk that is now full: his segment cannot be created.
    ben = ana.with_name("user-16778241-2000-g1.wav")
    os.symlink("/dev/full", ben)

    async def stream_ends():  # as the stream's own task does (host._hold): Zoom stopped it, Ben's audio not written
        log_context.bind(meeting=MEETING, stream=STREAM_ID)
        held.store.on_audio(16778241, "Ben", 2000, FRAME)
        await host._finish(held, StreamResult(Outcome.STOPPED, StopReason.MEETING_ENDED))

    with caplog.at_level(logging.INFO, logger="rtms.host"):
        ending = asyncio.run_coroutine_threadsafe(stream_ends(), host.loop)
        # Before, the lease was renewed for as long as the process lived.
        _wait_until(lambda: leases.holders([STREAM_ID]) == {STREAM_ID: None}, "released",
                    timeout=3 * settings.RTMS_LEASE_TTL)

    assert StreamSession.objects.get(pk=stream.pk).state == StreamState.STOPPED  # stopped before released
    assert not host.holds(STREAM_ID)
    assert stats.live_stream_stats([STREAM_ID]) == {} and not redis_client().hexists(stats.stats_key(), STREAM_ID)
    failure = next(r for r in caplog.records if r.getMessage() == "last media of the stream not stored")
    assert failure.levelno == logging.ERROR and (failure.stream, failure.meeting) == (STREAM_ID, MEETING)
    assert isinstance(failure.exc_info[1], OSError) and failure.exc_info[1].errno == errno.ENOSPC
    assert any(r.getMessage() == "stream released" for r in caplog.records)
    # Ana's audio, written before, is closed and in storage.
    stored = tmp_path / "media" / "rtms" / STREAM_ID / "audio" / ana.name
    _wait_until(lambda: stored.exists() and stored.stat().st_size == 44 + 50 * len(FRAME), "uploaded")
    assert ending.result(1) is None


def test_one_streams_failed_write_loses_no_other_streams_media(host, caplog):
    """Every stream's media of a tick is written by one call on the file thread: a write that fails (here Ben's
    stream, whose next segment is on a full disk) loses that stream's tick only, is counted and logged naming the
    stream, and the stream written after it in the same tick is stored."""
    from rtms import metrics

    def holding(stream_id):
        row = StreamSession.objects.create(rtms_stream_id=stream_id, meeting_uuid=MEETING, client_id="lastwrite",
                                           state=StreamState.ACTIVE, lease_generation=1)
        lease = leases.new_lease_value(WORKER)
        assert leases.try_acquire(stream_id, lease)
        held = HeldStream(row, lease, host.spool, WORKER)
        held.store = sinks.StreamStore(row.pk, stream_id, "lastwrite")
        return held

    bens, anas = holding("be" * 16), holding("a2" * 16)
    os.makedirs(host.spool / "rtms" / bens.stream_id / "audio")
    os.symlink("/dev/full", host.spool / "rtms" / bens.stream_id / "audio" / "mixed-1000-g1.wav")
    failures = metrics.media_write_failures._value.get()

    def both_speak():
        host.streams[bens.stream_id], host.streams[anas.stream_id] = bens, anas  # Ben's is written first
        for n in range(50):
            bens.store.on_audio(0, "Ben", 1000 + 20 * n, FRAME)
            anas.store.on_audio(0, "Ana", 1000 + 20 * n, FRAME)

    with caplog.at_level(logging.INFO, logger="rtms.host"):
        _on_loop(host, both_speak)
        ana = host.spool / "rtms" / anas.stream_id / "audio" / "mixed-1000-g1.wav"
        _wait_until(lambda: ana.exists() and ana.stat().st_size == 44 + 50 * len(FRAME), "Ana's audio written")
    assert metrics.media_write_failures._value.get() > failures
    failure = next(r for r in caplog.records if r.getMessage() == "media not stored")
    assert (failure.levelno, failure.stream, failure.streams) == (logging.ERROR, bens.stream_id, 1)
    assert "No space left on device" in failure.error


def test_a_revoked_stream_leaves_nothing_in_storage_once_its_uploads_are_done(host, tmp_path):
    """STREAM_REVOKED: its erasure (rtms.delete_stream_media, queued when the stop is recorded) may run while a
    segment rolled a moment before is still uploading. The holder, once its uploads are done, erases what they
    stored: here a segment uploaded before the revocation, which no erasure has removed yet."""
    stream = StreamSession.objects.create(rtms_stream_id="7e" * 16, meeting_uuid=MEETING, client_id="lastwrite",
                                          state=StreamState.ACTIVE, lease_generation=1)
    lease = leases.new_lease_value(WORKER)
    assert leases.try_acquire(stream.rtms_stream_id, lease)
    held = HeldStream(stream, lease, host.spool, WORKER)
    held.store = sinks.StreamStore(stream.pk, stream.rtms_stream_id, "lastwrite")

    def hold():
        host.streams[stream.rtms_stream_id] = held
        for n in range(50):
            held.store.on_audio(0, "Ana", 1000 + 20 * n, FRAME)

    _on_loop(host, hold)
    spooled = host.spool / "rtms" / stream.rtms_stream_id / "audio" / "mixed-1000-g1.wav"
    _wait_until(lambda: spooled.exists() and spooled.stat().st_size == 44 + 50 * len(FRAME), "written")
    for upload in host._file_pool.submit(held.files.close, True, host._upload_pool).result(10):
        upload.result(10)
    stored = tmp_path / "media" / "rtms" / stream.rtms_stream_id
    assert (stored / "audio" / spooled.name).exists()

    async def revoked():
        log_context.bind(meeting=MEETING, stream=stream.rtms_stream_id)
        await host._finish(held, StreamResult(Outcome.STOPPED, StopReason.STREAM_REVOKED))

    asyncio.run_coroutine_threadsafe(revoked(), host.loop).result(10)
    assert not stored.exists()
    assert not (host.spool / "rtms" / stream.rtms_stream_id).exists()


def test_the_live_figures_a_dead_holder_left_go_at_the_fleets_sweep(host, settings):
    """A holder killed (kill -9, out of memory) leaves its streams' figures in the hash: skipped when read
    (rtms/stats.py), they stayed for good, more with every crash. Figures published within STALE_SECONDS stay."""
    redis = redis_client()
    left, live = "d0" * 16, "a1" * 16
    redis.hset(stats.stats_key(), mapping={
        left: json.dumps({"worker": "gone:1", "frames_per_s": 50.0, "at": time.time() - stats.STALE_SECONDS - 1}),
        live: json.dumps({"worker": "other:2", "frames_per_s": 50.0, "at": time.time()}),
    })
    _wait_until(lambda: not redis.hexists(stats.stats_key(), left), "removed", timeout=4 * settings.RTMS_LEASE_TTL)
    assert list(stats.live_stream_stats()) == [live]


def test_a_control_message_for_one_stream_does_not_name_it_in_the_control_channels_later_lines(host):
    """The control channel is one task for every stream: what it logs after acting on a stream's message (a drain
    of the whole node, say) is about no stream, and a line naming the last one sent readers after the wrong meeting."""
    stream = StreamSession.objects.create(rtms_stream_id="c0" * 16, meeting_uuid=MEETING, client_id="lastwrite",
                                          state=StreamState.ACTIVE, lease_generation=1)
    held = HeldStream(stream, leases.new_lease_value(WORKER), host.spool, WORKER)
    formatter = LogfmtFormatter()

    def control_then_log():
        host.streams[stream.rtms_stream_id] = held
        host._on_control(json.dumps({"action": "interrupted", "stream_id": stream.rtms_stream_id}))
        try:
            return formatter.format(logging.LogRecord("rtms.host", logging.INFO, __file__, 0, "next", None, None))
        finally:
            del host.streams[stream.rtms_stream_id]

    line = _on_loop(host, control_then_log)
    assert "stream=" not in line and "meeting=" not in line, line


def test_the_shutdowns_last_row_write_and_the_periodic_one_never_write_the_same_rows(host):
    """At shutdown the periodic flush may still be writing the pending rows when the handover writes them: one
    writer at a time, or the same chat lines are stored twice and later batches dropped unwritten."""
    stream = StreamSession.objects.create(rtms_stream_id="c1" * 16, meeting_uuid=MEETING, client_id="lastwrite",
                                          state=StreamState.ACTIVE, lease_generation=1)
    chats = [(16778240, "Ana", 1000 + n, f"line {n}") for n in range(5)]
    host._pending_rows.append(sinks.RowBatch(stream.pk, stream.rtms_stream_id, "lastwrite", [], chats, []))

    async def two_writers():
        await asyncio.gather(host._store_pending_rows(), host._store_pending_rows())

    asyncio.run_coroutine_threadsafe(two_writers(), host.loop).result(10)
    assert ChatMessage.objects.filter(stream=stream).count() == len(chats)
    assert host._pending_rows == []


def test_a_host_that_stopped_gives_back_its_threads_database_connections(host):
    """Its database and upload threads each keep a connection while it runs; once it stopped they are back in the
    process's pool, which a process holding hosts one after the other (the tests, a worker restarting its host)
    would otherwise run out of."""
    def checked_out():
        stats = connection.pool.get_stats()
        return stats["pool_size"] - stats["pool_available"]

    stream = StreamSession.objects.create(rtms_stream_id="c2" * 16, meeting_uuid=MEETING, client_id="lastwrite",
                                          state=StreamState.ACTIVE, lease_generation=1)
    before = checked_out()  # this test's own connection among them
    held = HeldStream(stream, leases.new_lease_value(WORKER), host.spool, WORKER)
    held.store = sinks.StreamStore(stream.pk, stream.rtms_stream_id, "lastwrite")
    for n in range(50):
        held.store.on_audio(0, "Ana", 1000 + 20 * n, FRAME)
        held.store.on_chat(16778240, "Ana", 1000 + n, f"line {n}")
    host._pending_rows.append(held.store.take_rows())
    asyncio.run_coroutine_threadsafe(host._store_pending_rows(), host.loop).result(10)  # the row thread's
    sinks.write_media(held.files, *held.store.take_media())
    for upload in held.files.roll(uploader=host._upload_pool):
        upload.result(10)  # an upload thread's
    assert checked_out() > before

    host.shutdown(timeout=10)
    assert checked_out() == before
