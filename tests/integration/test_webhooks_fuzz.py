"""Property-based fuzzing of the webhook endpoint (in process, real database): whatever the body and headers,
no 5xx, and a refused delivery changes nothing stored."""

import json
import time

import pytest
from django.test import Client
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rtms.models import StreamSession, StreamTransition
from tests.webhook_support import signed_headers
from zoomapp.marketplace.models import ZoomApp
from zoomapp.webhooks.models import WebhookDelivery

pytestmark = pytest.mark.django_db

SECRET = "fuzz-secret-token"
FUZZ = settings(max_examples=700, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                          HealthCheck.too_slow])

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=40),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=12,
)
events = st.sampled_from([
    "meeting.rtms_started", "meeting.rtms_stopped", "meeting.rtms_interrupted", "webinar.rtms_started",
    "session.rtms_stopped", "endpoint.url_validation", "meeting.participant_joined", "app_deauthorized",
]) | st.text(max_size=120)
stream_ids = st.sampled_from(["03db704592624398931a588dd78200cb", "ffff"]) | st.text(max_size=80) | st.integers()
fields = st.fixed_dictionaries({}, optional={
    "meeting_uuid": st.text(max_size=140) | json_values, "rtms_stream_id": stream_ids,
    "server_urls": st.text(max_size=60) | json_values, "operator_id": st.text(max_size=120) | json_values,
    "stop_reason": st.integers() | json_values, "plainToken": st.text(max_size=60) | json_values,
    "webinar_uuid": st.text(max_size=30),
})
payloads = fields | fields.map(lambda f: {"object": f, "account_id": "acc"}) | json_values
documents = st.fixed_dictionaries({"event": events}, optional={"payload": payloads, "event_ts": json_values})


@pytest.fixture
def app(db):
    return ZoomApp.objects.create(name="Fuzz", client_id="fuzzApp", client_secret="x", webhook_secret_token=SECRET)


def stored():
    return (WebhookDelivery.objects.count(), StreamTransition.objects.count(),
            list(StreamSession.objects.values_list("rtms_stream_id", "state", "stop_reason")))


def post(client, body, headers):
    return client.post("/zoom/webhooks/fuzzApp", data=body, content_type="application/json", headers=headers)


@FUZZ
@given(document=documents | json_values, raw=st.none() | st.binary(max_size=300))
def test_signed_deliveries_never_fail_the_server(app, document, raw):
    """Signed, so each example may legitimately change state: a refusal is checked right away."""
    client = Client()
    body = raw if raw is not None else json.dumps(document).encode()
    before = stored()
    response = post(client, body, signed_headers(SECRET, body))
    assert response.status_code in (200, 400), response.content
    if response.status_code == 400:
        assert response.json()["error"] in (
            "malformed_json", "malformed_event", "invalid_identifier", "server_url_not_allowed")
        assert stored() == before


def test_unsigned_forged_or_stale_deliveries_change_nothing(app):
    client = Client()
    before = stored()

    @settings(FUZZ, max_examples=800)
    @given(document=documents, timestamp=st.text(max_size=20) | st.integers(-10**12, 10**13).map(str),
           signature=st.text(max_size=80) | st.just("v0=" + "0" * 64),
           header_names=st.sets(st.sampled_from(["x-zm-request-timestamp", "x-zm-signature"])))
    def refused(document, timestamp, signature, header_names):
        body = json.dumps(document).encode()
        headers = {"x-zm-request-timestamp": timestamp, "x-zm-signature": signature}
        headers = {k: v for k, v in headers.items() if k in header_names and v.isprintable() and v.isascii()}
        response = post(client, body, headers)
        assert response.status_code in (400, 401), response.content
        assert response.json()["message"]

    refused()
    assert stored() == before  # refused before anything is written: checked once for every example


def test_correctly_signed_but_stale_deliveries_are_refused(app):
    client = Client()
    before = stored()

    @settings(FUZZ, max_examples=500)
    @given(document=documents, age=st.integers(min_value=301, max_value=10**9))
    def stale(document, age):
        body = json.dumps(document).encode()
        timestamp = str(int(time.time()) - age)
        response = post(client, body, signed_headers(SECRET, body, timestamp))
        assert response.status_code == 401 and response.json()["error"] == "stale_timestamp"

    stale()
    assert stored() == before
