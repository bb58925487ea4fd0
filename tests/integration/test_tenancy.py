"""Tenancy, attacked the way a second app's credentials would be used (docs/SECURITY.md "Tenancy").

App A ("Notes Bot") and app B ("Intruder") are both registered with this deployment; the attacker holds B's
client secret and webhook secret token. Every attack goes through the real endpoints: signed webhooks to B's
event URL, app contexts encrypted with B's secret posted to B's panel API, and B's panel socket. Each test checks
the refusal and that A's rows are exactly as before.
"""

import json
import time

import pytest
from asgiref.sync import sync_to_async
from django.core import signing

from tests.consent_support import connect_panel, make_app, meeting_uuid, open_panel, panel_action
from tests.webhook_support import deliver, event
from zoomapp.consent import meetings, receivers, tokens
from zoomapp.consent.actions import presence
from zoomapp.consent.models import AuditEntry, Meeting, Share, ShareRequest

pytestmark = pytest.mark.django_db(transaction=True)

HOST_ID, BEN_ID = "hanaHost01", "benUser001"


def meeting_event(name, uuid, account_id, host_id, **object_fields):
    """A meeting event in Zoom's nested shape: account_id beside object, ids inside it."""
    return event(name, {"account_id": account_id,
                        "object": {"uuid": uuid, "id": 85212345678, "host_id": host_id, "topic": "Board review",
                                   **object_fields}})


@pytest.fixture
def apps():
    return make_app("Notes Bot"), make_app("Intruder")


@pytest.fixture
def meeting_of_a(client, apps):
    """A's meeting: Hana hosts, Ben asked A to share; what A knows about it, to compare after each attack."""
    app_a, _ = apps
    uuid = meeting_uuid()
    meetings.get_meeting(app_a, uuid, host_user_id=HOST_ID, account_id="acctVictim")
    host_token, _ = open_panel(client, app_a, uuid, HOST_ID, "host", "Hana")
    ben_token, _ = open_panel(client, app_a, uuid, BEN_ID, "participant", "Ben")
    assert panel_action(client, app_a, ben_token, action="request").status_code == 200
    return {"uuid": uuid, "host": host_token, "ben": ben_token}


def rows_of(app, uuid):
    meeting = Meeting.objects.get(app=app, uuid=uuid)
    return {
        "meeting": {k: getattr(meeting, k) for k in ("account_id", "host_user_id", "host_present", "ended_at",
                                                      "share_with_apps", "require_host_approval", "topic")},
        "shares": list(Share.objects.filter(meeting=meeting).values("user_id", "status", "rtms_stream_id")),
        "requests": list(ShareRequest.objects.filter(share__meeting=meeting).values("id", "status")),
    }


def test_a_second_apps_signed_meeting_ended_does_not_end_the_first_apps_meeting(client, apps, meeting_of_a):
    app_a, app_b = apps
    before = rows_of(app_a, meeting_of_a["uuid"])
    response = deliver(client, app_b, meeting_event("meeting.ended", meeting_of_a["uuid"], "acctAttacker",
                                                            "attackerHost"))
    assert response.status_code == 200  # a valid event for B: B's own view of the meeting ends
    assert Meeting.objects.get(app=app_b, uuid=meeting_of_a["uuid"]).ended_at is not None
    assert rows_of(app_a, meeting_of_a["uuid"]) == before


def test_a_second_apps_events_cannot_move_the_meeting_to_another_account(client, apps, meeting_of_a):
    app_a, app_b = apps
    before = rows_of(app_a, meeting_of_a["uuid"])
    for name in ("meeting.started", "meeting.participant_joined"):
        response = deliver(client, app_b, meeting_event(
            name, meeting_of_a["uuid"], "acctAttacker", "attackerHost",
            participant={"user_id": "16778240", "id": "attackerHost", "user_name": "Mallory"}))
        assert response.status_code == 200
    assert rows_of(app_a, meeting_of_a["uuid"]) == before
    assert before["meeting"]["account_id"] == "acctVictim"


def test_identity_fields_are_kept_from_the_first_verified_source_of_the_same_app(apps):
    app_a, _ = apps
    uuid = meeting_uuid()
    meetings.get_meeting(app_a, uuid, host_user_id=HOST_ID, account_id="acctVictim")
    meetings.get_meeting(app_a, uuid, host_user_id="someoneElse", account_id="acctOther", topic="Renamed")
    meeting = Meeting.objects.get(app=app_a, uuid=uuid)
    assert (meeting.host_user_id, meeting.account_id, meeting.topic) == (HOST_ID, "acctVictim", "Renamed")


def test_a_context_forged_with_a_second_apps_secret_cannot_decide_the_first_apps_request(client, apps, meeting_of_a):
    app_a, app_b = apps
    before = rows_of(app_a, meeting_of_a["uuid"])
    request_id = before["requests"][0]["id"]
    # The attacker claims to be Hana, as host, in a context encrypted with B's secret.
    forged_token, state = open_panel(client, app_b, meeting_of_a["uuid"], HOST_ID, "host", "Hana")
    assert state["requests"] == []  # B's view of the meeting holds none of A's requests
    for action in ("approve", "deny"):
        response = panel_action(client, app_b, forged_token, action=action, requests=[request_id])
        assert response.status_code == 409
        assert response.json() == {"error": "unknown_request",
                                   "message": "That request is no longer waiting for a decision."}
    response = panel_action(client, app_b, forged_token, action="disable", share=Share.objects.get(
        app=app_a, user_id=BEN_ID).pk)
    assert response.status_code == 409 and response.json()["error"] == "unknown_share"
    # B's panel token is refused at A's API outright.
    response = panel_action(client, app_a, forged_token, action="approve", requests=[request_id])
    assert response.status_code == 401 and response.json()["error"] == "token"
    assert rows_of(app_a, meeting_of_a["uuid"]) == before


async def next_message(communicator, kind, timeout=5):
    while True:
        message = json.loads(await communicator.receive_from(timeout=timeout))
        if message["type"] == kind:
            return message


class Segment:
    def __init__(self, text):
        self.user_name, self.text, self.start_time = "Ben", text, int(time.time() * 1000)



async def test_transcript_lines_reach_only_the_panels_of_the_app_that_holds_the_stream(apps):
    app_a, app_b = apps
    uuid = meeting_uuid()
    stream_id = "a1b2c3d4e5f60718293a4b5c6d7e8f90"

    def sharing_in_both():
        for app in (app_a, app_b):
            meeting = meetings.get_meeting(app, uuid, host_user_id=HOST_ID)
            Share.objects.create(meeting=meeting, app=app, user_id=BEN_ID, user_name="Ben", status="sharing",
                                 rtms_stream_id=stream_id)  # B claims the same stream id as A's

    await sync_to_async(sharing_in_both)()
    panel_a = await connect_panel(tokens.mint(app_a.client_id, uuid, BEN_ID))
    panel_b = await connect_panel(tokens.mint(app_b.client_id, uuid, BEN_ID))
    await next_message(panel_a, "state")
    await next_message(panel_b, "state")
    await sync_to_async(receivers.on_transcript)(None, lines={(app_a.client_id, stream_id):
                                                              [Segment("the budget is approved")]})
    lines = await next_message(panel_a, "transcript")
    assert [line["text"] for line in lines["lines"]] == ["the budget is approved"]
    assert await panel_b.receive_nothing(timeout=1.0)
    await panel_a.disconnect()
    await panel_b.disconnect()


def short_lived_token(app, uuid, user_id, seconds):
    """A genuine token whose expiry is `seconds` away (the clock is the edge of the world: we move the expiry)."""
    data = {"a": app.client_id, "m": uuid, "u": user_id, "g": "", "e": int(time.time()) + seconds}
    return signing.dumps(data, salt=tokens._SALT, compress=True)


async def test_a_panel_socket_is_closed_when_its_token_expires_unless_renewed(apps):
    app_a, _ = apps
    uuid = meeting_uuid()
    await sync_to_async(meetings.get_meeting)(app_a, uuid, host_user_id=HOST_ID)
    expiring = await connect_panel(short_lived_token(app_a, uuid, BEN_ID, 3))
    renewed = await connect_panel(short_lived_token(app_a, uuid, BEN_ID, 3))
    await renewed.send_to(text_data=json.dumps({"action": "renew",
                                                "token": tokens.mint(app_a.client_id, uuid, BEN_ID)}))
    assert (await next_message(renewed, "done"))["action"] == "renew"
    refused = await next_message(expiring, "refused", timeout=10)
    assert refused["message"] == "the panel token has expired"
    assert (await expiring.receive_output(timeout=10))["type"] == "websocket.close"
    assert await renewed.receive_nothing(timeout=1.5)  # still open past the first token's expiry
    await renewed.disconnect()


async def test_a_panel_socket_is_closed_when_zoom_says_its_user_left(apps):
    app_a, _ = apps
    uuid = meeting_uuid()
    meeting = await sync_to_async(meetings.get_meeting)(app_a, uuid, host_user_id=HOST_ID)
    await sync_to_async(presence.do_participant_joined)(meeting, BEN_ID, "Ben")
    ben = await connect_panel(tokens.mint(app_a.client_id, uuid, BEN_ID))
    host = await connect_panel(tokens.mint(app_a.client_id, uuid, HOST_ID))
    await next_message(ben, "state")
    await next_message(host, "state")
    await sync_to_async(presence.do_person_left)(meeting, BEN_ID)
    refused = await next_message(ben, "refused")
    assert (refused["code"], refused["message"]) == ("departed", "you are no longer in this meeting")
    closed = await ben.receive_output(timeout=10)
    assert (closed["type"], closed["code"]) == ("websocket.close", 4410)  # the panel stops; it never binds again
    assert "departed" not in (await next_message(host, "state"))["state"]  # who left is never sent to a panel
    await host.disconnect()
    entries = await sync_to_async(lambda: list(AuditEntry.objects.filter(kind="participant_left",
                                                                         meeting_uuid=uuid)))()
    assert len(entries) == 1
