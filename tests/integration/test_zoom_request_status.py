"""Zoom's rtms.request_status through the real webhook endpoint: a well-formed answer names the requester's
outcome; an answer we do not read as assumed is stored and changes nothing; an id that is not a valid id is refused
with 400 naming the field, and changes nothing."""

import pytest

from tests.consent_support import make_app, meeting_uuid
from tests.webhook_support import deliver, event
from zoomapp.consent import meetings
from zoomapp.consent.actions import host_controls, presence, sharing_requests
from zoomapp.consent.models import Meeting, Share
from zoomapp.consent.permissions import Actor
from zoomapp.webhooks.models import WebhookDelivery

pytestmark = pytest.mark.django_db(transaction=True)

HOST, PAT = Actor("hostZ1"), Actor("patUser01", "Pat")


@pytest.fixture
def asked():
    """Pat asked in a meeting whose panel says no approval, so Pat's own panel asked Zoom."""
    app = make_app()
    meeting = meetings.get_meeting(app, meeting_uuid(), host_user_id=HOST.user_id)
    presence.do_host_joined(meeting, HOST.user_id)
    host_controls.do_set_toggles(meeting, require_host_approval=False, actor=HOST)
    sharing_requests.do_request(meeting, actor=PAT)
    return app, meeting


def answer(meeting, status, **overrides):
    return event("rtms.request_status", {"meeting_uuid": meeting.uuid, "operator_id": PAT.user_id,
                                         "request_status": status, **overrides})


def test_a_deny_in_zooms_modal_reaches_the_requester_as_denied_by_host(client, asked):
    app, meeting = asked
    response = deliver(client, app, answer(meeting, "denied"))
    assert response.status_code == 200
    assert Share.objects.get(meeting=meeting, user_id=PAT.user_id).status == "denied"
    assert Meeting.objects.get(pk=meeting.pk).require_host_approval  # Zoom asked its host: approval is on


@pytest.mark.parametrize("overrides", [
    {"request_status": "maybe"}, {"request_status": "waiting_for_admin"}, {"request_status": "APPROVED"},
    {"request_status": ""}, {"request_status": 3}, {"request_status": None}, {"request_status": []},
    {"request_status": {"status": "denied", "reason": "host"}}, {"operator_id": None}, {"meeting_uuid": None},
])
def test_an_answer_zoom_gives_otherwise_than_we_read_it_is_stored_and_changes_nothing(client, asked, caplog,
                                                                                     overrides):
    """The payload is our guess (docs/ZOOM.md §2.1): a value or a shape we do not know is Zoom answering
    otherwise, not a bad delivery, so it is not refused (Zoom would retry it three times, then drop it): it is
    kept for the operator to see."""
    app, meeting = asked
    before = list(Share.objects.filter(meeting=meeting).values("user_id", "status"))
    with caplog.at_level("WARNING", logger="zoomapp.webhooks"):
        response = deliver(client, app, answer(meeting, "denied", **overrides))
    assert response.status_code == 200
    stored = WebhookDelivery.objects.get(app=app, event="rtms.request_status")
    assert all(stored.payload[key] == value for key, value in overrides.items())
    assert list(Share.objects.filter(meeting=meeting).values("user_id", "status")) == before
    assert not Meeting.objects.get(pk=meeting.pk).require_host_approval  # no toggle follows an unknown answer
    assert any(r.getMessage() == "rtms.request_status not as we read it, stored and ignored" for r in caplog.records)


@pytest.mark.parametrize("overrides, error, field", [
    ({"operator_id": "../../etc"}, "invalid_identifier", "payload.operator_id"),
    ({"meeting_uuid": "a\x00b"}, "invalid_identifier", "payload.meeting_uuid"),
    ({"operator_id": ["user"]}, "invalid_identifier", "payload.operator_id"),
    # Longer than any column that holds a meeting UUID: it would be accepted, then lost in the receiver.
    ({"meeting_uuid": "A" * 99 + "=="}, "invalid_identifier", "payload.meeting_uuid"),
])
def test_a_malformed_answer_is_refused_naming_the_field_and_changes_nothing(client, asked, overrides, error, field):
    app, meeting = asked
    before = list(Share.objects.filter(meeting=meeting).values("user_id", "status"))
    response = deliver(client, app, answer(meeting, "denied", **overrides))
    assert response.status_code == 400
    body = response.json()
    assert body["error"] == error and field in body["message"] and body["message"].endswith("nothing was stored.")
    assert list(Share.objects.filter(meeting=meeting).values("user_id", "status")) == before
    assert not WebhookDelivery.objects.filter(app=app, event="rtms.request_status").exists()


def test_another_apps_answer_changes_nothing_of_this_app(client, asked):
    app, meeting = asked
    other = make_app("Intruder")
    assert deliver(client, other, answer(meeting, "denied")).status_code == 200
    assert Share.objects.get(meeting=meeting, user_id=PAT.user_id).status == "starting"
