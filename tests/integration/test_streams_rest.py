"""rtms.zoom_rest against the simulator's REST API: start/pause/resume/stop, one refresh on 401, Zoom's errors
as named exceptions."""

import socket
import threading
import time

import pytest

from rtms import zoom_rest
from tests import processes
from tests.integration.streams_stack import streams_stack


@pytest.fixture(scope="module")
def stack(stack_env, tmp_path_factory, django_db_blocker):
    with streams_stack(stack_env, tmp_path_factory.mktemp("rest"), "rest", django_db_blocker, workers=(),
                       beat=False) as stack:
        yield stack


@pytest.fixture(autouse=True)
def zoom_not_known_busy(monkeypatch):
    """Each test starts with Zoom not known busy in this process: one left busy by a test skips the next's calls."""
    monkeypatch.setattr(zoom_rest, "_busy_until", 0.0)


def participant(meeting, name):
    return next(p for p in meeting["participants"] if p["name"] == name)


@pytest.fixture
def meeting(stack):
    meeting = stack.start_meeting("REST control")
    yield meeting
    stack.sim.post(f"/_sim/meetings/{meeting['id']}/end")


def test_host_starts_pauses_resumes_and_stops(stack, meeting, settings):
    settings.ZOOM_API_URL = f"{stack.sim.http_url}/v2"
    token = stack.oauth_tokens(participant(meeting, "Ana")["user_id"])["access_token"]

    def provider(force_refresh=False):
        return token

    zoom_rest.update_rtms_app_status(meeting["id"], "start", stack.app.client_id, token_provider=provider)
    streams = stack.sim.get(f"/_sim/streams?meeting={meeting['id']}").json()
    assert len(streams) == 1 and streams[0]["client_id"] == stack.app.client_id
    # No worker runs in this stack: a resumed stream waits for its client again ("starting"), no longer paused.
    for action, state in (("pause", "paused"), ("resume", "starting"), ("stop", "stopped")):
        zoom_rest.update_rtms_app_status(meeting["id"], action, stack.app.client_id, token_provider=provider)
        assert stack.sim_stream(streams[0]["id"])["state"] == state


def test_expired_token_is_refreshed_once(stack, meeting, settings):
    settings.ZOOM_API_URL = f"{stack.sim.http_url}/v2"
    token = stack.oauth_tokens(participant(meeting, "Ana")["user_id"])["access_token"]
    asked = []

    def provider(force_refresh=False):
        asked.append(force_refresh)
        return token if force_refresh else "expired-token"

    zoom_rest.update_rtms_app_status(meeting["id"], "start", stack.app.client_id, token_provider=provider)
    assert asked == [False, True]


def test_participant_gets_2308(stack, meeting, settings):
    settings.ZOOM_API_URL = f"{stack.sim.http_url}/v2"
    token = stack.oauth_tokens(participant(meeting, "Ben")["user_id"])["access_token"]
    with pytest.raises(zoom_rest.NotAllowedToStartRtms) as refused:
        zoom_rest.update_rtms_app_status(meeting["id"], "start", stack.app.client_id,
                                         token_provider=lambda force_refresh=False: token)
    assert (refused.value.status, refused.value.code) == (403, 2308)
    assert refused.value.message == "Not allowed to start RTMS app"


def test_unknown_meeting_and_ineligible_account(stack, meeting, settings):
    settings.ZOOM_API_URL = f"{stack.sim.http_url}/v2"
    token = stack.oauth_tokens(participant(meeting, "Ana")["user_id"])["access_token"]

    def provider(force_refresh=False):
        return token

    with pytest.raises(zoom_rest.MeetingNotFound):
        zoom_rest.update_rtms_app_status("99999999999", "start", stack.app.client_id, token_provider=provider)
    stack.fault(kind="rest_error", path_contains="rtms_app/status", status=400, code=2310,
                message="Failed to perform RTMS app operation")
    with pytest.raises(zoom_rest.RtmsOperationFailed) as failed:
        zoom_rest.update_rtms_app_status(meeting["id"], "start", stack.app.client_id, token_provider=provider)
    assert failed.value.code == 2310
    assert isinstance(failed.value, zoom_rest.ZoomRestError)


def test_unreachable_zoom_is_a_retryable_error(settings):
    settings.ZOOM_API_URL = "http://127.0.0.1:9/v2"
    with pytest.raises(zoom_rest.ZoomUnavailable):
        zoom_rest.update_rtms_app_status("123", "start", "someapp", token_provider=lambda force_refresh=False: "t")


def _host_token_provider(stack, meeting):
    token = stack.oauth_tokens(participant(meeting, "Ana")["user_id"])["access_token"]
    return lambda force_refresh=False: token


def _faults_left(stack):
    return [f for f in stack.sim.get("/_sim/faults").json() if f["kind"] == "rest_error"]


@pytest.mark.parametrize("answer", [
    {"status": 503, "code": 0, "message": "Service Unavailable"},
    {"status": 500, "code": 3000, "message": "Internal error"},
    {"status": 400, "code": 3000, "message": "Server error, please try again"},
    {"status": 429, "code": 429, "message": "You have reached the maximum per-second rate limit for this API."},
])
def test_zoom_busy_once_is_retried_and_the_start_goes_through(stack, meeting, settings, answer):
    settings.ZOOM_API_URL = f"{stack.sim.http_url}/v2"
    stack.fault(kind="rest_error", path_contains="rtms_app/status", **answer)
    zoom_rest.update_rtms_app_status(meeting["id"], "start", stack.app.client_id,
                                     token_provider=_host_token_provider(stack, meeting))
    assert len(stack.sim.get(f"/_sim/streams?meeting={meeting['id']}").json()) == 1
    assert not _faults_left(stack)


def test_zooms_retry_after_is_waited_for(stack, meeting, settings, caplog):
    settings.ZOOM_API_URL = f"{stack.sim.http_url}/v2"
    stack.fault(kind="rest_error", path_contains="rtms_app/status", status=429, code=429,
                message="Too many requests", retry_after=1)
    with caplog.at_level("INFO", logger="rtms.zoom_rest"):
        zoom_rest.update_rtms_app_status(meeting["id"], "start", stack.app.client_id,
                                         token_provider=_host_token_provider(stack, meeting))
    assert [r.wait_s for r in caplog.records if r.getMessage() == "rtms_app status retried"] == [1.0]
    assert len(stack.sim.get(f"/_sim/streams?meeting={meeting['id']}").json()) == 1


@pytest.mark.parametrize("retry_after", ["120", "2099-01-01T00:00:00Z"])  # a minute-long wait; a daily limit
def test_a_retry_after_too_long_for_a_click_is_not_waited_for(stack, meeting, settings, retry_after):
    settings.ZOOM_API_URL = f"{stack.sim.http_url}/v2"
    stack.fault(kind="rest_error", path_contains="rtms_app/status", status=429, code=429,
                message="You have exceeded the daily rate limit", retry_after=retry_after)
    with pytest.raises(zoom_rest.ZoomUnavailable) as busy:
        zoom_rest.update_rtms_app_status(meeting["id"], "start", stack.app.client_id,
                                         token_provider=_host_token_provider(stack, meeting))
    assert busy.value.status == 429
    assert not stack.sim.get(f"/_sim/streams?meeting={meeting['id']}").json()


def test_zoom_still_busy_after_two_retries_is_an_error(stack, meeting, settings):
    settings.ZOOM_API_URL = f"{stack.sim.http_url}/v2"
    stack.fault(kind="rest_error", path_contains="rtms_app/status", status=503, code=0,
                message="Service Unavailable", count=4)
    try:
        with pytest.raises(zoom_rest.ZoomUnavailable):
            zoom_rest.update_rtms_app_status(meeting["id"], "start", stack.app.client_id,
                                             token_provider=_host_token_provider(stack, meeting))
        assert [f["count"] for f in _faults_left(stack)] == [1]  # three tries, one answer left unused
    finally:
        stack.sim.delete("/_sim/faults")


def test_a_refusal_is_not_retried(stack, meeting, settings):
    settings.ZOOM_API_URL = f"{stack.sim.http_url}/v2"
    stack.fault(kind="rest_error", path_contains="rtms_app/status", status=400, code=2310,
                message="Failed to perform RTMS app operation", count=2)
    try:
        with pytest.raises(zoom_rest.RtmsOperationFailed):
            zoom_rest.update_rtms_app_status(meeting["id"], "start", stack.app.client_id,
                                             token_provider=_host_token_provider(stack, meeting))
        assert [f["count"] for f in _faults_left(stack)] == [1]
    finally:
        stack.sim.delete("/_sim/faults")


def test_while_zoom_is_busy_only_the_call_it_refused_retries_and_the_others_fall_back_at_once(stack, settings,
                                                                                              caplog):
    """Every start, stop, pause and resume of a web process shares a few threads: during a Zoom-wide 429 each call
    waiting and retrying would hold one and send more into the rate limit; the others are not sent until the
    first one's Retry-After has passed."""
    settings.ZOOM_API_URL = f"{stack.sim.http_url}/v2"
    first, second = stack.start_meeting("Busy first"), stack.start_meeting("Busy second")
    failed = []

    def start_first():
        try:
            zoom_rest.update_rtms_app_status(first["id"], "start", stack.app.client_id,
                                             token_provider=_host_token_provider(stack, first))
        except zoom_rest.ZoomRestError as exc:
            failed.append(exc)

    try:
        stack.fault(kind="rest_error", path_contains="rtms_app/status", status=429, code=429,
                    message="Too many requests", retry_after=1)
        with caplog.at_level("INFO", logger="rtms.zoom_rest"):
            retrying = threading.Thread(target=start_first)
            retrying.start()
            processes.wait_for(lambda: any(r.getMessage() == "rtms_app status retried" for r in caplog.records), 5,
                               "Zoom to refuse the first start")
            asked = time.monotonic()
            with pytest.raises(zoom_rest.ZoomUnavailable, match="not sent"):
                zoom_rest.update_rtms_app_status(second["id"], "start", stack.app.client_id,
                                                 token_provider=_host_token_provider(stack, second))
            assert time.monotonic() - asked < 0.5
            retrying.join(10)
        assert not failed
        assert len(stack.sim.get(f"/_sim/streams?meeting={first['id']}").json()) == 1
        # Zoom's one refusal was spent on the first start: had the second been sent, it would have started.
        assert not stack.sim.get(f"/_sim/streams?meeting={second['id']}").json()
        zoom_rest.update_rtms_app_status(second["id"], "start", stack.app.client_id,
                                         token_provider=_host_token_provider(stack, second))
        assert len(stack.sim.get(f"/_sim/streams?meeting={second['id']}").json()) == 1
    finally:
        for meeting in (first, second):
            stack.sim.post(f"/_sim/meetings/{meeting['id']}/end")


def test_a_connection_lost_after_the_request_went_out_is_not_sent_again(settings):
    """Zoom may have acted on a request whose connection was reset before the answer: a second start would be
    refused and send the host to Zoom's modal. Only a connection that could not be opened is retried."""
    received = []
    with socket.create_server(("127.0.0.1", 0)) as zoom:
        zoom.settimeout(10)

        def hang_up_after_reading():
            while True:
                try:
                    connection, _ = zoom.accept()
                except OSError:
                    return
                with connection:
                    received.append(connection.recv(65536))

        threading.Thread(target=hang_up_after_reading, daemon=True).start()
        settings.ZOOM_API_URL = f"http://127.0.0.1:{zoom.getsockname()[1]}/v2"
        with pytest.raises(zoom_rest.ZoomUnavailable, match="could not be reached"):
            zoom_rest.update_rtms_app_status("123", "start", "someapp", token_provider=lambda force_refresh=False: "t")
    assert len(received) == 1 and received[0].startswith(b"PATCH ")
