"""rtms.zoom_rest against the simulator's REST API: start/pause/resume/stop, one refresh on 401, Zoom's errors
as named exceptions."""


import pytest

from rtms import zoom_rest
from tests.integration.streams_stack import streams_stack


@pytest.fixture(scope="module")
def stack(stack_env, tmp_path_factory, django_db_blocker):
    with streams_stack(stack_env, tmp_path_factory.mktemp("rest"), "rest", django_db_blocker, workers=(),
                       beat=False) as stack:
        yield stack


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
