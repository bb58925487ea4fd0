"""Zoom's signed webhook deliveries as the tests send them (to the in-process client or to a daphne), and the
signature a test-side receiver checks: one signing for every test.

Zoom signs "v0:<timestamp>:<raw body>" with the app's webhook secret token (HMAC-SHA256, hex) and sends it as
x-zm-signature "v0=<hex>", the timestamp (Unix seconds) in x-zm-request-timestamp. Written from Zoom's public
webhook documentation, not from our verifier (zoomapp/webhooks/views.py), so each checks the other.
"""

import hashlib
import hmac
import json
import time

import requests


def zoom_signature(secret_token, timestamp, raw_body):
    message = b"v0:" + str(timestamp).encode() + b":" + raw_body
    return "v0=" + hmac.new(secret_token.encode(), message, hashlib.sha256).hexdigest()


def signed_headers(secret_token, raw_body, timestamp=None):
    timestamp = str(int(time.time()) if timestamp is None else timestamp)
    return {"x-zm-request-timestamp": timestamp, "x-zm-signature": zoom_signature(secret_token, timestamp, raw_body)}


def event(name, payload, event_ts=None):
    """A webhook document: `payload` flat or in Zoom's nested shape, as the caller builds it."""
    return {"event": name, "event_ts": int(time.time() * 1000) if event_ts is None else event_ts, "payload": payload}


def deliver(client, app, document=None, *, raw=None, headers=None):
    """POST `document` (or the bytes `raw`) to `app`'s endpoint with Django's test client, signed with the app's
    secret token unless `headers` says otherwise."""
    body = raw if raw is not None else json.dumps(document).encode()
    headers = signed_headers(app.webhook_secret_token, body) if headers is None else headers
    return client.post(app.webhook_path, data=body, content_type="application/json", headers=headers)


def post_signed(web_url, app, document, timeout=5):
    """The same delivery over HTTP to a daphne at `web_url`, as Zoom sends it."""
    body = json.dumps(document).encode()
    return requests.post(web_url + app.webhook_path, data=body, timeout=timeout,
                         headers={"content-type": "application/json", **signed_headers(app.webhook_secret_token, body)})
