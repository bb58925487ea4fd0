"""A handover against PostgreSQL's row locks (docs/ARCHITECTURE.md, "The claim" and "Drain"): the new holder claims
the streams while the old one still writes their rows. Both lock the streams' rows in row id order, so neither waits
for the other in a cycle (a deadlock, where PostgreSQL aborts one); and the old holder's last write at shutdown (its
transcript rows, its media index) aborted as a deadlock's victim is tried again instead of lost. Two streams whose
Zoom stream ids, and places in the table, are in the reverse order of their row ids: a statement that locks them as
it finds them locks the higher row id first. A real session host, its threads, the suite's Redis (a namespace of its
own) and PostgreSQL; another connection's row locks decide which transaction waits for which."""

import asyncio
import logging
import threading

import pytest
from django.db import connection, transaction

from rtms import sinks
from rtms.host import SessionHost, close_thread_connections
from rtms.models import MediaFile, StreamSession, TranscriptSegment
from rtms.redis_connection import redis_client
from tests.locks_support import held_elsewhere, wait_until_blocked

pytestmark = pytest.mark.django_db(transaction=True)

NEW_HOLDER = "claim-order-test"


@pytest.fixture(autouse=True)
def isolated(settings, tmp_path):
    settings.REDIS_NAMESPACE = f"{settings.REDIS_NAMESPACE}-claim-order"
    settings.RTMS_SPOOL_DIR = tmp_path / "spool"
    settings.MEDIA_ROOT = tmp_path / "media"
    _clear_namespace(settings.REDIS_NAMESPACE)
    yield
    _clear_namespace(settings.REDIS_NAMESPACE)


def _clear_namespace(namespace):
    redis = redis_client()
    for stale in redis.scan_iter(f"{namespace}:*"):
        redis.delete(stale)


@pytest.fixture
def streams():
    """Two running streams and a batch of new rows for each, (lower id, higher id): the higher id is inserted first
    and has the lower stream id, so the table and the stream id index both find it first."""
    higher = StreamSession.objects.create(pk=900_002, rtms_stream_id="a" * 32, meeting_uuid="m==", client_id="app")
    lower = StreamSession.objects.create(pk=900_001, rtms_stream_id="b" * 32, meeting_uuid="m==", client_id="app")
    return [(stream, _one_line(stream)) for stream in (lower, higher)]


def _one_line(stream):
    store = sinks.StreamStore(stream.pk, stream.rtms_stream_id, "app")
    store.on_transcript(16778240, "Ana", 1000, 3400, 3400, 9, "The numbers look good.")
    return store.take_rows()


def _lines(stream):
    return TranscriptSegment.objects.filter(stream=stream).count()


def _in_thread(fn, *args):
    """`fn(*args)` on a thread of its own (its own connection); returns the thread and [its result or error]."""
    outcome = []

    def run():
        try:
            outcome.append(fn(*args))
        except Exception as exc:  # noqa: BLE001 - reported by the test
            outcome.append(exc)
        finally:
            connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    return thread, outcome


@pytest.fixture
def new_holder():
    """The session host that takes the streams over: its loop and threads, not start() (one process registers its
    metrics collector once; tests/unit/test_holder_wakes.py starts a host)."""
    host = SessionHost(NEW_HOLDER)
    ready = threading.Event()
    threading.Thread(target=host._run_loop, args=(ready,), daemon=True).start()
    assert ready.wait(10)
    host.accepting = True
    yield host
    host.shutdown(timeout=10)  # its threads' connections back to the pool


def test_a_claim_during_the_old_holders_row_write_waits_for_it_instead_of_deadlocking(streams, new_holder):
    (lower, lower_rows), (higher, higher_rows) = streams
    # Another transaction holds the lower id's row: the old holder's row write waits for it first, then the claim;
    # once it ends, the row write goes first, and the claim must not hold the higher id's row meanwhile.
    with held_elsewhere(lambda: StreamSession.objects.select_for_update(no_key=True).get(pk=lower.pk)):
        write, written = _in_thread(sinks.write_rows, [lower_rows, higher_rows])
        wait_until_blocked(1)
        claim, claimed = _in_thread(new_holder._claim, [higher.rtms_stream_id, lower.rtms_stream_id])
        wait_until_blocked(2)
    for thread in (write, claim):
        thread.join(15)
        assert not thread.is_alive()

    assert written == [None]  # before, PostgreSQL aborted one of them: "deadlock detected"
    assert claimed == [{higher.rtms_stream_id: "claimed", lower.rtms_stream_id: "claimed"}]
    assert (_lines(lower), _lines(higher)) == (1, 1)
    assert {s.owner_worker for s in StreamSession.objects.filter(pk__in=[lower.pk, higher.pk])} == {NEW_HOLDER}


@pytest.fixture
def old_holder():
    """The session host handing its streams over: only its loop, which runs the handover's last writes and nothing
    else (its periodic row writes would store the rows the handover failed to)."""
    host = SessionHost("handing-over-test")
    host._state_queue = asyncio.Queue()
    yield host
    for pool in (host._db_pool, host._state_pool):  # not stopped (it never started): its threads' connections back
        close_thread_connections(pool, 1)


def _media_row(stream):
    return dict(kind=MediaFile.Kind.AUDIO_MIXED, user_id=None, sample_rate=16000, channels=1, bytes=6400, frames=10,
                path=f"rtms/{stream.rtms_stream_id}/audio/mixed-1-g1.wav", first_timestamp=1, last_timestamp=181,
                stored=False, node="handing-over-test")


@pytest.mark.parametrize("last_write", ["transcript rows", "media index"])
def test_the_handovers_last_write_aborted_as_a_deadlocks_victim_is_tried_again(last_write, streams, old_holder,
                                                                                caplog):
    (lower, lower_rows), (higher, higher_rows) = streams
    if last_write == "transcript rows":
        old_holder._pending_rows.extend([lower_rows, higher_rows])
    else:  # a slice of the streams' index, queued and not written yet
        old_holder._queue_state(sinks.write_index, [
            (sinks.StreamFiles(stream.pk, stream.rtms_stream_id, 1, old_holder.spool, node="handing-over-test"),
             [_media_row(stream)]) for stream in (lower, higher)])
    higher_locked, lock_lower = threading.Event(), threading.Event()

    def new_holders_write():  # the streams' higher id first: the last write is the victim, waiting longest
        with transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL deadlock_timeout = '10s'")
            StreamSession.objects.select_for_update(no_key=True).get(pk=higher.pk)
            higher_locked.set()
            assert lock_lower.wait(10)
            StreamSession.objects.select_for_update(no_key=True).get(pk=lower.pk)

    partner, partner_done = _in_thread(new_holders_write)
    assert higher_locked.wait(10)
    with caplog.at_level(logging.INFO, logger="rtms.host"):
        handover, handed_over = _in_thread(old_holder.loop.run_until_complete, old_holder._hand_over_all())
        wait_until_blocked(1)  # holding the lower id's row, waiting for the higher's
        lock_lower.set()
        for thread in (partner, handover):
            thread.join(20)
            assert not thread.is_alive()

    assert partner_done == [None] and handed_over == [None]
    # Before, both lost: "rows lost at shutdown", "state changes lost at shutdown".
    if last_write == "transcript rows":
        assert (_lines(lower), _lines(higher)) == (1, 1)
    else:
        assert [MediaFile.objects.filter(stream=s).count() for s in (lower, higher)] == [1, 1]
    assert not any(" lost at shutdown" in r.getMessage() for r in caplog.records)
