"""Streams attacked through the real interfaces, against daphne, a real Celery worker holding streams, beat's
reconciler, the simulator and the files under MEDIA_ROOT: signed webhooks whose stream ids are paths, a second
app's signed stop with reason 8 (STREAM_REVOKED) on the first app's live stream, an RTMS server whose signaling
reply sends the media sockets to a host outside the allow list, and a server_url nobody answers."""

import secrets
import socket
import threading
import time

import pytest

from tests import processes
from tests.hostile_rtms_server import HostileRtmsServer
from tests.integration.streams_stack import streams_stack, wait_for_row
from tests.webhook_support import event, post_signed

MAX_CONNECT_CLAIMS = 2


@pytest.fixture(scope="module")
def stack(stack_env, tmp_path_factory, django_db_blocker):
    with streams_stack(stack_env, tmp_path_factory.mktemp("attacks"), "attacks", django_db_blocker,
                       RTMS_MAX_CONNECT_CLAIMS=str(MAX_CONNECT_CLAIMS)) as stack:
        yield stack


@pytest.fixture(scope="module")
def second_app(stack, django_db_blocker):
    """Another registered app: whoever holds its webhook secret token can sign any event for its endpoint."""
    from zoomapp.marketplace.models import ZoomApp

    with django_db_blocker.unblock():
        return ZoomApp.objects.create(name="Other app", client_id=f"otherApp{secrets.token_hex(4)}",
                                      client_secret=secrets.token_hex(16), webhook_secret_token=secrets.token_hex(16))


def send(stack, app, name, **fields):
    return post_signed(stack.web.url, app, event(name, fields))


def started(stack, app, stream_id, server_urls, meeting_uuid="attackMeeting00000000A=="):
    return send(stack, app, "meeting.rtms_started", meeting_uuid=meeting_uuid, operator_id="opAttack",
                rtms_stream_id=stream_id, server_urls=server_urls)


def revoked(stack, app, stream_id, meeting_uuid="attackMeeting00000000A=="):
    return send(stack, app, "meeting.rtms_stopped", meeting_uuid=meeting_uuid, rtms_stream_id=stream_id,
                stop_reason=8)


def test_stream_ids_that_are_paths_are_refused_and_a_revoking_stop_deletes_nothing(stack, tmp_path,
                                                                                    django_db_blocker):
    from rtms.models import StreamSession
    from zoomapp.webhooks.models import WebhookDelivery

    outside = tmp_path / "precious"  # an absolute path on the worker's host
    sentinels = {
        "../x": stack.media_root / "x",                      # MEDIA_ROOT/rtms/../x
        "../../precious": stack.media_root.parent / "precious",
        str(outside): outside,
        "%2e%2e": stack.media_root / "rtms" / "%2e%2e",
        "x\x00": stack.media_root / "rtms" / "x",
        "a" * 10_240: stack.media_root / "rtms" / "a",
    }
    for directory in sentinels.values():
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "keep.txt").write_text("sentinel")
    for stream_id in sentinels:
        response = started(stack, stack.app, stream_id, "ws://127.0.0.1:9/signaling")
        assert response.status_code == 400, response.text
        assert response.json()["error"] == "invalid_identifier"
        assert "rtms_stream_id is not a valid rtms stream id" in response.json()["message"]
        response = revoked(stack, stack.app, stream_id)
        assert response.status_code == 400 and response.json()["error"] == "invalid_identifier"
    time.sleep(2)  # what a worker would do with a stop is done within a second
    for directory in sentinels.values():
        assert (directory / "keep.txt").read_text() == "sentinel", directory
    with django_db_blocker.unblock():
        assert not StreamSession.objects.filter(meeting_uuid="attackMeeting00000000A==").exists()
        assert not WebhookDelivery.objects.filter(meeting_uuid="attackMeeting00000000A==").exists()


def test_a_second_app_cannot_stop_interrupt_or_erase_the_first_apps_live_stream(stack, second_app,
                                                                                django_db_blocker):
    from rtms.models import MediaFile, StreamSession, TranscriptSegment

    meeting = stack.start_meeting("Targeted")
    stream_id = stack.start_stream(meeting)
    wait_for_row(django_db_blocker, lambda: StreamSession.objects.filter(
        rtms_stream_id=stream_id, state="active").exists(), "the first app's stream to be held", timeout=30)
    stack.speak(meeting, "Before the attack")
    wait_for_row(django_db_blocker, lambda: MediaFile.objects.filter(
        stream__rtms_stream_id=stream_id, bytes__gt=0).exists(), "audio stored")
    assert stack.stream_files(stream_id)

    for response in (revoked(stack, second_app, stream_id, meeting["uuid"]),
                     send(stack, second_app, "meeting.rtms_interrupted", meeting_uuid=meeting["uuid"],
                          rtms_stream_id=stream_id),
                     started(stack, second_app, stream_id, "ws://127.0.0.1:9/attacker", meeting["uuid"])):
        assert response.status_code == 403, response.text
        assert response.json()["error"] == "stream_of_another_app"
        assert f"rtms_stream_id {stream_id} belongs to another app; nothing changed" in response.json()["message"]

    time.sleep(2)  # a revoking stop would have erased the files by now
    stack.speak(meeting, "After the attack")
    wait_for_row(django_db_blocker, lambda: TranscriptSegment.objects.filter(
        stream__rtms_stream_id=stream_id, text__icontains="after the attack").exists(), "the stream to go on storing")
    with django_db_blocker.unblock():
        stream = StreamSession.objects.get(rtms_stream_id=stream_id)
        assert (stream.state, stream.media_deleted) == ("active", False)
        assert not stream.server_urls.endswith("/attacker")
        assert TranscriptSegment.objects.filter(stream=stream, text__icontains="before the attack").exists()
    assert any(path.suffix == ".wav" for path in stack.stream_files(stream_id))

    # The owner's own revoking stop still erases (so the refusals above are what kept the files).
    assert stack.sim.post(f"/_sim/streams/{stream_id}/stop", json={"reason": "STREAM_REVOKED"}).ok
    processes.wait_for(lambda: not stack.stream_files(stream_id), 15, "the owner's revoke to erase the files")
    stack.sim.post(f"/_sim/meetings/{meeting['id']}/end")


def last_reason(django_db_blocker, stream):
    with django_db_blocker.unblock():
        return stream.transitions.last().reason


class ConnectionRecorder:
    """A TCP listener on a loopback address outside the allow list: counts whoever connects to it."""

    def __init__(self, host="127.0.0.2"):
        self.socket = socket.socket()
        self.socket.bind((host, 0))
        self.socket.listen()
        self.socket.settimeout(0.2)
        self.url = f"ws://{host}:{self.socket.getsockname()[1]}"
        self.connections = 0
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self):
        while not self._done.is_set():
            try:
                conn, _ = self.socket.accept()
            except TimeoutError:
                continue
            self.connections += 1
            conn.close()

    def close(self):
        self._done.set()
        self._thread.join(2)
        self.socket.close()


def test_media_urls_outside_the_allow_list_are_never_connected_to(stack, django_db_blocker):
    from rtms.models import StreamSession

    recorder = ConnectionRecorder()
    server = HostileRtmsServer([], media_base=recorder.url).start()
    stream_id = secrets.token_hex(16)
    try:
        assert started(stack, stack.app, stream_id, server.signaling_url).status_code == 200
        failed = wait_for_row(django_db_blocker, lambda: StreamSession.objects.filter(
            rtms_stream_id=stream_id, state="stopped").first(), "the stream to end refused", timeout=30)
        assert failed.stop_reason_name == "FAILED_SERVER_URL_NOT_ALLOWED"
        assert "host '127.0.0.2' is not in RTMS_ALLOWED_HOSTS" in last_reason(django_db_blocker, failed)
        time.sleep(2)  # not re-claimed: the reconciler runs every 0.5 s here
        assert recorder.connections == 0
        assert [h["msg_type"] for h in server.handshakes] == [1]  # signaling only, no media handshake anywhere
        log = stack.workers[0].log_text()
        assert f"event=server_url_not_allowed meeting_uuid=attackMeeting00000000A== rtms_stream_id={stream_id}" in log
    finally:
        server.close()
        recorder.close()


def test_a_server_url_nobody_answers_ends_failed_after_bounded_claims(stack, django_db_blocker):
    from rtms.models import StreamSession

    stream_id = secrets.token_hex(16)
    closed_port = processes.free_port()  # allowed host, nothing listening
    assert started(stack, stack.app, stream_id, f"ws://127.0.0.1:{closed_port}/signaling").status_code == 200
    failed = wait_for_row(django_db_blocker, lambda: StreamSession.objects.filter(
        rtms_stream_id=stream_id, state="stopped").first(), "the stream to end failed", timeout=90)
    assert (failed.stop_reason, failed.stop_reason_name, failed.desired_state) == (
        None, "FAILED_NOT_CONNECTED", "stopped")
    assert failed.connect_claims == MAX_CONNECT_CLAIMS
    assert last_reason(django_db_blocker, failed) == f"not connected after {MAX_CONNECT_CLAIMS} claims"
    time.sleep(2)  # and it stays so: the reconciler leaves it alone
    with django_db_blocker.unblock():
        again = StreamSession.objects.get(rtms_stream_id=stream_id)
    assert (again.connect_claims, again.lease_generation, again.updated) == (
        failed.connect_claims, failed.lease_generation, failed.updated)
