"""Signed webhook deliveries with Zoom's retry policy (docs/ZOOM.md §2.3–2.5) and a queryable delivery log."""

import asyncio
import hashlib
import hmac
import json
import logging
import secrets
import time

import aiohttp

log = logging.getLogger("zoomsim.webhooks")

RETRY_DELAYS_S = (5 * 60, 20 * 60, 60 * 60)  # after the first attempt, then after each retry


def sign(secret_token, timestamp, body):
    message = b"v0:" + str(timestamp).encode() + b":" + body
    return "v0=" + hmac.new(secret_token.encode(), message, hashlib.sha256).hexdigest()


def encode(event, payload, event_ts):
    """Compact JSON in UTF-8, as Zoom sends it: receivers such as Zoom's Rivet verify the signature over their
    own re-serialisation (`JSON.stringify`), which matches these bytes only without spaces or \\u escapes."""
    return json.dumps({"event": event, "event_ts": event_ts, "payload": payload}, separators=(",", ":"),
                      ensure_ascii=False).encode()


def ordering_key(payload):
    """One meeting's events are delivered in order: RTMS events name it `meeting_uuid` (flat, §2.2), meeting
    events `object.uuid` (nested, §2.2b); account events fall back to the user."""
    meeting_object = payload.get("object") if isinstance(payload.get("object"), dict) else {}
    return payload.get("meeting_uuid") or meeting_object.get("uuid") or payload.get("user_id") or ""


class Delivery:
    def __init__(self, app, event, payload, event_ts, duplicate_of=None):
        self.id = secrets.token_hex(8)
        self.app = app
        self.event = event
        self.payload = payload
        self.body = encode(event, payload, event_ts)
        self.url = app.event_url
        self.status = "pending"
        self.attempts = []
        self.created_at = int(time.time() * 1000)
        self.delivered_at = None
        self.duplicate_of = duplicate_of
        self.first_attempt_done = asyncio.Event()

    def public(self):
        return {"id": self.id, "client_id": self.app.client_id, "event": self.event, "payload": self.payload,
                "url": self.url, "status": self.status, "attempts": list(self.attempts),
                "created_at": self.created_at, "delivered_at": self.delivered_at, "duplicate_of": self.duplicate_of}


class Webhooks:
    def __init__(self, sim):
        self.sim = sim
        self.deliveries = []
        self.session = None
        self._last_by_key = {}  # ordering key -> previous Delivery, so one meeting's events arrive in order

    async def start(self):
        self.session = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=self.sim.config.webhook_timeout),
            headers={"User-Agent": "Zoom Marketplace/1.0a"},
        )

    async def stop(self):
        if self.session:
            await self.session.close()

    def clear(self):
        self.deliveries.clear()
        self._last_by_key.clear()

    def send(self, app, event, payload):
        if not app.event_url:
            return None
        delivery = Delivery(app, event, payload, self.sim.clock.now_ms())
        self.deliveries.append(delivery)
        key = (app.client_id, ordering_key(payload))
        previous = self._last_by_key.get(key)
        self._last_by_key[key] = delivery
        self.sim.spawn(self._deliver(delivery, previous))
        if self.sim.faults.take_webhook("webhook_duplicate", app.client_id, event):
            copy = Delivery(app, event, payload, self.sim.clock.now_ms(), duplicate_of=delivery.id)
            copy.body = delivery.body
            self.deliveries.append(copy)
            self.sim.spawn(self._deliver(copy, delivery))
        return delivery

    async def _deliver(self, delivery, previous):
        if previous is not None:
            await previous.first_attempt_done.wait()
        try:
            for attempt in range(1 + len(RETRY_DELAYS_S)):
                if attempt:
                    delivery.status = "retrying"
                    await asyncio.sleep(RETRY_DELAYS_S[attempt - 1] * self.sim.config.retry_scale)
                    if self.sim.apps.get(delivery.app.client_id) is not delivery.app:
                        delivery.status = "cancelled"  # the app was deleted meanwhile
                        return
                ok = await self._attempt(delivery)
                delivery.first_attempt_done.set()
                if ok:
                    delivery.status = "delivered"
                    delivery.delivered_at = int(time.time() * 1000)
                    return
            delivery.status = "failed"
            log.warning("event=webhook_gave_up client_id=%s webhook_event=%s delivery=%s", delivery.app.client_id,
                        delivery.event, delivery.id)
        finally:
            delivery.first_attempt_done.set()

    async def _attempt(self, delivery):
        started = time.monotonic()
        record = {"at": int(time.time() * 1000), "status_code": None, "error": None, "duration_ms": None}
        delivery.attempts.append(record)
        if self.sim.faults.take_webhook("webhook_fail", delivery.app.client_id, delivery.event):
            record["error"] = "injected fault: not delivered"
            record["duration_ms"] = 0
            log.info("event=webhook_failed client_id=%s webhook_event=%s attempt=%d error=injected",
                     delivery.app.client_id, delivery.event, len(delivery.attempts))
            return False
        timestamp = str(int(time.time()))
        headers = {"Content-Type": "application/json", "x-zm-request-timestamp": timestamp,
                   "x-zm-signature": sign(delivery.app.webhook_secret_token, timestamp, delivery.body)}
        try:
            async with self.session.post(delivery.url, data=delivery.body, headers=headers) as response:
                await response.read()
                record["status_code"] = response.status
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            record["error"] = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        record["duration_ms"] = round((time.monotonic() - started) * 1000, 1)
        ok = record["status_code"] in (200, 204)
        log.info("event=webhook_attempt client_id=%s webhook_event=%s attempt=%d status=%s ok=%s",
                 delivery.app.client_id, delivery.event, len(delivery.attempts), record["status_code"], ok)
        return ok

    async def validate_url(self, app):
        """endpoint.url_validation (§2.3). Returns None when the endpoint answered correctly, else the problem."""
        if not app.event_url:
            return "event_url is empty"
        plain_token = secrets.token_urlsafe(16)
        body = encode("endpoint.url_validation", {"plainToken": plain_token}, self.sim.clock.now_ms())
        timestamp = str(int(time.time()))
        headers = {"Content-Type": "application/json", "x-zm-request-timestamp": timestamp,
                   "x-zm-signature": sign(app.webhook_secret_token, timestamp, body)}
        try:
            async with self.session.post(app.event_url, data=body, headers=headers) as response:
                text = await response.text()
                status = response.status
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            return f"endpoint.url_validation to {app.event_url} failed: {type(exc).__name__} {exc}".strip()
        if status != 200:
            return f"endpoint.url_validation: {app.event_url} answered HTTP {status}, expected 200"
        try:
            answer = json.loads(text)
        except ValueError:
            return "endpoint.url_validation: the response is not JSON"
        expected = hmac.new(app.webhook_secret_token.encode(), plain_token.encode(), hashlib.sha256).hexdigest()
        if not isinstance(answer, dict) or answer.get("plainToken") != plain_token:
            return "endpoint.url_validation: plainToken was not echoed"
        if answer.get("encryptedToken") != expected:
            return ("endpoint.url_validation: encryptedToken is not hex(HMAC-SHA256(webhook secret token, "
                    "plainToken))")
        return None
