"""Zoom's meeting events (nested: `payload.account_id` beside `payload.object`; `participant.user_id` a per-meeting
id, `participant.id` the Zoom user id; no role) through our webhook endpoint, in process against the real database
and Redis: what the meeting and its participants look like afterwards, and clear refusals of malformed payloads."""

import pytest

from tests.integration.test_webhooks import deliver
from zoomapp.consent.actions import sharing_requests
from zoomapp.consent.models import AuditEntry, Meeting, Participant, Share
from zoomapp.consent.permissions import Actor
from zoomapp.marketplace.models import ZoomApp
from zoomapp.webhooks import meeting_events
from zoomapp.webhooks.models import WebhookDelivery
from zoomapp.webhooks.signals import zoom_event

pytestmark = pytest.mark.django_db(transaction=True)

UUID = "4444AAAiAAAAAiAiAiiAii=="
HOST = "30R7kT7bTIKSNUFEuH_Qlg"
BEN = "z8yCLqVxRlWv0ZKpyCIRaw"


@pytest.fixture
def app():
    return ZoomApp.objects.create(name="Notes", client_id="clientNotes1", client_secret="cs-secret",
                                  webhook_secret_token="whsec-test-token")


@pytest.fixture
def typed():
    received = []

    def receiver(sender, meeting_event=None, **kwargs):
        if meeting_event is not None:
            received.append(meeting_event)

    zoom_event.connect(receiver)
    yield received
    zoom_event.disconnect(receiver)


def meeting_event(event, participant=None, event_ts=1732520000000, **meeting_fields):
    meeting_object = {"id": "81234567890", "uuid": UUID, "host_id": HOST, "topic": "Weekly sync", "type": 2,
                      "start_time": "2026-11-29T20:00:00Z", "timezone": "UTC", "duration": 60, **meeting_fields}
    if participant is not None:
        meeting_object["participant"] = participant
    return {"event": event, "event_ts": event_ts, "payload": {"account_id": "acctHost1", "object": meeting_object}}


def person(per_meeting_id, name, zoom_user_id=None, **fields):
    fields = {"user_id": per_meeting_id, "user_name": name, "email": "", "join_time": "2026-11-29T20:00:05Z",
              **fields}
    if zoom_user_id:
        fields["id"] = fields["participant_user_id"] = zoom_user_id
    return fields


def role_change(per_meeting_id, name, zoom_user_id, old, new, event_ts):
    participant = {"user_id": per_meeting_id, "user_name": name, "email": "", "date_time": "2026-11-29T20:01:00Z",
                   "old_role": old, "new_role": new}
    if zoom_user_id:
        participant["participant_user_id"] = zoom_user_id
    return meeting_event("meeting.participant_role_changed", participant, event_ts=event_ts)


def people(app):
    return {p.user_id: (p.role, p.present, p.name)
            for p in Participant.objects.filter(meeting__app=app, meeting__uuid=UUID)}


def test_joins_key_people_by_zoom_user_id_and_recognise_the_host_by_host_id(client, app, typed):
    assert deliver(client, app, meeting_event("meeting.started")).status_code == 200
    for event_ts, joined in enumerate([person("16778240", "Ana Host", HOST), person("16779264", "Ben", BEN),
                                       person("16780288", "Gus (guest)")], start=1):
        response = deliver(client, app, meeting_event("meeting.participant_joined", joined, event_ts=event_ts))
        assert response.status_code == 200

    meeting = Meeting.objects.get(app=app, uuid=UUID)
    assert (meeting.account_id, meeting.zoom_meeting_id, meeting.host_user_id, meeting.topic, meeting.host_present) == (
        "acctHost1", "81234567890", HOST, "Weekly sync", True)
    # Keyed by the Zoom user id (what app contexts carry as uid), never the per-meeting digits; the guest has no
    # Zoom user id and is not bound.
    assert people(app) == {HOST: ("host", True, "Ana Host"), BEN: ("participant", True, "Ben")}
    ana, ben, gus = [e for e in typed if isinstance(e, meeting_events.ParticipantJoined)]
    assert (ana.participant.participant_id, ana.participant.zoom_user_id, ana.is_host) == ("16778240", HOST, True)
    assert (ben.participant.participant_id, ben.participant.zoom_user_id, ben.is_host) == ("16779264", BEN, False)
    assert gus.participant.is_guest and not gus.is_host
    assert ben.meeting.account_id == "acctHost1" and ben.meeting.host_id == HOST
    assert WebhookDelivery.objects.filter(event="meeting.participant_joined", meeting_uuid=UUID).count() == 3


def test_co_host_from_role_changed_survives_a_rejoin_and_the_host_leaving_is_seen(client, app):
    deliver(client, app, meeting_event("meeting.participant_joined", person("16778240", "Ana Host", HOST), event_ts=1))
    deliver(client, app, meeting_event("meeting.participant_joined", person("16779264", "Ben", BEN), event_ts=2))
    assert deliver(client, app, role_change("16779264", "Ben", BEN, "attendee", "co-host", 3)).status_code == 200
    assert people(app)[BEN] == ("co-host", True, "Ben")

    deliver(client, app, meeting_event("meeting.participant_left", person("16779264", "Ben", BEN), event_ts=4))
    deliver(client, app, meeting_event("meeting.participant_joined", person("16781312", "Ben", BEN), event_ts=5))
    assert people(app)[BEN] == ("co-host", True, "Ben")  # no role in a join event: what Zoom told us stays

    deliver(client, app, meeting_event("meeting.participant_left", person("16778240", "Ana Host", HOST), event_ts=6))
    assert Meeting.objects.get(app=app, uuid=UUID).host_present is False
    assert people(app)[HOST] == ("host", False, "Ana Host")


def test_host_role_moves_with_participant_role_changed(client, app):
    deliver(client, app, meeting_event("meeting.participant_joined", person("16778240", "Ana Host", HOST), event_ts=1))
    deliver(client, app, meeting_event("meeting.participant_joined", person("16779264", "Ben", BEN), event_ts=2))
    assert deliver(client, app, role_change("16779264", "Ben", BEN, "attendee", "host", 3)).status_code == 200
    assert deliver(client, app, role_change("16778240", "Ana Host", HOST, "host", "co-host", 4)).status_code == 200
    assert people(app) == {HOST: ("co-host", True, "Ana Host"), BEN: ("host", True, "Ben")}
    # A guest made co-host has no Zoom user id: acknowledged, nothing bound.
    assert deliver(client, app, role_change("16780288", "Gus", None, "attendee", "co-host", 5)).status_code == 200
    assert set(people(app)) == {HOST, BEN}


def test_meeting_ended_ends_the_meeting(client, app):
    deliver(client, app, meeting_event("meeting.started"))
    assert deliver(client, app, meeting_event("meeting.ended", end_time="2026-11-29T21:00:00Z")).status_code == 200
    assert Meeting.objects.get(app=app, uuid=UUID).ended_at is not None


# --- deliveries out of order: each event is taken at its event_ts (docs/SECURITY.md "Roles follow Zoom's latest
# word", "Presence follows Zoom's latest word") ------------------------------------------------------------------


def audit_kinds(app):
    return list(AuditEntry.objects.filter(app=app, meeting_uuid=UUID).order_by("id").values_list("kind", flat=True))


def test_role_changes_delivered_out_of_order_leave_the_role_zoom_gave_last(client, app):
    """Zoom promoted Ben (ts 3) and demoted him (ts 4); the promotion, retried, arrives last and changes nothing."""
    deliver(client, app, meeting_event("meeting.participant_joined", person("16778240", "Ana Host", HOST), event_ts=1))
    deliver(client, app, meeting_event("meeting.participant_joined", person("16779264", "Ben", BEN), event_ts=2))

    assert deliver(client, app, role_change("16779264", "Ben", BEN, "co-host", "attendee", 4)).status_code == 200
    assert deliver(client, app, role_change("16779264", "Ben", BEN, "attendee", "co-host", 3)).status_code == 200

    assert people(app)[BEN] == ("participant", True, "Ben")
    assert Participant.objects.get(meeting__app=app, user_id=BEN).role_as_of_ms == 4


def test_a_join_delivered_after_a_later_leave_leaves_the_person_gone(client, app):
    """The host's and Ben's joins, retried, arrive after their leaves: nobody comes back, the host is not marked
    present and no host_joined follows her host_left. A join Zoom made after the leave still counts."""
    deliver(client, app, meeting_event("meeting.started", event_ts=1))
    deliver(client, app, meeting_event("meeting.participant_joined", person("16779264", "Ben", BEN), event_ts=2))
    deliver(client, app, meeting_event("meeting.participant_left", person("16778240", "Ana Host", HOST), event_ts=5))
    deliver(client, app, meeting_event("meeting.participant_left", person("16779264", "Ben", BEN), event_ts=6))

    deliver(client, app, meeting_event("meeting.participant_joined", person("16778240", "Ana Host", HOST), event_ts=3))
    deliver(client, app, meeting_event("meeting.participant_joined", person("16779264", "Ben", BEN), event_ts=4))

    assert Meeting.objects.get(app=app, uuid=UUID).host_present is False
    assert people(app) == {HOST: ("host", False, ""), BEN: ("participant", False, "Ben")}
    assert audit_kinds(app) == ["host_joined", "host_left", "participant_left"]

    deliver(client, app, meeting_event("meeting.participant_joined", person("16781312", "Ben", BEN), event_ts=7))
    deliver(client, app, meeting_event("meeting.participant_joined", person("16778240", "Ana Host", HOST), event_ts=8))
    assert Meeting.objects.get(app=app, uuid=UUID).host_present is True
    assert people(app) == {HOST: ("host", True, "Ana Host"), BEN: ("participant", True, "Ben")}


def test_a_leave_delivered_after_a_later_join_leaves_the_person_present(client, app):
    """The host and Ben left and came back; their leaves, retried, arrive last: both stay present, Ben's pending
    request is not withdrawn, and nobody is told the host has gone."""
    deliver(client, app, meeting_event("meeting.started", event_ts=1))
    deliver(client, app, meeting_event("meeting.participant_joined", person("16778240", "Ana Host", HOST), event_ts=2))
    deliver(client, app, meeting_event("meeting.participant_joined", person("16779264", "Ben", BEN), event_ts=3))
    deliver(client, app, meeting_event("meeting.participant_joined", person("16778240", "Ana Host", HOST), event_ts=6))
    deliver(client, app, meeting_event("meeting.participant_joined", person("16779264", "Ben", BEN), event_ts=7))
    meeting = Meeting.objects.get(app=app, uuid=UUID)
    sharing_requests.do_request(meeting, actor=Actor(BEN, "Ben"))

    deliver(client, app, meeting_event("meeting.participant_left", person("16778240", "Ana Host", HOST), event_ts=4))
    deliver(client, app, meeting_event("meeting.participant_left", person("16779264", "Ben", BEN), event_ts=5))

    assert Meeting.objects.get(app=app, uuid=UUID).host_present is True
    assert people(app) == {HOST: ("host", True, "Ana Host"), BEN: ("participant", True, "Ben")}
    assert Share.objects.get(meeting=meeting, user_id=BEN).status == "pending"
    assert "host_left" not in audit_kinds(app) and "participant_left" not in audit_kinds(app)


def test_an_ended_meeting_does_not_come_back_to_life(client, app):
    """meeting.started and the host's join, first delivered after meeting.ended, and a role change making Ben
    host: the meeting stays ended with no host present, and nothing is audited after meeting_ended."""
    deliver(client, app, meeting_event("meeting.participant_joined", person("16779264", "Ben", BEN), event_ts=2))
    deliver(client, app, meeting_event("meeting.ended", event_ts=10))

    deliver(client, app, meeting_event("meeting.started", event_ts=1))
    deliver(client, app, meeting_event("meeting.participant_joined", person("16778240", "Ana Host", HOST), event_ts=3))
    deliver(client, app, role_change("16779264", "Ben", BEN, "attendee", "host", 4))

    meeting = Meeting.objects.get(app=app, uuid=UUID)
    assert meeting.ended_at is not None and meeting.host_present is False
    assert audit_kinds(app) == ["meeting_ended"]
    assert people(app) == {BEN: ("participant", True, "Ben")}


def _flat_with_role():
    return {"event": "meeting.participant_joined", "event_ts": 1, "payload": {
        "meeting_uuid": UUID, "host_id": HOST, "account_id": "acctHost1",
        "participant": {"user_id": BEN, "user_name": "Ben", "role": "participant"}}}


def _without_account():
    document = meeting_event("meeting.started")
    del document["payload"]["account_id"]
    return document


@pytest.mark.parametrize("document, error, message", [
    (_flat_with_role(), "malformed_event", "meeting.participant_joined: payload.object is required"),
    (_without_account(), "malformed_event", "meeting.started: payload.account_id is required; nothing was stored."),
    (meeting_event("meeting.participant_joined", person(BEN, "Ben", BEN)), "invalid_identifier",
     "payload.object.participant.user_id is not a valid participant id"),
    (meeting_event("meeting.participant_joined", person("16779264", "Ben", "../../etc")), "invalid_identifier",
     "payload.object.participant.id is not a valid zoom user id: '../../etc'"),
    (meeting_event("meeting.started", host_id=""), "invalid_identifier",
     "payload.object.host_id is not a valid zoom user id"),
    (meeting_event("meeting.started", uuid="a b"), "invalid_identifier",
     "payload.object.uuid is not a valid meeting uuid"),
    (meeting_event("meeting.started", uuid="A" * 101), "invalid_identifier",
     "payload.object.uuid is not a valid meeting uuid"),
    (meeting_event("meeting.started", id="12a"), "malformed_event", "payload.object.id must be the numeric meeting id"),
    (meeting_event("meeting.participant_left"), "malformed_event", "payload.object.participant is required"),
    (role_change("16779264", "Ben", BEN, "attendee", "king", 1), "malformed_event",
     "payload.object.participant.new_role must be one of host, co-host, attendee"),
    (role_change("16779264", "Ben", BEN, {"role": "host"}, "host", 1), "malformed_event",
     "payload.object.participant.old_role must be one of host, co-host, attendee"),
    (meeting_event("meeting.started", topic="a\x00b"), "malformed_event",
     "payload.object.topic must be a string without NUL"),
    (meeting_event("meeting.participant_joined", person("16779264", ["Ben"], BEN)), "malformed_event",
     "payload.object.participant.user_name must be a string"),
], ids=["flat-with-role", "no-account", "zoom-id-as-participant-id", "path-as-user-id", "empty-host", "bad-uuid",
        "uuid-longer-than-its-column", "bad-meeting-number", "no-participant", "unknown-role", "object-as-role",
        "nul-topic", "list-as-name"])
def test_malformed_meeting_events_are_refused_and_change_nothing(client, app, typed, document, error, message):
    response = deliver(client, app, document)
    assert response.status_code == 400
    assert response.json()["error"] == error and message in response.json()["message"], response.json()
    assert response.json()["message"].endswith("; nothing was stored.")
    assert not WebhookDelivery.objects.exists() and not Meeting.objects.exists() and not typed
