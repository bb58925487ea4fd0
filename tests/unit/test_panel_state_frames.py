"""A pushed state is encoded once per viewer kind (panel_state.StateFrames): each panel still receives exactly what
viewer_state allows it to see, with its own "viewer" part."""

import json

import pytest

from tests.consent_support import make_app, meeting_uuid
from zoomapp.consent import meetings, panel_state
from zoomapp.consent.actions import presence, sharing_requests
from zoomapp.consent.models import Meeting
from zoomapp.consent.permissions import Actor

pytestmark = pytest.mark.django_db

HOST, BEN, CLEO = Actor("host1", "Ana", "test"), Actor("ben1", "Ben", "test"), Actor("cleo1", "Cleo", "test")


@pytest.fixture
def meeting(app):
    meeting = meetings.get_meeting(app, meeting_uuid(), host_user_id=HOST.user_id, account_id="acct1")
    presence.do_host_joined(meeting, HOST.user_id, "Ana")
    for actor in (BEN, CLEO):
        presence.do_participant_joined(meeting, actor.user_id, actor.name)
    return meeting


def frame_as_before(state, viewer_id):
    return json.dumps({"type": "state", "state": panel_state.viewer_state(state, viewer_id)}, separators=(",", ":"))


def test_each_viewer_gets_what_viewer_state_allows_from_shared_encodings(app, meeting):
    other_app = make_app("Summariser")
    seen_by_other = meetings.get_meeting(other_app, meeting.uuid, host_user_id=HOST.user_id, account_id="acct1")
    presence.do_host_joined(seen_by_other, HOST.user_id, "Ana")
    presence.do_participant_joined(seen_by_other, CLEO.user_id, "Cleo")
    sharing_requests.do_request(seen_by_other, actor=CLEO)
    sharing_requests.do_request(meeting, actor=BEN)
    state = panel_state.meeting_state(Meeting.objects.get(pk=meeting.pk))
    frames = panel_state.StateFrames()

    viewers = [HOST.user_id, BEN.user_id, CLEO.user_id, "dana1", "guest:x1", "guest:x2"]
    for viewer_id in viewers + viewers:  # the second time from the remembered encodings
        assert frames.frame(state, viewer_id) == frame_as_before(state, viewer_id)
    host_view = json.loads(frames.frame(state, HOST.user_id))["state"]
    assert [r["user_name"] for r in host_view["requests"]] == ["Ben"]
    assert host_view["other_apps"][0]["requests"] == [{"user_id": "cleo1", "user_name": "Cleo"}]
    assert json.loads(frames.frame(state, CLEO.user_id))["state"]["requests"] == []
    assert json.loads(frames.frame(state, "guest:x2"))["state"]["viewer"] == {"user_id": "guest:x2", "is_host": False}


def test_a_different_state_under_the_same_version_is_encoded_anew(app, meeting):
    frames = panel_state.StateFrames()
    state = panel_state.meeting_state(Meeting.objects.get(pk=meeting.pk))
    frames.frame(state, BEN.user_id)
    changed = dict(state, meeting=dict(state["meeting"], topic="Renamed"))
    assert json.loads(frames.frame(changed, BEN.user_id))["state"]["meeting"]["topic"] == "Renamed"
