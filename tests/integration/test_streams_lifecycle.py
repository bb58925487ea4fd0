"""A stream end to end: Zoom's webhook → a real worker holds the stream → transcript, chat, audio, frames and
participant events stored → Zoom stops it → the stop reason recorded. Against the simulator, daphne, a Celery
worker, Redis and the database."""

import subprocess
import sys
import wave

import pytest
import requests

from tests import processes
from tests.integration.streams_stack import streams_stack, wait_for_row
from tests.webhook_support import event, post_signed


@pytest.fixture(scope="module")
def stack(stack_env, tmp_path_factory, django_db_blocker):
    with streams_stack(stack_env, tmp_path_factory.mktemp("lifecycle"), "lifecycle", django_db_blocker,
                       RTMS_METRICS_PORT=str(processes.free_port())) as stack:
        yield stack


def stream_row(django_db_blocker, stream_id, **conditions):
    from rtms.models import StreamSession

    def query():
        return StreamSession.objects.filter(rtms_stream_id=stream_id, **conditions).first()

    return query


def test_stream_is_held_stored_and_stopped_with_zoom_reason(stack, django_db_blocker):
    from rtms.models import ChatMessage, MediaFile, ParticipantEvent, StreamTransition, TranscriptSegment

    meeting = stack.start_meeting()
    stream_id = stack.start_stream(meeting)
    stream = wait_for_row(django_db_blocker, stream_row(django_db_blocker, stream_id, state="active"),
                          "the stream to be held and active", timeout=30)
    assert stream.owner_worker and stream.lease_generation >= 1

    spoken = stack.speak(meeting, "Hello everyone, welcome to the weekly sync")
    ben = next(p for p in meeting["participants"] if p["name"] == "Ben")
    assert stack.sim.post(f"/_sim/meetings/{meeting['id']}/chat", json={"key": ben["key"], "text": "link in chat"}).ok
    assert stack.sim.post(f"/_sim/meetings/{meeting['id']}/video", json={"key": ben["key"], "on": True}).ok

    segment = wait_for_row(
        django_db_blocker,
        lambda: TranscriptSegment.objects.filter(stream__rtms_stream_id=stream_id, text__icontains="welcome").first(),
        "the transcript line to be stored")
    assert segment.user_name == "Ana" and segment.start_time == spoken["start_time"]
    wait_for_row(django_db_blocker,
                 lambda: ChatMessage.objects.filter(stream__rtms_stream_id=stream_id, text="link in chat").exists(),
                 "the chat message to be stored")
    wait_for_row(django_db_blocker,
                 lambda: ParticipantEvent.objects.filter(stream__rtms_stream_id=stream_id, kind="join").exists(),
                 "a participant join event")
    wait_for_row(django_db_blocker,
                 lambda: MediaFile.objects.filter(stream__rtms_stream_id=stream_id, kind="video",
                                                  frames__gt=0).exists(),
                 "video frames indexed")

    assert stack.sim.post(f"/_sim/meetings/{meeting['id']}/end").ok
    stopped = wait_for_row(django_db_blocker, stream_row(django_db_blocker, stream_id, state="stopped"),
                           "the stream to stop")
    assert (stopped.stop_reason, stopped.stop_reason_name) == (6, "MEETING_ENDED")

    def closed_audio():
        """The mixed audio's segments (one may roll during the test) once each index row agrees with its closed
        WAV file (the final flush lands after "stopped")."""
        segments = list(MediaFile.objects.filter(stream__rtms_stream_id=stream_id, kind="audio_mixed", bytes__gt=0))
        for segment in segments:
            with wave.open(str(stack.media_root / segment.path)) as wav:
                if wav.getnframes() * 2 != segment.bytes:
                    return None
        return segments

    seconds = 0.0
    for segment in wait_for_row(django_db_blocker, closed_audio, "the mixed audio files' index to match the files"):
        with wave.open(str(stack.media_root / segment.path)) as wav:
            assert (wav.getframerate(), wav.getnchannels(), wav.getsampwidth()) == (16000, 1, 2)
            seconds += wav.getnframes() / 16000
    assert seconds > 1.0
    with django_db_blocker.unblock():
        states = list(StreamTransition.objects.filter(stream__rtms_stream_id=stream_id).values_list("state", flat=True))
    assert states[0] == "starting" and "active" in states and states[-1] == "stopped"
    # The simulator saw exactly one signaling connection for the whole stream.
    assert len(stack.signaling_connections(stream_id)) == 1


def test_same_webhook_three_times_makes_one_signaling_connection(stack, django_db_blocker):
    from rtms.models import StreamSession
    from zoomapp.webhooks.models import WebhookDelivery

    assert stack.fault(kind="webhook_duplicate", event="meeting.rtms_started", client_id=stack.app.client_id)
    meeting = stack.start_meeting("Duplicates")
    stream_id = stack.start_stream(meeting)
    wait_for_row(django_db_blocker, stream_row(django_db_blocker, stream_id, state="active"), "the stream to be held")

    def both_delivered():
        """Zoom's delivery and its duplicate, both answered (the duplicate may still be on its way when the
        stream is already held)."""
        found = [d for d in stack.sim.get("/_sim/webhooks", params={"event": "meeting.rtms_started",
                                                                     "client_id": stack.app.client_id}).json()
                 if d["payload"].get("rtms_stream_id") == stream_id]
        return found if len(found) == 2 and all(d["status"] == "delivered" for d in found) else None

    # Zoom's retry: the very same event once more, signed afresh, on top of the simulator's duplicate.
    delivery = processes.wait_for(both_delivered, 15, "the simulator's delivery and its duplicate")[0]
    response = post_signed(stack.web.url, stack.app,
                           event("meeting.rtms_started", delivery["payload"], event_ts=delivery["created_at"]))
    assert response.status_code == 200
    with django_db_blocker.unblock():
        received = WebhookDelivery.objects.filter(rtms_stream_id=stream_id, event="meeting.rtms_started")
        assert sum(1 + d.duplicates for d in received) >= 3
    stack.speak(meeting, "Only one connection please")
    wait_for_row(django_db_blocker,
                 lambda: StreamSession.objects.filter(rtms_stream_id=stream_id, transcript_count__gte=1).exists(),
                 "the line to be stored")
    assert len(stack.signaling_connections(stream_id)) == 1
    with django_db_blocker.unblock():
        assert StreamSession.objects.filter(rtms_stream_id=stream_id).count() == 1
    stack.sim.post(f"/_sim/meetings/{meeting['id']}/end")


def metric(text, name, **labels):
    """The value of one sample in Prometheus text format (None when absent)."""
    wanted = name + ("{" + ",".join(f'{k}="{v}"' for k, v in labels.items()) + "}" if labels else "")
    for line in text.splitlines():
        if line.startswith(wanted + " "):
            return float(line.rsplit(" ", 1)[1])
    return None


def test_operator_sees_the_live_stream_in_the_command_and_the_metrics(stack, django_db_blocker):
    meeting = stack.start_meeting("Observed")
    stream_id = stack.start_stream(meeting)
    stream = wait_for_row(django_db_blocker, stream_row(django_db_blocker, stream_id, state="active"),
                          "the stream to be held", timeout=30)
    stack.speak(meeting, "Is this being recorded")  # Zoom sends audio only while someone speaks

    def listed():
        output = subprocess.run([sys.executable, "manage.py", "streams"], cwd=processes.ROOT, env=stack.env,
                                capture_output=True, text=True, timeout=30, check=True).stdout
        line = next((line for line in output.splitlines() if stream_id in line), "")
        return line if stream.owner_worker in line and "active" in line and meeting["uuid"] in line else None

    line = processes.wait_for(listed, 20, "the stream listed with its owner and rates")
    header = subprocess.run([sys.executable, "manage.py", "streams"], cwd=processes.ROOT, env=stack.env,
                            capture_output=True, text=True, timeout=30).stdout.splitlines()[0]
    assert header.split()[:6] == ["stream", "meeting", "app", "user", "state", "owner"]
    assert stack.app.client_id in line

    worker_metrics = f"http://127.0.0.1:{stack.env['RTMS_METRICS_PORT']}/metrics"

    def scraped():
        text = requests.get(worker_metrics, timeout=5).text
        return text if (metric(text, "rtms_frames_total", media="audio") or 0) > 0 else None

    text = processes.wait_for(scraped, 20, "audio frames counted on the worker's metrics endpoint")
    assert metric(text, "rtms_streams_held") == 1
    assert metric(text, "rtms_bytes_total", media="audio") > 0
    assert metric(text, "rtms_store_lag_seconds_count") > 0
    processes.wait_for(
        lambda: (metric(requests.get(worker_metrics, timeout=5).text, "rtms_lease_renewals_total") or 0) > 0,
        10, "lease renewals counted")

    web = requests.get(stack.web.url + "/metrics", timeout=5).text
    assert metric(web, "zoom_webhook_deliveries_total", outcome="accepted") >= 1
    stack.sim.post(f"/_sim/meetings/{meeting['id']}/end")


def test_stream_revoked_deletes_its_stored_content_at_once(stack, django_db_blocker):
    from rtms.models import MediaFile, StreamSession, TranscriptSegment

    meeting = stack.start_meeting("Revoked")
    stream_id = stack.start_stream(meeting)
    wait_for_row(django_db_blocker, stream_row(django_db_blocker, stream_id, state="active"), "the stream to be held",
                 timeout=30)
    stack.speak(meeting, "This will be revoked")
    wait_for_row(django_db_blocker, lambda: TranscriptSegment.objects.filter(stream__rtms_stream_id=stream_id).exists()
                 and MediaFile.objects.filter(stream__rtms_stream_id=stream_id, bytes__gt=0).exists(),
                 "transcript and audio stored")
    assert stack.stream_files(stream_id)

    assert stack.sim.post(f"/_sim/streams/{stream_id}/stop", json={"reason": "STREAM_REVOKED"}).ok
    revoked = wait_for_row(django_db_blocker, lambda: StreamSession.objects.filter(
        rtms_stream_id=stream_id, state="stopped", media_deleted=True).first(), "the stream's content to be erased")
    assert revoked.stop_reason_name == "STREAM_REVOKED"
    with django_db_blocker.unblock():
        assert not TranscriptSegment.objects.filter(stream__rtms_stream_id=stream_id).exists()
        assert not MediaFile.objects.filter(stream__rtms_stream_id=stream_id).exists()
    processes.wait_for(lambda: not stack.stream_files(stream_id), 10, "the media files to be gone")
    stack.sim.post(f"/_sim/meetings/{meeting['id']}/end")
