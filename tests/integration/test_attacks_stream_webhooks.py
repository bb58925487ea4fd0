"""RTMS webhooks as an attacker sends them, correctly signed (an app's webhook secret token is all it takes):
ids that are paths, server URLs outside the allow list, a second app aiming at the first app's streams, more
streams than the limits. In process (Django test client) against the real database; the same attacks against
a real worker and its files are in test_attacks_streams.py."""

import time

import pytest
from prometheus_client import REGISTRY

from rtms.models import StreamSession, StreamTransition
from tests.webhook_support import deliver
from zoomapp.marketplace.models import ZoomApp
from zoomapp.webhooks.models import WebhookDelivery

pytestmark = pytest.mark.django_db(transaction=True)

STREAM = "03db704592624398931a588dd78200cb"
TRAVERSALS = ["../x", "/etc", "%2e%2e", "..%2f..%2fetc", "a\x00b", "a" * 10_240]


@pytest.fixture
def app_a():
    return ZoomApp.objects.create(name="Notes", client_id="clientNotesA", client_secret="cs-a",
                                  webhook_secret_token="whsec-a", account_id="acctOwnerA")


@pytest.fixture
def app_b():
    """A second registered app: its admin holds its webhook secret token and signs what they like."""
    return ZoomApp.objects.create(name="Attacker", client_id="clientEvilB", client_secret="cs-b",
                                  webhook_secret_token="whsec-b", account_id="acctEvil")


def started(stream_id=STREAM, server_urls="ws://127.0.0.1:9/signaling", account_id=None, **overrides):
    fields = {"meeting_uuid": "4444AAAiAAAAAiAiAiiAii==", "operator_id": "30R7kT7bTIKSNUFEuH_Qlg",
              "rtms_stream_id": stream_id, "server_urls": server_urls, **overrides}
    payload = {"object": fields, "account_id": account_id} if account_id else fields
    return {"event": "meeting.rtms_started", "event_ts": int(time.time() * 1000), "payload": payload}


def stopped(stream_id=STREAM, reason=8):
    return {"event": "meeting.rtms_stopped", "event_ts": int(time.time() * 1000), "payload": {
        "meeting_uuid": "4444AAAiAAAAAiAiAiiAii==", "rtms_stream_id": stream_id, "stop_reason": reason}}


def interrupted(stream_id=STREAM):
    return {"event": "meeting.rtms_interrupted", "event_ts": int(time.time() * 1000), "payload": {
        "meeting_uuid": "4444AAAiAAAAAiAiAiiAii==", "rtms_stream_id": stream_id}}


def stored():
    streams = StreamSession.objects.values_list("rtms_stream_id", "client_id", "state", "stop_reason", "server_urls")
    return WebhookDelivery.objects.count(), StreamTransition.objects.count(), list(streams)


@pytest.mark.parametrize("stream_id", TRAVERSALS, ids=repr)
def test_stream_ids_that_are_paths_are_refused_and_nothing_is_stored(client, app_a, stream_id):
    before = stored()
    for document in (started(stream_id), stopped(stream_id), interrupted(stream_id)):
        response = deliver(client, app_a, document)
        assert response.status_code == 400
        assert response.json()["error"] == "invalid_identifier"
        message = response.json()["message"]
        assert message.startswith(f"{document['event']}: rtms_stream_id is not a valid rtms stream id")
    assert stored() == before


@pytest.mark.parametrize(("field", "value"), [
    ("meeting_uuid", "../../etc/passwd"), ("meeting_uuid", "%2e%2e"), ("meeting_uuid", "m\x00=="),
    ("meeting_uuid", "A" * 10_240), ("operator_id", "../x"), ("operator_id", "u\x00"), ("operator_id", 12),
])
def test_other_ids_of_rtms_started_are_checked_too(client, app_a, field, value):
    response = deliver(client, app_a, started(**{field: value}))
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_identifier"
    assert f"{field} is not a valid" in response.json()["message"]
    assert not StreamSession.objects.exists() and not WebhookDelivery.objects.exists()


@pytest.mark.parametrize("document", [stopped, interrupted], ids=lambda f: f.__name__)
def test_the_meeting_uuid_of_a_stop_or_interrupt_is_checked_too(client, app_a, document):
    event = document()
    event["payload"]["meeting_uuid"] = "../../m\x00"
    response = deliver(client, app_a, event)
    assert response.status_code == 400
    assert "meeting_uuid is not a valid meeting uuid" in response.json()["message"]
    assert not WebhookDelivery.objects.exists()


def test_an_account_id_that_is_not_one_is_refused(client, app_a):
    response = deliver(client, app_a, started(account_id="../acct"))
    assert response.status_code == 400 and "account_id is not a valid account id" in response.json()["message"]
    assert not StreamSession.objects.exists()


@pytest.mark.parametrize(("server_urls", "why"), [
    ("wss://evil.example/signaling", "host 'evil.example' is not in RTMS_ALLOWED_HOSTS"),
    ("ws://169.254.169.254/latest", "host '169.254.169.254' is not in RTMS_ALLOWED_HOSTS"),
    ("ws://127.0.0.1:9/signaling,wss://evil.example/signaling", "host 'evil.example' is not in RTMS_ALLOWED_HOSTS"),
    ("https://127.0.0.1/only-https", "server_urls holds no ws:// or wss:// URL"),
])
def test_server_urls_outside_the_allow_list_are_refused_and_nothing_is_stored(client, app_a, server_urls, why):
    response = deliver(client, app_a, started(server_urls=server_urls))
    assert response.status_code == 400
    assert response.json()["error"] == "server_url_not_allowed"
    assert why in response.json()["message"]
    assert not StreamSession.objects.exists() and not WebhookDelivery.objects.exists()


def test_production_allow_list_takes_zoom_over_wss_only(client, app_a, settings):
    settings.RTMS_ALLOWED_HOSTS = ["*.zoom.us"]
    settings.RTMS_ALLOW_INSECURE_WS = False
    refused = deliver(client, app_a, started(server_urls="ws://rtms.zoom.us/signaling"))
    assert refused.status_code == 400 and "only wss:// is allowed" in refused.json()["message"]
    refused = deliver(client, app_a, started(server_urls="wss://127.0.0.1:9101/signaling"))
    assert refused.status_code == 400 and "'127.0.0.1' is not in RTMS_ALLOWED_HOSTS" in refused.json()["message"]
    assert deliver(client, app_a, started(server_urls="wss://sjc-rtms.zoom.us/signaling")).status_code == 200
    assert StreamSession.objects.get().server_urls == "wss://sjc-rtms.zoom.us/signaling"


@pytest.mark.parametrize("attack", [stopped, interrupted, started], ids=lambda f: f.__name__)
def test_a_second_app_cannot_touch_the_first_apps_stream(client, app_a, app_b, attack):
    assert deliver(client, app_a, started()).status_code == 200
    before = stored()
    document = attack() if attack is not started else started(server_urls="ws://127.0.0.1:9/attacker")
    response = deliver(client, app_b, document)
    assert response.status_code == 403
    assert response.json() == {"error": "stream_of_another_app", "message":
                               f"{document['event']}: rtms_stream_id {STREAM} belongs to another app; nothing changed."}
    assert stored() == before
    assert not WebhookDelivery.objects.filter(app=app_b).exists()
    # The owner still can.
    assert deliver(client, app_a, stopped(reason=6)).status_code == 200
    assert StreamSession.objects.get().stop_reason == 6


def refused_count(reason):
    return REGISTRY.get_sample_value("rtms_streams_refused_total", {"reason": reason}) or 0


def test_over_the_apps_stream_limit_a_start_is_acknowledged_and_recorded_failed(client, app_a, settings):
    settings.RTMS_MAX_STREAMS_PER_APP = 2
    counted = refused_count("FAILED_APP_STREAM_LIMIT")
    for n in range(3):
        assert deliver(client, app_a, started(f"stream{n}")).status_code == 200  # Zoom's contract: acknowledge
    over = StreamSession.objects.get(rtms_stream_id="stream2")
    assert (over.state, over.desired_state, over.stop_reason, over.stop_reason_name) == (
        "stopped", "stopped", None, "FAILED_APP_STREAM_LIMIT")
    assert list(over.transitions.values_list("state", "reason")) == [
        ("stopped", "the app holds RTMS_MAX_STREAMS_PER_APP streams already")]
    assert refused_count("FAILED_APP_STREAM_LIMIT") == counted + 1
    # A retry of the refused start changes nothing; a stopped stream frees its place.
    assert deliver(client, app_a, started("stream2", server_urls="ws://127.0.0.1:9/retry")).status_code == 200
    assert StreamSession.objects.get(rtms_stream_id="stream2").state == "stopped"
    assert deliver(client, app_a, stopped("stream0", reason=6)).status_code == 200
    assert deliver(client, app_a, started("stream3")).status_code == 200
    assert StreamSession.objects.get(rtms_stream_id="stream3").state == "starting"


def test_the_account_limit_counts_every_app_of_the_account(client, app_a, app_b, settings):
    settings.RTMS_MAX_STREAMS_PER_ACCOUNT = 2
    assert deliver(client, app_a, started("a1", account_id="acctShared")).status_code == 200
    assert deliver(client, app_b, started("b1", account_id="acctShared")).status_code == 200
    assert deliver(client, app_b, started("b2", account_id="acctShared")).status_code == 200
    assert deliver(client, app_a, started("a2", account_id="acctOther")).status_code == 200
    rows = dict(StreamSession.objects.values_list("rtms_stream_id", "stop_reason_name"))
    assert rows == {"a1": "", "b1": "", "b2": "FAILED_ACCOUNT_STREAM_LIMIT", "a2": ""}
    assert StreamSession.objects.get(rtms_stream_id="b2").account_id == "acctShared"


def test_without_account_id_in_the_payload_the_apps_account_counts(client, app_a, settings):
    settings.RTMS_MAX_STREAMS_PER_ACCOUNT = 1
    assert deliver(client, app_a, started("s1")).status_code == 200
    assert deliver(client, app_a, started("s2")).status_code == 200
    assert StreamSession.objects.get(rtms_stream_id="s1").account_id == "acctOwnerA"
    assert StreamSession.objects.get(rtms_stream_id="s2").stop_reason_name == "FAILED_ACCOUNT_STREAM_LIMIT"


def test_a_refused_stream_shows_in_the_consoles_live_streams_with_its_reason(client, app_a, settings):
    from zoomapp.consent.models import Meeting
    from zoomapp.console.streams_feed import streams_snapshot

    settings.RTMS_MAX_STREAMS_PER_APP = 1
    Meeting.objects.create(app=app_a, uuid="4444AAAiAAAAAiAiAiiAii==", account_id="acctShared", topic="Weekly sync")
    assert deliver(client, app_a, started("held", account_id="acctShared")).status_code == 200
    assert deliver(client, app_a, started("refused", account_id="acctShared")).status_code == 200
    rows = {row["stream_id"]: (row["state"], row["stop_reason"], row["meeting"])
            for row in streams_snapshot("acctShared")["streams"]}
    assert rows == {"held": ("starting", "", "Weekly sync"),
                    "refused": ("stopped", "FAILED_APP_STREAM_LIMIT", "Weekly sync")}
