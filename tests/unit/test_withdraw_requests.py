"""A participant cancels their own pending request over the panel's API (action "withdraw"); someone else's, or one
the host already decided, is refused with a clear message and nothing changes; the host leaving withdraws what
waits for her."""

import pytest

from tests.consent_support import meeting_uuid, open_panel, panel_action, panel_snapshot
from zoomapp.consent import meetings
from zoomapp.consent.actions import presence
from zoomapp.consent.models import AuditEntry, Share, ShareRequest

pytestmark = pytest.mark.django_db


@pytest.fixture
def meeting(client, app):
    uuid = meeting_uuid()
    host_token, _ = open_panel(client, app, uuid, "host1", "host", "Ana")
    ben_token, _ = open_panel(client, app, uuid, "ben1", "participant", "Ben")
    cleo_token, _ = open_panel(client, app, uuid, "cleo1", "participant", "Cleo")
    panel_action(client, app, ben_token, action="request")
    share = Share.objects.get(meeting__uuid=uuid, user_id="ben1")
    return {"uuid": uuid, "host": host_token, "ben": ben_token, "cleo": cleo_token, "share": share.id}


def requests(meeting):
    return list(ShareRequest.objects.filter(share_id=meeting["share"]).values_list("status", "decided_by"))


def test_ben_withdraws_his_pending_request(client, app, meeting):
    response = panel_action(client, app, meeting["ben"], action="withdraw", share=meeting["share"])
    assert response.status_code == 200
    mine = response.json()["state"]["shares"][0]
    assert (mine["status"], mine["has_stream"]) == ("stopped", False)
    assert requests(meeting) == [("withdrawn", "ben1")]
    assert panel_snapshot(meeting["host"])["requests"] == []
    entry = AuditEntry.objects.get(kind="withdraw")
    assert (entry.actor_user_id, entry.subject_user_id, entry.outcome) == ("ben1", "ben1", "stopped")


@pytest.mark.parametrize("who", ["cleo", "host"])
def test_nobody_else_withdraws_bens_request(client, app, meeting, who):
    response = panel_action(client, app, meeting[who], action="withdraw", share=meeting["share"])
    assert response.status_code == 403
    assert response.json() == {"error": "not_your_app",
                               "message": "Only the person who asked can cancel this request."}
    assert requests(meeting) == [("pending", "")]


def test_a_decided_request_cannot_be_withdrawn(client, app, meeting):
    request_id = ShareRequest.objects.get(share_id=meeting["share"]).id
    assert panel_action(client, app, meeting["host"], action="deny", requests=[request_id]).status_code == 200
    response = panel_action(client, app, meeting["ben"], action="withdraw", share=meeting["share"])
    assert response.status_code == 409
    assert response.json()["error"] == "not_pending"
    assert requests(meeting) == [("denied", "host1")]


@pytest.mark.parametrize("share", ["1", None, -1, 2**60])
def test_a_malformed_share_is_refused(client, app, meeting, share):
    response = panel_action(client, app, meeting["ben"], action="withdraw", share=share)
    assert response.status_code == 400
    assert response.json()["error"] == "bad_request"
    assert requests(meeting) == [("pending", "")]


def test_the_host_leaving_withdraws_what_waits_for_her(client, app, meeting):
    presence.do_person_left(meetings.get_meeting(app, meeting["uuid"]), "host1", is_host=True)
    assert requests(meeting) == [("withdrawn", "zoom")]
    assert Share.objects.get(pk=meeting["share"]).status == "host_not_joined"
    assert AuditEntry.objects.get(kind="host_left").detail["requests_withdrawn"] == 1
