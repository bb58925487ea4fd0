"""A stream's stop, reported twice: Zoom sends `meeting.rtms_stopped` and also ends the holder's signaling socket,
and each report reaches rtms.services.stream_stopped. The stream stops once: one transition, its holder told once
(Redis's control channel) and its text export published once (to Celery's broker). A revocation reported after
a plain stop still deletes what was stored."""

import json
import time

import pytest
from celery.signals import after_task_publish

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


@pytest.fixture
def published_tasks():
    """How many tasks of a name were published to Celery's broker for a stream while the test runs, counted as
    they are sent (a worker of the suite may be consuming the queue)."""
    published = []

    def record(sender=None, headers=None, **kwargs):
        published.append((headers["task"], headers["argsrepr"]))

    after_task_publish.connect(record, weak=False)
    yield lambda name, stream_id: sum(task == name and stream_id in args for task, args in published)
    after_task_publish.disconnect(record)


def held_stream(stream_id):
    return StreamSession.objects.create(rtms_stream_id=stream_id, meeting_uuid="m==", client_id="app",
                                        state=StreamState.ACTIVE)


def test_a_stop_reported_by_the_webhook_and_the_socket_stops_the_stream_once(control_messages, published_tasks):
    stream = held_stream("5" * 32)
    services.stream_stopped(stream.rtms_stream_id, StopReason.MEETING_ENDED)  # Zoom's webhook
    # The holder's signaling socket:
    services.stream_stopped(stream.rtms_stream_id, StopReason.MEETING_ENDED, reason="rtms stopped", worker="w1")

    assert StreamTransition.objects.filter(stream=stream, state=StreamState.STOPPED).count() == 1
    stops = [m for m in control_messages() if m == {"action": "stop", "stream_id": stream.rtms_stream_id}]
    assert len(stops) == 1
    assert published_tasks("rtms.export_stream_text", stream.rtms_stream_id) == 1


def test_a_revocation_reported_after_a_plain_stop_still_deletes_the_stream_content(control_messages,
                                                                                  published_tasks):
    stream = held_stream("6" * 32)
    services.stream_stopped(stream.rtms_stream_id, None, reason="rtms stopped", worker="w1")
    services.stream_stopped(stream.rtms_stream_id, StopReason.STREAM_REVOKED)

    assert published_tasks("rtms.export_stream_text", stream.rtms_stream_id) == 1
    assert published_tasks("rtms.delete_stream_media", stream.rtms_stream_id) == 1
    assert len([m for m in control_messages() if m["stream_id"] == stream.rtms_stream_id]) == 2


def test_a_stream_we_fail_is_exported_once_though_zoom_reports_the_stop_after(control_messages, published_tasks):
    stream = held_stream("7" * 32)
    services.stream_failed(stream.rtms_stream_id, StreamFailure.NOT_CONNECTED, "never connected", worker="w1")
    services.stream_stopped(stream.rtms_stream_id, StopReason.MEETING_ENDED)

    assert published_tasks("rtms.export_stream_text", stream.rtms_stream_id) == 1
    assert len([m for m in control_messages() if m["stream_id"] == stream.rtms_stream_id]) == 1
