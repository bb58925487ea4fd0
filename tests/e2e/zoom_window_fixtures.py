"""Fixtures for the simulated Zoom window tests: the simulator, a tiny app, and Chromium.

The "app" here is this test's own HTTP server on a free port, registered with the simulator: its Home URL serves
a page that loads the real `@zoom/appssdk` (the vendored npm file, from the app's own origin as a real app serves
it), its event endpoint answers Zoom's URL validation and, on `meeting.rtms_started`, it connects to the RTMS
signaling socket and sends CLIENT_READY_ACK so the stream becomes live — the least a real app backend does.
Nothing here imports the simulator or our product: they are met only over HTTP and WebSocket.
"""

import asyncio
import base64
import hashlib
import hmac
import json
import os
import shutil
import threading
from pathlib import Path

import pytest
from aiohttp import ClientSession, WSMsgType, web
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from tests.processes import free_port
from tests.zoomsim_client import register_app

ROOT = Path(__file__).resolve().parents[2]
SDK_FILE = ROOT / "static/panel/vendor/appssdk-0.16.41/sdk.es.js"  # the one vendored copy, the panel's
SCREENSHOTS = ROOT / "artifacts/screenshots"
CHROMIUM = "/usr/bin/chromium"  # Debian's (bin/test installs it)
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
OWASP = {
    "Strict-Transport-Security": "max-age=31536000",
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; connect-src 'self'; frame-ancestors *",
    "Referrer-Policy": "same-origin",
}

SDK_TEST_PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>SDK test panel</title></head>
<body>
<h3 id="title">%(name)s</h3>
<p>This panel loads the real @zoom/appssdk and is driven by the test.</p>
<pre id="log"></pre>
<script type="module" src="/panel.js"></script>
</body></html>"""

# Kept out of the page: the app's own Content-Security-Policy forbids inline scripts, as a real app's should.
PANEL_SCRIPT = """
import zoomSdk from "/sdk.es.js";
window.sdk = zoomSdk;
window.events = [];
const log = (line) => { document.getElementById("log").textContent += line + "\\n"; };
window.attempt = async (fn) => {
  try { const value = await fn(); log("ok " + JSON.stringify(value).slice(0, 120)); return { ok: true, value }; }
  catch (error) { log("error " + error.message); return { ok: false, message: error.message, code: error.code }; }
};
const listening = new Set();
window.listen = (names) => {
  for (const name of names.filter((name) => !listening.has(name))) {
    listening.add(name);
    zoomSdk.addEventListener(name, (data) => { window.events.push({ name, data }); log("event " + name); });
  }
};
document.body.dataset.loaded = "1";
"""


def decrypt_app_context(value, client_secret):
    """docs/ZOOM.md §10.2/§10.3, written independently of the simulator: walk the bytes, AES-256-GCM decrypt."""
    raw = base64.b64decode(value + "=" * (-len(value) % 4))
    iv_length = raw[0]
    iv = raw[1 : 1 + iv_length]
    position = 1 + iv_length
    aad_length = int.from_bytes(raw[position : position + 2], "little")
    aad = raw[position + 2 : position + 2 + aad_length]
    position += 2 + aad_length
    cipher_length = int.from_bytes(raw[position : position + 4], "little", signed=True)
    ciphertext = raw[position + 4 : position + 4 + cipher_length]
    tag = raw[position + 4 + cipher_length :]
    key = hashlib.sha256(client_secret.encode()).digest()
    decryptor = Cipher(algorithms.AES(key), modes.GCM(iv, tag)).decryptor()
    decryptor.authenticate_additional_data(aad)
    return json.loads(decryptor.update(ciphertext) + decryptor.finalize())


class FakeApp:
    """One Marketplace app as the simulator sees it: Home URL, event endpoint, RTMS consumer."""

    def __init__(self, name, base_url, owasp=True):
        slug = name.lower().replace(" ", "-")
        self.name = name
        self.slug = slug
        self.client_id = f"{slug}-{os.getpid()}"
        self.client_secret = f"secret-{slug}-0123456789"
        self.webhook_secret_token = f"whsec-{slug}"
        self.base_url = base_url
        self.owasp = owasp
        self.home_requests = []  # headers of every Home URL request
        self.webhooks = []
        self.live_streams = set()

    def registration(self):
        return {"name": self.name, "client_id": self.client_id, "client_secret": self.client_secret,
                "webhook_secret_token": self.webhook_secret_token, "event_url": f"{self.base_url}/{self.slug}/events",
                "home_url": f"{self.base_url}/{self.slug}/home?ctx={{runningContext}}&mid={{meetingUUID}}",
                "redirect_url": f"{self.base_url}/{self.slug}/oauth", "account_id": f"acct-{self.slug}",
                # Only its own stream events: other tests' meetings are none of its business.
                "events": ["meeting.rtms_started", "meeting.rtms_stopped", "meeting.rtms_interrupted"]}


class AppServer:
    """Serves every FakeApp from one aiohttp server in a background thread."""

    def __init__(self):
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.apps = {}
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.tasks = set()

    def add(self, name, owasp=True):
        app = FakeApp(name, self.base_url, owasp=owasp)
        self.apps[app.slug] = app
        return app

    def start(self):
        web_app = web.Application()
        web_app.router.add_get("/{slug}/home", self.home)
        web_app.router.add_post("/{slug}/events", self.events)
        web_app.router.add_get("/sdk.es.js", self.sdk)
        web_app.router.add_get("/panel.js", self.panel_script)
        self.runner = web.AppRunner(web_app, access_log=None)
        self.thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self.loop).result(10)

    async def _start(self):
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", self.port).start()

    def stop(self):
        asyncio.run_coroutine_threadsafe(self._stop(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)

    async def _stop(self):
        for task in list(self.tasks):
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        await self.runner.cleanup()

    async def sdk(self, request):
        return web.Response(body=SDK_FILE.read_bytes(), content_type="text/javascript")

    async def panel_script(self, request):
        return web.Response(text=PANEL_SCRIPT, content_type="text/javascript")

    async def home(self, request):
        app = self.apps[request.match_info["slug"]]
        app.home_requests.append(dict(request.headers))
        headers = dict(OWASP) if app.owasp else {}
        return web.Response(text=SDK_TEST_PAGE % {"name": app.name}, content_type="text/html", headers=headers)

    async def events(self, request):
        app = self.apps[request.match_info["slug"]]
        body = await request.json()
        if body["event"] == "endpoint.url_validation":
            plain = body["payload"]["plainToken"]
            digest = hmac.new(app.webhook_secret_token.encode(), plain.encode(), hashlib.sha256).hexdigest()
            return web.json_response({"plainToken": plain, "encryptedToken": digest})
        app.webhooks.append(body)
        if body["event"] == "meeting.rtms_started":
            task = self.loop.create_task(self.hold_stream(app, body["payload"]))
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)
        return web.Response(status=204)

    async def hold_stream(self, app, payload):
        """Signaling handshake, CLIENT_READY_ACK, keep-alive answers until the stream ends."""
        stream_id, meeting_uuid = payload["rtms_stream_id"], payload["meeting_uuid"]
        signature = hmac.new(app.client_secret.encode(), f"{app.client_id},{meeting_uuid},{stream_id}".encode(),
                             hashlib.sha256).hexdigest()
        async with ClientSession() as session, session.ws_connect(payload["server_urls"].split(",")[0]) as ws:
            await ws.send_json({"msg_type": 1, "protocol_version": 1, "meeting_uuid": meeting_uuid,
                                "rtms_stream_id": stream_id, "signature": signature, "sequence": 1})
            async for message in ws:
                if message.type != WSMsgType.TEXT:
                    break
                data = json.loads(message.data)
                if data["msg_type"] == 2 and data.get("status_code", 0) == 0:
                    await ws.send_json({"msg_type": 7, "rtms_stream_id": stream_id})
                    app.live_streams.add(stream_id)
                elif data["msg_type"] == 12:
                    await ws.send_json({"msg_type": 13, "timestamp": data.get("timestamp"),
                                        "sequence": data.get("sequence")})
        app.live_streams.discard(stream_id)


@pytest.fixture(scope="module")
def app_server():
    server = AppServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


def register(zoomsim, app):
    register_app(zoomsim, **app.registration())
    return app


def create_meeting(zoomsim, topic, host, participants, **settings):
    body = {"topic": topic, "host": {"name": host}, "start": True,
            "participants": [{"name": name} for name in participants],
            "settings": {"require_host_approval": True, "share_with_apps": True, **settings}}
    response = zoomsim.post("/_sim/meetings", json=body)
    assert response.status_code in (200, 201), response.text
    return response.json()


class Window:
    """One person's meeting window in its own browser context."""

    def __init__(self, browser, zoomsim, meeting, name):
        self.meeting = meeting
        self.person = next(p for p in meeting["participants"] if p["name"] == name)
        self.context = browser.new_context(viewport={"width": 1280, "height": 760})
        self.page = self.context.new_page()
        self.page.goto(f"{zoomsim.http_url}/meetings/{meeting['id']}/as/{self.person['key']}")
        self.page.wait_for_function("() => window.__ready === true")

    def close(self):
        self.context.close()

    def open_app(self, app):
        self.page.click("#apps-button")
        self.page.click(f"#apps-menu-list button[data-client-id='{app.client_id}']")
        return self.panel(app)

    def panel(self, app):
        """The panel iframe's Frame once the SDK test page has loaded."""
        handle = self.page.wait_for_selector(f"#panel-frame[data-client-id='{app.client_id}']")
        frame = handle.content_frame()
        frame.wait_for_selector("body[data-loaded='1']", state="attached")
        return frame

    def screenshot(self, name):
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=str(SCREENSHOTS / f"{name}.png"))


def sdk(frame, expression):
    """Run `expression` (using `sdk`) in the panel; returns {ok, value} or {ok: false, message, code}."""
    return frame.evaluate(f"() => attempt(async () => {expression})")


def sdk_events(frame, name):
    return [event["data"] for event in frame.evaluate("window.events") if event["name"] == name]


def keep_screenshot(name):
    """Copy a test artifact to docs/screenshots/ (the ones the READMEs show) when UPDATE_DOCS_SCREENSHOTS=1, so
    an ordinary test run leaves the working tree as it was."""
    if os.environ.get("UPDATE_DOCS_SCREENSHOTS") != "1":
        return
    target = ROOT / "docs/screenshots"
    target.mkdir(parents=True, exist_ok=True)
    shutil.copy(SCREENSHOTS / f"{name}.png", target / f"{name}.png")
