"""A stream's stop, reported twice: Zoom sends `meeting.rtms_stopped` and also ends the holder's signaling socket,
and each report reaches rtms.services.stream_stopped. The stream stops once: one transition, its holder told once
(Redis's control channel) and its text export queued once (Celery's queue in Redis). A revocation reported after
a plain stop still deletes what was stored."""

import json
import time

import pytest
from django.conf import settings

from rtms import services
from rtms.client.protocol import StopReason
from rtms.holder_messages import control_channel
from rtms.models import StreamFailure, StreamSession, StreamState, StreamTransition
from rtms.redis_connection import redis_client

pytestmark = pytest.mark.django_db(transaction=True)

@pytest.fixture
def control_messages():
    """Every message published on the session hosts' control channel while the test runs."""
    pubsub = redis_client().pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe(control_channel())
    received = []

    def read():
        deadline = time.monotonic() + 0.5
        while time.monotonic() < deadline:
            message = pubsub.get_message(timeout=0.1)
            if message:
                received.append(json.loads(message["data"]))
        return received

    yield read
    pubsub.close()


def queued_tasks(name, stream_id):
    """Celery messages of task `name` for this stream waiting in the broker (no worker runs in these tests)."""
    queue = f"{settings.REDIS_NAMESPACE}:{settings.CELERY_TASK_DEFAULT_QUEUE}"
    found = 0
    for raw in redis_client().lrange(queue, 0, -1):
        headers = json.loads(raw)["headers"]
        found += headers["task"] == name and stream_id in headers["argsrepr"]
    return found


def held_stream(stream_id):
    return StreamSession.objects.create(rtms_stream_id=stream_id, meeting_uuid="m==", client_id="app",
                                        state=StreamState.ACTIVE)


def test_a_stop_reported_by_the_webhook_and_the_socket_stops_the_stream_once(control_messages):
    stream = held_stream("5" * 32)
    services.stream_stopped(stream.rtms_stream_id, StopReason.MEETING_ENDED)  # Zoom's webhook
    # The holder's signaling socket:
    services.stream_stopped(stream.rtms_stream_id, StopReason.MEETING_ENDED, reason="rtms stopped", worker="w1")

    assert StreamTransition.objects.filter(stream=stream, state=StreamState.STOPPED).count() == 1
    stops = [m for m in control_messages() if m == {"action": "stop", "stream_id": stream.rtms_stream_id}]
    assert len(stops) == 1
    assert queued_tasks("rtms.export_stream_text", stream.rtms_stream_id) == 1


def test_a_revocation_reported_after_a_plain_stop_still_deletes_the_stream_content(control_messages):
    stream = held_stream("6" * 32)
    services.stream_stopped(stream.rtms_stream_id, None, reason="rtms stopped", worker="w1")
    services.stream_stopped(stream.rtms_stream_id, StopReason.STREAM_REVOKED)

    assert queued_tasks("rtms.export_stream_text", stream.rtms_stream_id) == 1
    assert queued_tasks("rtms.delete_stream_media", stream.rtms_stream_id) == 1
    assert len([m for m in control_messages() if m["stream_id"] == stream.rtms_stream_id]) == 2


def test_a_stream_we_fail_is_exported_once_though_zoom_reports_the_stop_after(control_messages):
    stream = held_stream("7" * 32)
    services.stream_failed(stream.rtms_stream_id, StreamFailure.NOT_CONNECTED, "never connected", worker="w1")
    services.stream_stopped(stream.rtms_stream_id, StopReason.MEETING_ENDED)

    assert queued_tasks("rtms.export_stream_text", stream.rtms_stream_id) == 1
    assert len([m for m in control_messages() if m["stream_id"] == stream.rtms_stream_id]) == 1
