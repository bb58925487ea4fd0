"""Zoom's event endpoint, one per registered app: POST /zoom/webhooks/<client_id>.

Order of checks (docs/ZOOM.md §2.3–§2.5), each refusal a JSON `{"error", "message"}` that changes nothing:
unknown app 404 → missing/garbled signature headers 401/400 → timestamp more than 5 minutes off 401 →
signature (HMAC-SHA256 over the raw body with the app's webhook secret token, constant-time) 401 →
body not a JSON object with an `event` 400 → for RTMS events and app_deauthorized: an id that fails its pattern 400
`invalid_identifier`,
a server URL outside RTMS_ALLOWED_HOSTS 400 `server_url_not_allowed`, a stream id of another app 403
`stream_of_another_app` (docs/SECURITY.md). URL validation is answered only for a signed request: answering
unsigned ones would hand anyone an HMAC oracle over our secret token.

A verified event is recorded (one row per distinct body, so Zoom's retries are spotted as duplicates), its
RTMS work done by rtms.services in the same transaction, and after commit it is announced with
`zoom_event`. The 200 goes back at once; workers do the slow part. Meeting events (nested, unlike the RTMS
ones) are parsed once by meeting_events.parse before anything is stored: a malformed one is refused with 400
(`invalid_identifier` for an id that fails its pattern, else `malformed_event`), a good one is announced as a
typed event (`meeting_event=`).
"""

import functools
import hashlib
import hmac
import logging
import time

from django.db import DataError, IntegrityError, transaction
from django.db.models import F
from django.http import JsonResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from rtms import metrics, outbound, services
from rtms.client.allowlist import URLNotAllowed
from rtms.identifiers import InvalidIdentifier, validate
from zoomapp import inbound
from zoomapp.marketplace.models import ZoomApp
from zoomapp.webhooks import meeting_events, request_status
from zoomapp.webhooks.models import WebhookDelivery
from zoomapp.webhooks.signals import zoom_event

log = logging.getLogger("zoomapp.webhooks")

MAX_CLOCK_SKEW_SECONDS = 300
MAX_BODY_BYTES = 256 * 1024
# Zoom's plainToken is 22 characters (docs/ZOOM.md §2.3); we echo it and sign it, so it must encode as UTF-8.
MAX_PLAIN_TOKEN_CHARS = 128
DEAUTHORIZED = "app_deauthorized"

# Zoom spells the meeting id key per product (docs/ZOOM.md §2.2); first one present wins.
_ID_KEYS = ("meeting_uuid", "webinar_uuid", "session_id", "engagement_id")
_RTMS_PREFIXES = ("meeting.", "webinar.", "session.", "contact_center.voice_")
# Events we have no handler for but expect (announced, recorded as accepted, not "unknown").
KNOWN_EVENTS = meeting_events.EVENTS | {
    DEAUTHORIZED, "rtms.concurrency_limited", "rtms.concurrency_near_limit", "rtms.start_failed",
    "rtms.request_status",
}


def _refuse(status, error, message, app=None, outcome=None):
    metrics.webhook_deliveries.labels(outcome=outcome or error).inc()
    log.warning("webhook refused", extra={"error": error, "status": status,
                                          "client_id": app.client_id if app else None})
    return JsonResponse({"error": error, "message": message}, status=status)


def _signature_ok(secret, timestamp, body, signature):
    expected = "v0=" + hmac.new(secret.encode(), b"v0:" + timestamp.encode() + b":" + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected.encode(), signature.encode("utf-8", "replace"))


def _event_fields(payload):
    """Flat (`payload{…}`) and nested (`payload.object{…}`) shapes both accepted (docs/ZOOM.md §2.2 decision)."""
    if not isinstance(payload, dict):
        return {}
    inner = payload.get("object")
    return inner if isinstance(inner, dict) else payload


def _text(fields, key):
    value = fields.get(key)
    return value if isinstance(value, str) else ""


def _meeting_uuid(fields):
    return next((_text(fields, k) for k in _ID_KEYS if _text(fields, k)), "")


def _is_rtms(event, suffix):
    return event.endswith(suffix) and event.startswith(_RTMS_PREFIXES)


def _id_key(fields):
    return next((k for k in _ID_KEYS if fields.get(k) is not None), "meeting_uuid")


def _checked_rtms(app, event, fields, payload):
    """An RTMS event's ids and server URLs, checked before anything is stored; returns the stream work to run in
    the delivery's transaction. Raises _Unusable for a missing or malformed id or a server URL outside the
    allow list (logged)."""
    stream_id = None
    try:
        stream_id = validate("rtms_stream_id", fields.get("rtms_stream_id"))
        id_key = _id_key(fields)
        meeting_uuid = fields.get(id_key)
        if meeting_uuid is not None or _is_rtms(event, "rtms_started"):  # stored with the delivery
            meeting_uuid = validate("meeting_uuid", meeting_uuid, field=id_key)
        if _is_rtms(event, "rtms_started"):
            operator_id = validate("zoom_user_id", fields.get("operator_id", ""), "operator_id", allow_blank=True)
            # May 2026 payloads carry the meeting's account beside `object`; older ones count against the app's.
            account = payload.get("account_id", fields.get("account_id", "")) if isinstance(payload, dict) else ""
            account_id = validate("account_id", account, "account_id", allow_blank=True) or app.account_id
            server_urls = fields.get("server_urls")
            if not isinstance(server_urls, str) or not server_urls:
                raise _Unusable(400, "malformed_event", "server_urls is required")
            outbound.check_server_urls(server_urls)
            return lambda: _on_own_stream(app, stream_id, services.stream_started, app.client_id, meeting_uuid,
                                          stream_id, server_urls, operator_id, account_id)
    except InvalidIdentifier as exc:
        raise _Unusable(400, "invalid_identifier", f"{exc}; nothing was stored") from None
    except URLNotAllowed as exc:
        log.warning("rtms server url refused", extra={"client_id": app.client_id, "error": str(exc),
                                                      "stream": stream_id, "meeting": _meeting_uuid(fields)[:128]})
        raise _Unusable(400, "server_url_not_allowed", f"{exc}; nothing was stored") from None
    if _is_rtms(event, "rtms_interrupted"):
        return lambda: _on_own_stream(app, stream_id, services.stream_interrupted, stream_id)
    reason = fields.get("stop_reason")
    reason = reason if type(reason) is int and -2**31 < reason < 2**31 else None
    # The app and meeting too: a stop that comes before its start (Zoom retries a start answered late) is recorded
    # with them (docs/STREAMS.md "Deliveries out of order").
    return lambda: _on_own_stream(app, stream_id, services.stream_stopped, stream_id, reason, "rtms_stopped", "",
                                  app.client_id, meeting_uuid or "")


def _check_deauthorization(fields):
    """app_deauthorized's user (whose grant and streams go, zoomapp/console/receivers.py) and account, checked
    before anything is stored; raises _Unusable. The account is optional: the audit takes it from the user's grant,
    never from here (docs/SECURITY.md "Operators and account admins")."""
    try:
        validate("zoom_user_id", fields.get("user_id"), "payload.user_id")
        validate("account_id", fields.get("account_id", ""), "payload.account_id", allow_blank=True)
    except InvalidIdentifier as exc:
        raise _Unusable(400, "invalid_identifier", f"{exc}; nothing was stored") from None


def _on_own_stream(app, stream_id, work, *args):
    """Stream work on `app`'s own streams only: a stream id of another app is refused (403), nothing changes.
    stream_started checks it on the row it locks anyway, so it is spared the extra round trip."""
    try:
        if work is not services.stream_started:
            services.check_stream_app(stream_id, app.client_id)
        work(*args)
    except services.StreamOfAnotherApp as exc:
        raise _Unusable(403, "stream_of_another_app", str(exc)) from None


ZOOM_ANSWER_BOUND_SECONDS = 3  # Zoom counts a delivery answered later as failed and retries it (docs/ZOOM.md §2.5)
_clock = time.monotonic


def _timed(view):
    """Every answer's time in `zoom_webhook_handling_seconds`; one past Zoom's bound is logged: Zoom will deliver
    it again (acknowledged as a duplicate), and a web tier that often answers that late needs more processes."""

    @functools.wraps(view)
    def timed(request, client_id):
        started = _clock()
        response = view(request, client_id)
        elapsed = _clock() - started
        metrics.webhook_handling.observe(elapsed)
        if elapsed > ZOOM_ANSWER_BOUND_SECONDS:
            log.warning("webhook answered after Zoom's 3 s; Zoom will retry it", extra={
                "client_id": client_id[:100], "status": response.status_code, "seconds": round(elapsed, 2)})
        return response

    return timed


@csrf_exempt
@require_POST
@_timed
def zoom_webhook(request, client_id):
    app = ZoomApp.by_client_id(client_id)
    if app is None:
        return _refuse(404, "unknown_app", "No Zoom app is registered with this client id.")
    body = request.body
    if len(body) > MAX_BODY_BYTES:
        return _refuse(413, "too_large", "The request body is too large.", app)
    timestamp = request.headers.get("x-zm-request-timestamp", "")
    signature = request.headers.get("x-zm-signature", "")
    if not timestamp or not signature:
        return _refuse(401, "unsigned", "x-zm-request-timestamp and x-zm-signature headers are required.", app)
    if not timestamp.isascii() or not timestamp.isdigit() or len(timestamp) > 12:
        return _refuse(400, "bad_timestamp", "x-zm-request-timestamp must be Unix seconds.", app)
    if abs(time.time() - int(timestamp)) > MAX_CLOCK_SKEW_SECONDS:
        return _refuse(401, "stale_timestamp", "The request timestamp is more than 5 minutes off; refused.", app)
    if not _signature_ok(app.webhook_secret_token, timestamp, body, signature):
        return _refuse(401, "bad_signature", "The x-zm-signature does not match this app's secret token.", app)
    try:
        document = inbound.parse_json(body)
    except inbound.NotJSON:
        return _refuse(400, "malformed_json", "The body is not valid JSON.", app)
    if not isinstance(document, dict) or not isinstance(document.get("event"), str) or not document["event"]:
        return _refuse(400, "malformed_event", "The body must be a JSON object with an `event` string.", app)
    event = document["event"][:100]
    payload = document.get("payload")

    if event == "endpoint.url_validation":
        plain = payload.get("plainToken") if isinstance(payload, dict) else None
        if not isinstance(plain, str) or not 0 < len(plain) <= MAX_PLAIN_TOKEN_CHARS or not plain.isascii():
            return _refuse(400, "malformed_event",
                           f"url_validation needs payload.plainToken: 1 to {MAX_PLAIN_TOKEN_CHARS} ASCII characters.",
                           app)
        encrypted = hmac.new(app.webhook_secret_token.encode(), plain.encode(), hashlib.sha256).hexdigest()
        metrics.webhook_deliveries.labels(outcome="url_validation").inc()
        log.info("webhook url validated", extra={"client_id": app.client_id})
        return JsonResponse({"plainToken": plain, "encryptedToken": encrypted})

    return _accept(app, event, document, payload, body)


def _accept(app, event, document, payload, body):
    meeting_event = None
    try:
        if event in meeting_events.EVENTS:
            meeting_event = meeting_events.parse(event, payload)
        elif event == request_status.EVENT:
            meeting_event = request_status.parse(payload)
    except meeting_events.MalformedMeetingEvent as exc:
        return _refuse(400, exc.error, f"{event}: {exc}; nothing was stored.", app)
    # A meeting event is kept whole: its account_id sits beside payload.object.
    fields = payload if meeting_event and event in meeting_events.EVENTS else _event_fields(payload)
    event_ts = document.get("event_ts")
    is_rtms = any(_is_rtms(event, suffix) for suffix in ("rtms_started", "rtms_stopped", "rtms_interrupted"))
    known = is_rtms or event in KNOWN_EVENTS
    outcome = WebhookDelivery.Outcome.ACCEPTED if known else WebhookDelivery.Outcome.UNKNOWN_EVENT
    digest = hashlib.sha256(body).hexdigest()
    try:
        if event == DEAUTHORIZED:
            _check_deauthorization(fields)
        rtms_work = _checked_rtms(app, event, fields, payload) if is_rtms else None
        with transaction.atomic():
            delivery = WebhookDelivery.objects.create(
                app=app, event=event, event_ts=event_ts if type(event_ts) is int and abs(event_ts) < 2**62 else None,
                body_sha256=digest, payload=fields, outcome=outcome,
                rtms_stream_id=_text(fields, "rtms_stream_id")[:64],
                meeting_uuid=_meeting_uuid(fields)[:128] if event not in meeting_events.EVENTS
                else meeting_event.meeting.uuid,
            )
            if rtms_work:
                rtms_work()
            transaction.on_commit(lambda: _announce(app, event, fields, delivery, meeting_event))
    except _Unusable as exc:
        return _refuse(exc.status, exc.error, f"{event}: {exc.message}.", app)
    except (DataError, ValueError):  # e.g. NUL characters, which PostgreSQL text and JSON cannot hold
        return _refuse(400, "malformed_event", "The event holds values that cannot be stored.", app)
    except IntegrityError:
        WebhookDelivery.objects.filter(app=app, body_sha256=digest).update(
            duplicates=F("duplicates") + 1, last_duplicate_at=timezone.now()
        )
        metrics.webhook_deliveries.labels(outcome="duplicate").inc()
        log.info("webhook duplicate acknowledged", extra={"client_id": app.client_id, "event": event})
        return JsonResponse({"status": "duplicate"})
    metrics.webhook_deliveries.labels(outcome=outcome).inc()
    log.info("webhook accepted", extra={"client_id": app.client_id, "event": event, "outcome": outcome,
                                        "meeting": delivery.meeting_uuid or None,
                                        "stream": delivery.rtms_stream_id or None})
    return JsonResponse({"status": "ok"})


class _Unusable(Exception):
    """A verified event whose payload we cannot act on: the transaction is rolled back, nothing stored."""

    def __init__(self, status, error, message):
        super().__init__(message)
        self.status, self.error, self.message = status, error, message


def _announce(app, event, fields, delivery, meeting_event):
    zoom_event.send_robust(sender=app, app=app, event=event, payload=fields, delivery=delivery,
                           meeting_event=meeting_event)
