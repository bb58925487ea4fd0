"""Test-side counterparts of the simulator, written independently from zoomsim/ (from the reference only):
a webhook endpoint that checks Zoom's signature itself, and a minimal RTMS wire client.
"""

import contextlib
import hashlib
import hmac
import json
import math
import queue
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from tests.webhook_support import zoom_signature
from tests.zoomsim_process import run_zoomsim

# The simulator's voices say a word in 0.36 s (espeak) to 0.46 s (tones): a line of one word per 0.3 s lasts longer.
SECONDS_PER_WORD = 0.3


def words_lasting(seconds):
    """A line that takes at least `seconds` to say. Zoom sends mixed audio only while someone speaks (docs/ZOOM.md
    §6.1), so a test that needs audio flowing for a while has someone say this."""
    return " ".join(["talking"] * max(1, math.ceil(seconds / SECONDS_PER_WORD)))


def rtms_signature(client_id, client_secret, meeting_uuid, stream_id):
    """docs/ZOOM.md §3.1."""
    return hmac.new(client_secret.encode(), f"{client_id},{meeting_uuid},{stream_id}".encode(),
                    hashlib.sha256).hexdigest()


class WebhookReceiver:
    """An app's webhook endpoint: answers URL validation, verifies every delivery's signature."""

    def __init__(self, secret_token):
        self.secret_token = secret_token
        self.deliveries = []  # dicts: event, body(json), raw, valid_signature, headers
        self.fail_next = {}  # event name -> answer 500 to that many of its next deliveries
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                body = json.loads(raw)
                if body.get("event") == "endpoint.url_validation":
                    plain = body["payload"]["plainToken"]
                    answer = {"plainToken": plain, "encryptedToken": hmac.new(
                        receiver.secret_token.encode(), plain.encode(), hashlib.sha256).hexdigest()}
                    return self._reply(200, json.dumps(answer).encode())
                timestamp = self.headers.get("x-zm-request-timestamp", "")
                expected = zoom_signature(receiver.secret_token, timestamp, raw)
                with receiver.lock:
                    failing = receiver.fail_next.get(body.get("event"), 0) > 0
                    if failing:
                        receiver.fail_next[body["event"]] -= 1
                    receiver.deliveries.append({
                        "event": body.get("event"), "body": body, "raw": raw, "answered": 500 if failing else 200,
                        "valid_signature": hmac.compare_digest(expected, self.headers.get("x-zm-signature", "")),
                        "headers": dict(self.headers)})
                self._reply(500 if failing else 200, b"{}")

            def _reply(self, status, data):
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/webhook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def events(self, name=None):
        with self.lock:
            return [d for d in self.deliveries if name is None or d["event"] == name]

    def wait_for(self, name, predicate=lambda delivery: True, timeout=10):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for delivery in self.events(name):
                if predicate(delivery):
                    return delivery
            time.sleep(0.02)
        raise AssertionError(f"no {name} webhook within {timeout} s; got {[d['event'] for d in self.events()]}")

    def close(self):
        self.server.shutdown()
        self.server.server_close()


class Socket:
    """One RTMS WebSocket with a reader thread; keep-alives are answered unless `answer_keepalive` is off."""

    def __init__(self, url, answer_keepalive=True, **connect_kwargs):
        self.ws = connect(url, open_timeout=5, max_size=None, legacy=True, **connect_kwargs)
        self.messages = queue.Queue()
        self.answer_keepalive = answer_keepalive
        self.keepalives = 0
        self.closed = threading.Event()
        self.close_code = None
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self):
        try:
            while True:
                message = json.loads(self.ws.recv())
                message["_received_ms"] = time.time() * 1000
                if message.get("msg_type") == 12:
                    self.keepalives += 1
                    if self.answer_keepalive:
                        self.send({"msg_type": 13, "timestamp": message["timestamp"],
                                   "sequence": message.get("sequence")})
                self.messages.put(message)
        except ConnectionClosed:
            pass
        finally:
            self.close_code = self.ws.close_code
            self.closed.set()

    def send(self, message):
        try:
            self.ws.send(json.dumps(message))
        except ConnectionClosed:
            pass

    def recv(self, predicate=lambda m: True, timeout=5):
        """The next message matching `predicate` (others are dropped; keep-alives skipped unless asked for)."""
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError("no matching RTMS message in time")
            try:
                message = self.messages.get(timeout=min(remaining, 0.2))
            except queue.Empty:
                if self.closed.is_set() and self.messages.empty():
                    raise AssertionError(f"socket closed ({self.close_code}) before a matching message") from None
                continue
            if predicate(message):
                return message

    def recv_type(self, msg_type, timeout=5):
        return self.recv(lambda m: m.get("msg_type") == msg_type, timeout)

    def wait_closed(self, timeout=5):
        if not self.closed.wait(timeout):
            raise AssertionError("socket not closed in time")
        return self.close_code

    def close(self):
        self.ws.close()


class RtmsClient:
    """Minimal RTMS client following docs/ZOOM.md §3–§6."""

    def __init__(self, started_payload, client_id, client_secret):
        self.payload = started_payload
        self.client_id = client_id
        self.client_secret = client_secret
        self.stream_id = started_payload["rtms_stream_id"]
        self.meeting_uuid = started_payload["meeting_uuid"]
        self.signaling = None
        self.media = {}
        self.media_urls = {}

    def signature(self):
        return rtms_signature(self.client_id, self.client_secret, self.meeting_uuid, self.stream_id)

    def handshake(self, **overrides):
        self.signaling = Socket(self.payload["server_urls"].split(",")[0])
        request = {"msg_type": 1, "protocol_version": 1, "sequence": 1, "meeting_uuid": self.meeting_uuid,
                   "rtms_stream_id": self.stream_id, "signature": self.signature()}
        request.update(overrides)
        self.signaling.send(request)
        response = self.signaling.recv_type(2)
        if response["status_code"] == 0:
            self.media_urls = response["media_server"]["server_urls"]
        return response

    def open_media(self, kind, media_type, media_params=None, **overrides):
        sock = Socket(self.media_urls[kind])
        request = {"msg_type": 3, "protocol_version": 1, "sequence": 2, "meeting_uuid": self.meeting_uuid,
                   "rtms_stream_id": self.stream_id, "signature": self.signature(), "media_type": media_type,
                   "payload_encryption": False}
        if media_params is not None:
            request["media_params"] = media_params
        request.update(overrides)
        sock.send(request)
        response = sock.recv_type(4)
        if response["status_code"] == 0:
            self.media[kind] = sock
        return response, sock

    def ready(self):
        self.signaling.send({"msg_type": 7, "rtms_stream_id": self.stream_id})

    def subscribe(self, *event_types):
        self.signaling.send({"msg_type": 5, "events": [{"event_type": e, "subscribe": True} for e in event_types]})

    def close(self):
        for sock in list(self.media.values()) + ([self.signaling] if self.signaling else []):
            try:
                sock.close()
            except Exception:  # noqa: BLE001, S110 - best effort on teardown
                pass


def register_app(sim, *, name, client_id, client_secret, webhook_secret_token, event_url, home_url, redirect_url,
                 account_id, **more):
    """Register an app with the simulator as its developer does on Zoom's Marketplace (Zoom validates the event
    URL with its challenge at once, so the endpoint must answer). The one way every test registers an app."""
    response = sim.post("/_sim/apps", json={
        "name": name, "client_id": client_id, "client_secret": client_secret,
        "webhook_secret_token": webhook_secret_token, "event_url": event_url, "home_url": home_url,
        "redirect_url": redirect_url, "account_id": account_id, **more})
    assert response.status_code in (200, 201), response.text
    sim.registered_apps.append(client_id)
    return response.json()


class SimWorld:
    """A running simulator with one registered app whose webhook endpoint is a `WebhookReceiver`."""

    def __init__(self, sim, client_id="app-client-id", client_secret="app-client-secret",
                 webhook_secret_token="app-webhook-secret", **app_fields):
        self.sim = sim
        self.client_id = client_id
        self.client_secret = client_secret
        self.hook = WebhookReceiver(webhook_secret_token)
        fields = {"name": "Notes App", "client_id": client_id, "client_secret": client_secret,
                  "webhook_secret_token": webhook_secret_token, "event_url": self.hook.url,
                  "home_url": "http://127.0.0.1:9/panel", "redirect_url": "http://127.0.0.1:9/oauth/callback",
                  "account_id": "app-owner-account"}
        self.app = register_app(sim, **{**fields, **app_fields})

    def meeting(self, participants=({"name": "Ben"},), start=True, **fields):
        body = {"topic": "Weekly sync", "host": {"name": "Ana Host", "account_id": "acct-host"},
                "participants": list(participants), "start": start, **fields}
        response = self.sim.post("/_sim/meetings", json=body)
        assert response.status_code == 201, response.text
        return response.json()

    def start_stream(self, meeting, **fields):
        response = self.sim.post(f"/_sim/meetings/{meeting['id']}/streams", json={"client_id": self.client_id,
                                                                                 **fields})
        assert response.status_code == 201, response.text
        stream = response.json()
        started = self.hook.wait_for("meeting.rtms_started",
                                     lambda d: d["body"]["payload"]["rtms_stream_id"] == stream["id"])
        return started["body"]["payload"]

    def client(self, payload):
        return RtmsClient(payload, self.client_id, self.client_secret)

    def connected(self, meeting, media=("audio",), subscribe=(), **stream_fields):
        """Start a stream and bring a wire client to the ready state with per-type media sockets."""
        payload = self.start_stream(meeting, **stream_fields)
        client = self.client(payload)
        assert client.handshake()["status_code"] == 0
        for kind in media:
            response, _ = client.open_media(kind, {"audio": 1, "video": 2, "deskshare": 4, "transcript": 8,
                                                   "chat": 16}[kind])
            assert response["status_code"] == 0, response
        client.ready()
        client.signaling.recv(lambda m: m.get("msg_type") == 9 and m.get("state") == 2)
        if subscribe:
            client.subscribe(*subscribe)
        return payload, client

    def speak(self, meeting, text, key="p1"):
        """`key` (p1 is the host) says `text` in the meeting: its {start_time, end_time} (ms)."""
        response = self.sim.post(f"/_sim/meetings/{meeting['id']}/speak", json={"key": key, "text": text})
        assert response.status_code == 200, response.text
        return response.json()

    def stream(self, stream_id):
        return self.sim.get(f"/_sim/streams/{stream_id}").json()

    def wait_stream(self, stream_id, predicate, timeout=10, what="stream condition"):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            stream = self.stream(stream_id)
            if predicate(stream):
                return stream
            time.sleep(0.02)
        raise AssertionError(f"timed out waiting for {what}: {json.dumps(stream)[:2000]}")

    def close(self):
        self.hook.close()


@contextlib.contextmanager
def sim_world(tmp_path, app_fields=None, **simulator_options):
    """The simulator on free ports (`simulator_options` go to run_zoomsim) with one registered app (SimWorld's
    defaults, or `app_fields`) whose webhook endpoint is a WebhookReceiver."""
    with run_zoomsim(tmp_path, **simulator_options) as sim:
        world = SimWorld(sim, **(app_fields or {}))
        try:
            yield world
        finally:
            world.close()
