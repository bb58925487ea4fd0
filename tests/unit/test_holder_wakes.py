"""A busy session host blocks its loop between two passes over its sockets (rtms/client/pacing.py); work finished
on another thread may end that wait early. A state change does: an approval's "Sharing" waits on it. A commit of
transcript rows or a write of the media index does not, as nothing waits on either: each early end is one more
pass over every socket, reading fewer frames per read (docs/STREAMS.md, "How often the holder reads and
stores"). Likewise the loop waits at all only while no state change is queued, and a queued index write is not
one. A real host, its threads and PostgreSQL; the pacer's own wake-up event says whether the wait was ended."""

import asyncio
import concurrent.futures
import functools
import time

import pytest

from rtms import services, sinks
from rtms.host import SessionHost
from rtms.models import MediaFile, StreamSession, StreamState, TranscriptSegment

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def host():
    host = SessionHost("wakes-test")
    host.start()
    yield host
    host.shutdown(timeout=10)


def _wait_until(check, timeout=10.0):
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "not stored in time"
        time.sleep(0.05)


async def _may_wait(host):
    return host._pacer._may_wait()


def _may_wait_once_queued(host, fn, *args, **kwargs):
    """Queue a change of the state queue and ask the pacer whether the loop may wait, in one callback on the
    loop: the state task cannot take the change in between."""
    answer = concurrent.futures.Future()

    def queue_and_ask():
        host._queue_state(fn, *args, **kwargs)
        answer.set_result(host._pacer._may_wait())

    host.loop.call_soon_threadsafe(queue_and_ask)
    return answer.result(10)


def test_rows_and_index_writes_leave_the_paced_wait_alone_and_a_state_change_ends_it(host):
    """One host per process (its metrics, its spool lock): what may start the wait and what may end it, in one
    test."""
    stream = StreamSession.objects.create(rtms_stream_id="0f" * 16, meeting_uuid="wakes==", client_id="wakes")
    files = sinks.StreamFiles(stream.pk, stream.rtms_stream_id, 1, host.spool, node="wakes-test")
    woken = host._pacer._woken  # set by wake(); only a paced wait clears it, and an idle host never waits
    assert not woken.is_set()

    # Queued, an index write lets the loop wait out its tick; a state change does not. The index write queued
    # each half second used to count as one: the tick after every slice of the index ran unpaced, its pass
    # overlapping the file writes and reading the sockets frame by frame.
    assert _may_wait_once_queued(host, sinks.write_index, [(files, [])]) is True
    assert _may_wait_once_queued(host, services.change_state, stream.rtms_stream_id, StreamState.PAUSED,
                                 reason="paused by zoom", worker="wakes-test") is False
    _wait_until(lambda: StreamSession.objects.get(pk=stream.pk).state == StreamState.PAUSED)
    _wait_until(lambda: asyncio.run_coroutine_threadsafe(_may_wait(host), host.loop).result(10))
    _wait_until(woken.is_set, timeout=2.0)  # the state change's completion woke the pacer: start again
    woken.clear()

    line = (16778240, "Ana", 1000, 3400, 3400, 9, "The numbers look good.")
    batch = sinks.RowBatch(stream.pk, stream.rtms_stream_id, "wakes", [line], [], [])
    asyncio.run_coroutine_threadsafe(host._write_chunk([batch]), host.loop).result(10)
    assert TranscriptSegment.objects.filter(stream=stream).count() == 1

    row = dict(kind=MediaFile.Kind.AUDIO_MIXED, user_id=None, path=f"rtms/{stream.rtms_stream_id}/audio/mixed-1-g1.wav",
               sample_rate=16000, channels=1, bytes=6400, frames=10, first_timestamp=1, last_timestamp=181,
               stored=False, node="wakes-test")
    host.loop.call_soon_threadsafe(host._queue_state, sinks.write_index, [(files, [row])])
    _wait_until(lambda: MediaFile.objects.filter(stream=stream).exists())
    time.sleep(0.2)  # the write's completion callback has run by now
    assert not woken.is_set(), "a rows commit or an index write ended the paced wait"

    host.loop.call_soon_threadsafe(functools.partial(
        host._queue_state, services.change_state, stream.rtms_stream_id, StreamState.ACTIVE, reason="connected",
        worker="wakes-test"))
    _wait_until(lambda: StreamSession.objects.get(pk=stream.pk).state == StreamState.ACTIVE)
    _wait_until(woken.is_set, timeout=2.0)
