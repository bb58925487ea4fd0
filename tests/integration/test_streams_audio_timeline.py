"""Stored mixed audio keeps Zoom's timeline (docs/STREAMS.md "Audio keeps Zoom's timeline") with a real worker
holding the stream through the simulator: Zoom sends no mixed audio while nobody speaks (docs/ZOOM.md §4.3), so a
line, a pause and another line arrive as two runs of frames, and the WAV holds the pause as zeros between them."""

import time
import wave

import pytest

from tests.integration.streams_stack import streams_stack, wait_for_row

SAMPLES_PER_MS = 16  # the worker asks for L16 16 kHz mono


@pytest.fixture(scope="module")
def stack(stack_env, tmp_path_factory, django_db_blocker):
    # No segment rolls by itself during the test (the first roll falls anywhere in the first RTMS_SEGMENT_SECONDS).
    with streams_stack(stack_env, tmp_path_factory.mktemp("timeline"), "timeline", django_db_blocker, beat=False,
                       RTMS_SEGMENT_SECONDS="3600") as stack:
        yield stack


def test_speech_then_silence_then_speech_is_stored_on_zooms_timeline(stack, django_db_blocker):
    from rtms import leases
    from rtms.models import MediaFile, StreamSession, TranscriptSegment

    meeting, held = stack.hold_stream(django_db_blocker, "Pauses")
    stream_id = held.rtms_stream_id

    def line_stored(text):
        wait_for_row(django_db_blocker, lambda: TranscriptSegment.objects.filter(
            stream__rtms_stream_id=stream_id, text=text).exists(), f"the line {text!r} stored")

    first = stack.speak(meeting, "Before the pause")
    line_stored("Before the pause")
    time.sleep(1.0)  # nobody speaks
    second = stack.speak(meeting, "After the pause")
    line_stored("After the pause")
    assert second["start_time"] - first["end_time"] >= 1000
    sent = stack.sim_stream(stream_id)["frames_sent"]["audio"]
    assert sent == (first["end_time"] - first["start_time"] + second["end_time"] - second["start_time"]) // 20, \
        "Zoom sends the lines' frames and nothing in the pause"

    assert stack.sim.post(f"/_sim/meetings/{meeting['id']}/end").ok
    wait_for_row(django_db_blocker, lambda: StreamSession.objects.filter(
        rtms_stream_id=stream_id, state="stopped").exists(), "the stream to stop")
    wait_for_row(django_db_blocker, lambda: leases.holders([stream_id])[stream_id] is None,
                 "the holder to write its final index and let the stream go")

    def stored_segments():
        segments = list(MediaFile.objects.filter(stream__rtms_stream_id=stream_id, kind="audio_mixed", bytes__gt=0))
        return segments if segments and all(segment.stored for segment in segments) else None

    [segment] = wait_for_row(django_db_blocker, stored_segments, "the mixed audio stored")
    assert (segment.first_timestamp, segment.last_timestamp, segment.frames) == (
        first["start_time"], second["end_time"] - 20, sent)
    with wave.open(str(stack.media_root / segment.path)) as wav:
        assert (wav.getframerate(), wav.getnchannels(), wav.getsampwidth()) == (16000, 1, 2)
        # From the first frame's timestamp to the end of the last: one sample for each 1/16 ms of Zoom's timeline.
        assert wav.getnframes() == (second["end_time"] - first["start_time"]) * SAMPLES_PER_MS
        samples = memoryview(wav.readframes(wav.getnframes())).cast("h")

    def at(timestamp_ms):
        return (timestamp_ms - first["start_time"]) * SAMPLES_PER_MS

    assert max(map(abs, samples[at(first["start_time"]):at(first["end_time"])])) > 1000, "the first line is heard"
    assert not any(samples[at(first["end_time"]):at(second["start_time"])]), "the pause is zeros"
    assert max(map(abs, samples[at(second["start_time"]):at(second["end_time"])])) > 1000, "the second line is heard"
