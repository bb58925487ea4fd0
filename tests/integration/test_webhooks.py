"""Zoom's webhook endpoint, in process (Django test client) against the real database and Redis."""

import hashlib
import hmac
import json
import re
import time
from datetime import timedelta

import pytest
from django.utils import timezone

from rtms.models import StreamSession, StreamTransition
from tests.webhook_support import deliver, event, signed_headers
from zoomapp.consent import meetings
from zoomapp.consent.actions import presence, sharing_requests
from zoomapp.consent.models import AuditEntry, Share
from zoomapp.consent.permissions import Actor
from zoomapp.console import tasks
from zoomapp.console.account_data import audit_entries
from zoomapp.marketplace.models import UserAuthorization, ZoomApp
from zoomapp.webhooks.models import WebhookDelivery
from zoomapp.webhooks.signals import zoom_event

pytestmark = pytest.mark.django_db(transaction=True)

SECRET_TOKEN = "whsec-test-token"


@pytest.fixture
def app():
    return ZoomApp.objects.create(
        name="Notes", client_id="clientNotes1", client_secret="cs-secret", webhook_secret_token=SECRET_TOKEN
    )


@pytest.fixture(autouse=True)
def no_worker(settings):
    """A Redis namespace of this module's own: the run's session worker neither claims nor holds these tests'
    streams, so what each webhook does to the row is Zoom's word alone."""
    settings.REDIS_NAMESPACE = f"{settings.REDIS_NAMESPACE}-webhooks"


@pytest.fixture
def announced():
    received = []

    def receiver(sender, event, payload, **kwargs):
        received.append((sender, event, payload))

    zoom_event.connect(receiver)
    yield received
    zoom_event.disconnect(receiver)


def started(stream_id="03db704592624398931a588dd78200cb", nested=False):
    fields = {"meeting_uuid": "4444AAAiAAAAAiAiAiiAii==", "operator_id": "30R7kT7bTIKSNUFEuH_Qlg",
              "rtms_stream_id": stream_id, "server_urls": "ws://127.0.0.1:9/signaling/x"}
    return {"event": "meeting.rtms_started", "event_ts": 1732520000000,
            "payload": {"account_id": "acc", "object": fields} if nested else fields}


def test_url_validation_answers_the_challenge(client, app):
    response = deliver(client, app, {"event": "endpoint.url_validation",
                                     "payload": {"plainToken": "qgg8vlvZRS6UYooatFL8Aw"}})
    assert response.status_code == 200
    expected = hmac.new(SECRET_TOKEN.encode(), b"qgg8vlvZRS6UYooatFL8Aw", hashlib.sha256).hexdigest()
    assert response.json() == {"plainToken": "qgg8vlvZRS6UYooatFL8Aw", "encryptedToken": expected}


def test_unsigned_url_validation_is_refused(client, app):
    # Answering it would let anyone have our secret token sign a string of their choice.
    body = json.dumps({"event": "endpoint.url_validation", "payload": {"plainToken": "abc"}}).encode()
    response = client.post(app.webhook_path, data=body, content_type="application/json")
    assert response.status_code == 401
    assert "x-zm-signature" in response.json()["message"]


@pytest.mark.parametrize("plain", ["\ud800", "x" * 129], ids=["lone-surrogate", "longer-than-zooms"])
def test_url_validation_refuses_a_token_it_cannot_answer(client, app, plain):
    response = deliver(client, app, {"event": "endpoint.url_validation", "payload": {"plainToken": plain}})
    assert response.status_code == 400
    assert response.json()["error"] == "malformed_event" and "plainToken" in response.json()["message"]


def test_rtms_started_delivered_three_times_makes_one_stream(client, app, announced):
    for _ in range(3):
        assert deliver(client, app, started()).status_code == 200
    stream = StreamSession.objects.get()
    assert (stream.rtms_stream_id, stream.state, stream.desired_state) == (
        "03db704592624398931a588dd78200cb", "starting", "running")
    assert stream.client_id == "clientNotes1" and stream.operator_id == "30R7kT7bTIKSNUFEuH_Qlg"
    delivery = WebhookDelivery.objects.get()
    assert (delivery.event, delivery.outcome, delivery.duplicates) == ("meeting.rtms_started", "accepted", 2)
    assert [event for _, event, _ in announced] == ["meeting.rtms_started"]
    assert announced[0][0] == app


def test_nested_payload_object_is_accepted(client, app, announced):
    assert deliver(client, app, started(nested=True)).status_code == 200
    assert StreamSession.objects.get().meeting_uuid == "4444AAAiAAAAAiAiAiiAii=="
    assert announced[0][2]["rtms_stream_id"] == "03db704592624398931a588dd78200cb"


def test_rtms_stopped_records_the_stop_reason(client, app):
    deliver(client, app, started())
    stopped = {"event": "meeting.rtms_stopped", "event_ts": 1732520600000,
               "payload": {"meeting_uuid": "4444AAAiAAAAAiAiAiiAii==",
                           "rtms_stream_id": "03db704592624398931a588dd78200cb", "stop_reason": 6}}
    assert deliver(client, app, stopped).status_code == 200
    stream = StreamSession.objects.get()
    assert (stream.state, stream.stop_reason, stream.stop_reason_name) == ("stopped", 6, "MEETING_ENDED")
    assert list(stream.transitions.values_list("state", flat=True)) == ["starting", "stopped"]


def stopped_event(stop_reason, stream_id="03db704592624398931a588dd78200cb"):
    return {"event": "meeting.rtms_stopped", "event_ts": 1732520600000,
            "payload": {"meeting_uuid": "4444AAAiAAAAAiAiAiiAii==", "rtms_stream_id": stream_id,
                        "stop_reason": stop_reason}}


def test_a_stop_delivered_before_its_start_is_recorded_and_the_start_changes_nothing(client, app):
    """Zoom retries a start answered late, minutes after: its stop can come first. The stop is recorded, the
    start then finds the stream stopped (never claimed), and the share takes Zoom's stop reason (docs/STREAMS.md
    "Deliveries out of order")."""
    operator, host = Actor("30R7kT7bTIKSNUFEuH_Qlg", "Olu"), Actor("hostW1", "Hana")
    meeting = meetings.get_meeting(app, "4444AAAiAAAAAiAiAiiAii==", host_user_id=host.user_id)
    presence.do_host_joined(meeting, host.user_id, host.name)
    sharing_requests.do_request(meeting, actor=operator)
    sharing_requests.do_approve(meeting, actor=host)  # REST start sent: "Starting…"
    assert deliver(client, app, stopped_event(5)).status_code == 200  # the host turned the app off in Zoom
    stream = StreamSession.objects.get()
    assert (stream.state, stream.desired_state, stream.stop_reason, stream.client_id, stream.meeting_uuid) == (
        "stopped", "stopped", 5, app.client_id, meeting.uuid)
    assert deliver(client, app, started()).status_code == 200  # Zoom's retry of the start
    stream = StreamSession.objects.get()
    assert (stream.state, stream.stop_reason, stream.operator_id) == ("stopped", 5, operator.user_id)
    assert list(stream.transitions.values_list("state", flat=True)) == ["stopped"]
    share = Share.objects.get(meeting=meeting, user_id=operator.user_id)
    assert (share.status, share.stop_reason) == ("disabled_by_host", 5)


def test_interrupted_then_started_again_keeps_one_stream(client, app):
    deliver(client, app, started())
    interrupted = {"event": "meeting.rtms_interrupted", "event_ts": 1732520300000,
                   "payload": {"meeting_uuid": "4444AAAiAAAAAiAiAiiAii==",
                               "rtms_stream_id": "03db704592624398931a588dd78200cb"}}
    assert deliver(client, app, interrupted).status_code == 200
    assert StreamSession.objects.get().state == "interrupted"

    # Zoom sends rtms_started again for the same stream, on another RTMS server (docs/STREAMS.md, case 1).
    again = started()
    again["payload"]["server_urls"] = "ws://127.0.0.1:9/signaling/moved"
    assert deliver(client, app, again).status_code == 200
    stream = StreamSession.objects.get()
    assert stream.server_urls == "ws://127.0.0.1:9/signaling/moved"
    assert list(stream.transitions.values_list("state", flat=True)) == ["starting", "interrupted"]


def test_every_verified_event_is_announced_after_commit(client, app, announced):
    joined = {"event": "meeting.participant_joined", "event_ts": 1, "payload": {
        "account_id": "acc1", "object": {"uuid": "m==", "id": "81234567890", "host_id": "u1", "topic": "Sync",
                                         "participant": {"user_id": "16778240", "id": "u1", "user_name": "Ana"}}}}
    deauth = {"event": "app_deauthorized", "event_ts": 2, "payload": {"user_id": "u1", "client_id": app.client_id}}
    assert deliver(client, app, joined).status_code == 200
    assert deliver(client, app, deauth).status_code == 200
    assert [(e, p.get("user_id")) for _, e, p in announced] == [("meeting.participant_joined", None),
                                                                  ("app_deauthorized", "u1")]
    assert announced[0][2]["account_id"] == "acc1"  # a meeting event is announced whole


def test_unknown_event_is_acknowledged_and_recorded(client, app, announced):
    response = deliver(client, app, {"event": "meeting.something_new", "event_ts": 3, "payload": {}})
    assert response.status_code == 200
    assert WebhookDelivery.objects.get().outcome == "unknown_event"


def test_operators_filter_deliveries_by_the_outcomes_a_delivery_can_have(client, admin_client, app):
    """The admin's outcome filter offers what the endpoint stores, a delivery accepted or of an event we do not
    know, and nothing no delivery can have."""
    deliver(client, app, {"event": "meeting.something_new", "event_ts": 3, "payload": {}})
    deliver(client, app, started())
    page = admin_client.get("/django-admin/webhooks/webhookdelivery/")
    assert page.status_code == 200
    offered = set(re.findall(r"[?&]outcome__exact=(\w+)", page.content.decode()))
    assert offered == {"accepted", "unknown_event"}
    assert set(WebhookDelivery.objects.values_list("outcome", flat=True)) == offered


@pytest.mark.parametrize(
    "tamper, status, error",
    [
        (lambda body, h: {**h, "x-zm-signature": "v0=" + "0" * 64}, 401, "bad_signature"),
        (lambda body, h: signed_headers("another-apps-token", body), 401, "bad_signature"),
        (lambda body, h: signed_headers(SECRET_TOKEN, body, timestamp=int(time.time()) - 301), 401, "stale_timestamp"),
        (lambda body, h: signed_headers(SECRET_TOKEN, body, timestamp=int(time.time()) + 3600), 401, "stale_timestamp"),
        (lambda body, h: {**h, "x-zm-request-timestamp": "soon"}, 400, "bad_timestamp"),
        (lambda body, h: {}, 401, "unsigned"),
    ],
    ids=["forged", "other-secret", "stale", "future", "garbled-timestamp", "unsigned"],
)
def test_bad_deliveries_are_refused_and_change_nothing(client, app, announced, tamper, status, error):
    deliver(client, app, started("aaaa0000aaaa0000aaaa0000aaaa0000"))
    before = (StreamSession.objects.count(), StreamTransition.objects.count(), WebhookDelivery.objects.count())
    body = json.dumps(started("bbbb1111bbbb1111bbbb1111bbbb1111")).encode()
    response = deliver(client, app, None, headers=tamper(body, signed_headers(SECRET_TOKEN, body)), raw=body)
    assert response.status_code == status
    assert response.json()["error"] == error and response.json()["message"]
    after = (StreamSession.objects.count(), StreamTransition.objects.count(), WebhookDelivery.objects.count())
    assert after == before
    assert len(announced) == 1


@pytest.mark.parametrize("raw", [b"{not json", b"[1, 2]", b'{"payload": {}}', b'{"event": 5}', b"\xff\xfe"])
def test_malformed_bodies_are_refused(client, app, raw):
    response = deliver(client, app, None, headers=signed_headers(SECRET_TOKEN, raw), raw=raw)
    assert response.status_code == 400
    assert response.json()["error"] in ("malformed_json", "malformed_event")
    assert not WebhookDelivery.objects.exists()


def test_rtms_started_without_stream_id_is_refused(client, app):
    document = started()
    del document["payload"]["rtms_stream_id"]
    response = deliver(client, app, document)
    assert response.status_code == 400
    assert not WebhookDelivery.objects.exists() and not StreamSession.objects.exists()


def test_unknown_app_is_404(client):
    response = client.post("/zoom/webhooks/nobody", data=b"{}", content_type="application/json")
    assert response.status_code == 404
    assert response.json()["error"] == "unknown_app"


def test_a_body_over_256_kib_is_refused_with_413_and_changes_nothing(client, app, announced):
    limit = 256 * 1024
    document = started()
    document["payload"]["padding"] = ""
    room = limit - len(json.dumps(document).encode())
    document["payload"]["padding"] = "x" * room
    at_the_limit = json.dumps(document).encode()
    assert len(at_the_limit) == limit
    over = at_the_limit[:-1] + b' }'  # one byte more, still valid JSON and correctly signed

    response = deliver(client, app, raw=over)
    assert response.status_code == 413
    assert response.json() == {"error": "too_large", "message": "The request body is too large."}
    assert not WebhookDelivery.objects.exists() and not StreamSession.objects.exists() and not announced

    assert deliver(client, app, raw=at_the_limit).status_code == 200  # the limit itself is accepted
    assert StreamSession.objects.get().rtms_stream_id == document["payload"]["rtms_stream_id"]


def _handling(le=None):
    from prometheus_client import REGISTRY

    name = "zoom_webhook_handling_seconds_" + ("bucket" if le else "count")
    return REGISTRY.get_sample_value(name, {"le": le} if le else {}) or 0.0


def test_an_answer_after_zooms_3_s_is_counted_and_logged_for_the_operator(client, app, monkeypatch, caplog):
    """Zoom retries a delivery we answer after 3 s: operators see each answer's time on /metrics, and the late
    ones in the log. The clock is the edge here: handling the event 'takes' 3.5 s."""
    from zoomapp.webhooks import views

    now = [1000.0]
    monkeypatch.setattr(views, "_clock", lambda: now[0])

    def slow_receiver(**kwargs):
        now[0] += 3.5

    fast = deliver(client, app, {"event": "meeting.something_new", "event_ts": 4, "payload": {}})
    assert fast.status_code == 200
    counted, within = _handling(), _handling("3.0")
    zoom_event.connect(slow_receiver)
    try:
        with caplog.at_level("WARNING", logger="zoomapp.webhooks"):
            late = deliver(client, app, {"event": "meeting.something_new", "event_ts": 5, "payload": {}})
    finally:
        zoom_event.disconnect(slow_receiver)

    assert late.status_code == 200  # still answered: Zoom's retry will be acknowledged as a duplicate
    assert (_handling(), _handling("3.0")) == (counted + 1, within)  # counted past the 3 s bucket
    [warning] = [r for r in caplog.records if r.getMessage().startswith("webhook answered after Zoom's 3 s")]
    assert (warning.client_id, warning.status, warning.seconds) == (app.client_id, 200, 3.5)


# --- app_deauthorized (docs/SECURITY.md "Identifiers checked at the edge", "Operators and account admins") ----------


def grant(app, user_id, account_id):
    return UserAuthorization.objects.create(app=app, user_id=user_id, account_id=account_id, access_token="tok",
                                            refresh_token="ref", expires_at=timezone.now() + timedelta(hours=1))


def deauthorized(app, **ids):
    return event("app_deauthorized", {**ids, "client_id": app.client_id})


def test_a_deauthorization_naming_another_account_leaves_that_accounts_audit_unchanged(client, app, monkeypatch):
    """The payload's account_id is the sender's word: a user's removal is recorded for the account of that
    user's grant to this app, and for no account when there is no grant."""
    monkeypatch.setattr(tasks.delete_user_data, "delay", lambda *args: tasks.delete_user_data.apply(args))
    grant(app, "danaUser1", "acctHome")
    victims_audit = list(audit_entries("acctVictim"))

    for user_id in ("danaUser1", "neverAuthorized1"):
        response = deliver(client, app, deauthorized(app, user_id=user_id, account_id="acctVictim"))
        assert response.status_code == 200

    assert list(audit_entries("acctVictim")) == victims_audit
    assert not UserAuthorization.objects.filter(user_id="danaUser1").exists()
    assert sorted(audit_entries("acctHome").values_list("kind", "subject_user_id")) == [
        ("tokens_deleted", "danaUser1"), ("user_data_deleted", "danaUser1")]


@pytest.mark.parametrize("ids, field", [
    ({"user_id": "../x", "account_id": "acctHome"}, "payload.user_id"),
    ({"account_id": "acctHome"}, "payload.user_id"),
    ({"user_id": "danaUser1", "account_id": "acct/../x"}, "payload.account_id"),
    ({"user_id": "danaUser1", "account_id": ["acctHome"]}, "payload.account_id"),
], ids=["path-as-user", "no-user", "path-as-account", "list-as-account"])
def test_a_deauthorization_with_a_malformed_id_is_refused_and_deletes_nothing(client, app, ids, field):
    grant(app, "danaUser1", "acctHome")
    response = deliver(client, app, deauthorized(app, **ids))
    assert response.status_code == 400
    body = response.json()
    assert body["error"] == "invalid_identifier" and body["message"].startswith(f"app_deauthorized: {field} is not")
    assert UserAuthorization.objects.filter(user_id="danaUser1").exists()
    assert not WebhookDelivery.objects.exists() and not AuditEntry.objects.exists()


def test_a_late_deauthorization_leaves_the_grant_and_streams_of_a_reinstall_alone(client, app, monkeypatch):
    """Dana removed the app ten minutes ago and installed it again; Zoom's app_deauthorized, retried, arrives now.
    The stream of her first install goes; her new grant and the stream she started with it stay (docs/SECURITY.md
    "A late deauthorization")."""
    monkeypatch.setattr(tasks.delete_user_data, "delay", lambda *args: tasks.delete_user_data.apply(args))
    dana = "30R7kT7bTIKSNUFEuH_Qlg"  # started()'s operator
    deliver(client, app, started("0ld5tream0000000000000000000000a"))
    removed_ms = int(time.time() * 1000) - 600_000
    StreamSession.objects.update(created=timezone.now() - timedelta(hours=1))  # started before she removed the app
    reinstalled = grant(app, dana, "acctHome")
    assert deliver(client, app, started("n3w5tream0000000000000000000000b")).status_code == 200

    response = deliver(client, app, event("app_deauthorized", {"user_id": dana, "client_id": app.client_id},
                                          event_ts=removed_ms))

    assert response.status_code == 200
    assert UserAuthorization.objects.filter(pk=reinstalled.pk).exists()
    streams = {s.rtms_stream_id: (s.media_deleted, s.desired_state) for s in StreamSession.objects.all()}
    assert streams == {"0ld5tream0000000000000000000000a": (True, "stopped"),
                       "n3w5tream0000000000000000000000b": (False, "running")}
    tokens_deleted = AuditEntry.objects.get(kind="tokens_deleted")
    assert (tokens_deleted.detail["authorizations"], tokens_deleted.detail["kept_made_after_deauthorization"]) == (
        0, 1)

    # Removed again now: this one is about the new grant, and everything goes.
    assert deliver(client, app, event("app_deauthorized", {"user_id": dana, "client_id": app.client_id}
                                      )).status_code == 200
    assert not UserAuthorization.objects.filter(user_id=dana).exists()
    assert set(StreamSession.objects.values_list("media_deleted", flat=True)) == {True}
