"""Malformed RTMS frames from the server are refused and skipped: the worker keeps the stream, stores every
well-formed line between them, and still records Zoom's stop reason."""

import secrets
import time

import pytest

from tests.hostile_rtms_server import MALFORMED, HostileRtmsServer, valid_transcript
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
