"""Malformed RTMS frames from the server are refused and skipped: the worker keeps the stream, stores every
well-formed line between them, and still records Zoom's stop reason."""

import secrets
import time

import pytest

from tests.hostile_rtms_server import MALFORMED, HostileRtmsServer, valid_audio, valid_transcript
from tests.integration.streams_stack import streams_stack, wait_for_row
from tests.webhook_support import event, post_signed


@pytest.fixture(scope="module")
def stack(stack_env, tmp_path_factory, django_db_blocker):
    with streams_stack(stack_env, tmp_path_factory.mktemp("malformed"), "malformed", django_db_blocker) as stack:
        yield stack


def deliver_started(stack, stream_id, server_urls):
    response = post_signed(stack.web.url, stack.app, event("meeting.rtms_started", {
        "meeting_uuid": "hostileMeeting0000000A==", "operator_id": "opHostile", "rtms_stream_id": stream_id,
        "server_urls": server_urls}))
    assert response.status_code == 200, response.text


def test_malformed_frames_are_skipped_and_nothing_is_lost(stack, django_db_blocker):
    from rtms.models import StreamSession, TranscriptSegment

    now = int(time.time() * 1000)
    lines = [f"Well-formed line {n}" for n in range(len(MALFORMED) + 1)]
    frames = [valid_transcript(lines[0], now)]
    for n, garbage in enumerate(MALFORMED, start=1):
        frames += [garbage, valid_transcript(lines[n], now + n)]
    server = HostileRtmsServer(frames).start()
    stream_id = secrets.token_hex(16)
    try:
        deliver_started(stack, stream_id, server.signaling_url)
        wait_for_row(django_db_blocker, lambda: TranscriptSegment.objects.filter(
            stream__rtms_stream_id=stream_id).count() == len(lines), "every well-formed line to be stored", timeout=30)
        with django_db_blocker.unblock():
            stored = list(TranscriptSegment.objects.filter(stream__rtms_stream_id=stream_id)
                          .values_list("text", flat=True))
            assert StreamSession.objects.get(rtms_stream_id=stream_id).state == "active"
        assert sorted(stored) == sorted(lines)
        assert stack.workers[0].poll() is None
        assert "malformed" in stack.workers[0].log_text()

        server.finish(stop_reason=6)
        stopped = wait_for_row(django_db_blocker, lambda: StreamSession.objects.filter(
            rtms_stream_id=stream_id, state="stopped").first(), "the stop reason to be recorded")
        assert stopped.stop_reason == 6
        with django_db_blocker.unblock():
            assert TranscriptSegment.objects.filter(stream__rtms_stream_id=stream_id).count() == len(lines)
    finally:
        server.close()


def test_numbers_beyond_what_the_database_holds_are_refused_and_nothing_else_is_lost(stack, django_db_blocker):
    """JSON numbers up to 2**64 - 1 are read as integers: a frame whose timestamp does not fit a BIGINT column is
    refused where it enters, as is a stop reason beyond an INTEGER. Accepted, the audio frame's timestamp made the
    newer well-formed frames look replayed and failed the write of the stream's media index (other streams' rows
    in the same batch with it); the stop reason failed the stream's stop."""
    from rtms.models import MediaFile, StreamSession, TranscriptSegment

    now, beyond = int(time.time() * 1000), 2 ** 64 - 1
    server = HostileRtmsServer([
        valid_audio(now),
        valid_audio(beyond),
        valid_audio(now + 20),
        valid_transcript("A line from beyond", beyond),
        valid_transcript("A line from now", now),
    ]).start()
    stream_id = secrets.token_hex(16)
    try:
        deliver_started(stack, stream_id, server.signaling_url)
        wait_for_row(django_db_blocker, lambda: TranscriptSegment.objects.filter(
            stream__rtms_stream_id=stream_id).exists(), "the well-formed line to be stored", timeout=30)
        server.finish(stop_reason=2 ** 40)
        stopped = wait_for_row(django_db_blocker, lambda: StreamSession.objects.filter(
            rtms_stream_id=stream_id, state="stopped").first(), "the stop to be recorded")
        assert stopped.stop_reason is None
        audio = wait_for_row(django_db_blocker, lambda: MediaFile.objects.filter(
            stream__rtms_stream_id=stream_id, kind="audio_mixed", frames__gt=0).first(), "the audio's index row")
        assert (audio.frames, audio.bytes, audio.first_timestamp, audio.last_timestamp) == (2, 1280, now, now + 20)
        with django_db_blocker.unblock():
            assert list(TranscriptSegment.objects.filter(stream__rtms_stream_id=stream_id)
                        .values_list("text", flat=True)) == ["A line from now"]
        assert stack.workers[0].poll() is None
    finally:
        server.close()
