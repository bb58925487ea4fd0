"""The panel's JSON API: bound by a verified app context, roles checked server-side, fuzzed bodies refused."""

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.consent_support import context_for, make_app, meeting_uuid, open_panel, panel_action, panel_snapshot
from zoomapp.consent.models import AuditEntry, Meeting, Participant, Share

pytestmark = pytest.mark.django_db


@pytest.fixture
def meeting(client, app):
    uuid = meeting_uuid()
    host_token, _ = open_panel(client, app, uuid, "host1", "host", "Ana")
    ben_token, _ = open_panel(client, app, uuid, "ben1", "participant", "Ben")
    return {"uuid": uuid, "host": host_token, "ben": ben_token}


def test_panel_binds_role_from_the_context(client, app, meeting):
    _, state = open_panel(client, app, meeting["uuid"], "host1", "host")
    assert state["viewer"] == {"user_id": "host1", "is_host": True, "authorization": "unauthorized"}
    assert state["meeting"]["host_present"]  # the host's own verified context says the host is here


def test_request_reaches_the_host_and_the_participant_sees_request_sent(client, app, meeting):
    response = panel_action(client, app, meeting["ben"], action="request")
    assert response.status_code == 200
    mine = response.json()["state"]["shares"][0]
    assert (mine["user_name"], mine["status"]) == ("Ben", "pending")
    assert [r["user_name"] for r in panel_snapshot(meeting["host"])["requests"]] == ["Ben"]


def test_participant_host_actions_over_http_are_refused(client, app, meeting):
    panel_action(client, app, meeting["ben"], action="request")
    before = (Meeting.objects.get(uuid=meeting["uuid"]).version, AuditEntry.objects.count())
    for body in ({"action": "approve_all"}, {"action": "deny_all"}, {"action": "approve", "requests": [1]},
                 {"action": "set_toggles", "require_host_approval": False}):
        response = panel_action(client, app, meeting["ben"], **body)
        assert response.status_code == 403, response.content
        assert response.json() == {"error": "not_host", "message": "Only the meeting's host or a co-host can do this."}
    assert (Meeting.objects.get(uuid=meeting["uuid"]).version, AuditEntry.objects.count()) == before


def test_a_token_for_another_app_or_no_token_is_refused(client, app, meeting):
    other = make_app("Other")
    response = panel_action(client, other, meeting["ben"], action="request")
    assert response.status_code == 401 and response.json()["error"] == "token"
    response = client.post(f"/panel/{app.client_id}/api/action", data={"action": "request"},
                           content_type="application/json")
    assert response.status_code == 401 and response.json()["message"] == "missing panel token"


def test_the_state_is_read_over_the_socket_only(client, app, meeting):
    """No second way to read it: the panel's socket sends it, and each action's answer carries it."""
    response = client.get(f"/panel/{app.client_id}/api/state", HTTP_AUTHORIZATION=f"Bearer {meeting['host']}")
    assert response.status_code == 404


def test_guest_can_watch_but_not_request(client, app, meeting):
    token, state = open_panel(client, app, meeting["uuid"], None)
    assert state["viewer"]["user_id"].startswith("guest:")
    response = panel_action(client, app, token, action="request")
    assert response.status_code == 403 and response.json()["error"] == "guest"


def test_json_nested_deeper_than_the_parser_follows_is_refused_with_400(client, app, meeting):
    """Python's parser raises RecursionError, not ValueError, on it: that was a 500, before any login for the
    context post."""
    nested = "[" * 5000 + "]" * 5000
    posted = client.post(f"/panel/{app.client_id}/api/context", data=nested, content_type="application/json")
    acted = client.post(f"/panel/{app.client_id}/api/action", data=nested, content_type="application/json",
                        HTTP_AUTHORIZATION=f"Bearer {meeting['ben']}")
    for response in (posted, acted):
        assert response.status_code == 400
        assert response.json() == {"error": "bad_request", "message": "The body must be JSON."}


@pytest.mark.parametrize("name", ["a\x00b", "a\ud800b"], ids=["nul", "lone-surrogate"])
def test_a_name_postgresql_cannot_store_is_refused_and_binds_nothing(client, app, meeting, name):
    body = json.dumps({"context": context_for(app, meeting["uuid"], "cleo1"), "name": name})
    response = client.post(f"/panel/{app.client_id}/api/context", data=body, content_type="application/json")
    assert response.status_code == 400
    assert response.json() == {"error": "bad_request",
                               "message": "The name must not hold NUL characters or lone surrogates."}
    assert not Participant.objects.filter(meeting__uuid=meeting["uuid"], user_id="cleo1").exists()


BODIES = st.one_of(
    st.binary(max_size=200),
    st.dictionaries(
        st.one_of(st.sampled_from(["action", "share", "requests", "share_with_apps", "require_host_approval",
                                   "result", "detail"]), st.text(max_size=8)),
        st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=30),
                  st.lists(st.one_of(st.integers(), st.text(max_size=3)), max_size=4),
                  st.sampled_from(["request", "approve", "deny", "approve_all", "deny_all", "disable", "pause",
                                   "resume", "stop", "set_toggles", "in_client_result"])),
        max_size=5,
    ).map(lambda d: json.dumps(d).encode()),
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=BODIES)
def test_fuzzed_bodies_from_a_participant_never_5xx_and_never_change_host_state(client, app, meeting, body):
    before = Meeting.objects.filter(uuid=meeting["uuid"]).values("share_with_apps", "require_host_approval").get()
    response = client.post(f"/panel/{app.client_id}/api/action", data=body, content_type="application/json",
                           HTTP_AUTHORIZATION=f"Bearer {meeting['ben']}")
    assert response.status_code < 500
    assert response.status_code in (200, 400, 401, 403, 404, 409)
    if response.status_code != 200:
        assert set(response.json()) == {"error", "message"}
    after = Meeting.objects.filter(uuid=meeting["uuid"]).values("share_with_apps", "require_host_approval").get()
    assert after == before
    # Nothing but Ben's own request can appear.
    assert not Share.objects.filter(meeting__uuid=meeting["uuid"]).exclude(user_id="ben1").exists()
    assert not Share.objects.filter(meeting__uuid=meeting["uuid"], status__in=("starting", "sharing")).exists()


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=BODIES)
def test_fuzzed_context_posts_never_5xx(client, app, body):
    response = client.post(f"/panel/{app.client_id}/api/context", data=body, content_type="application/json")
    assert response.status_code in (400, 403)
    assert set(response.json()) == {"error", "message"}
