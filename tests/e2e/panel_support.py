"""Our panel inside the simulated Zoom window: the stack (simulator, daphne, a Celery worker, Redis), our app
registered with the simulator, people in meetings each in their own browser context, and waits on what the
panel shows (its data-ready / data-version / data-status attributes and its text)."""

import itertools
import secrets
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from playwright.sync_api import Error as PlaywrightError

from tests.consent_support import register_with_sim
from tests.processes import streams_at_rest, wait_for

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "artifacts/screenshots"
_meeting_numbers = itertools.count(1)


@pytest.fixture
def stack(daphne, worker, zoomsim):
    """Our app ("Notes Bot") registered with the simulator for one test. Tests using it are
    django_db(transaction=True): rows must be committed for daphne and the worker to see them."""
    from zoomapp.marketplace.models import ZoomApp

    app = ZoomApp.objects.create(
        name="Notes Bot", client_id=f"notes{secrets.token_hex(4)}", client_secret=secrets.token_hex(16),
        webhook_secret_token=secrets.token_hex(16), account_id="acctE2E",
    )
    register_with_sim(zoomsim, daphne.url, app, account_id="acctE2E")
    stack = Stack(zoomsim, daphne, app)
    yield stack
    stack.end_meetings()


class Stack:
    def __init__(self, sim, web, app):
        self.sim = sim
        self.web = web
        self.app = app
        self.meetings = []

    def meeting(self, participants=("Ben", "Cleo"), host="Ana", **settings):
        """A started meeting; every person's user id is unique to this meeting."""
        n = next(_meeting_numbers)
        tag = secrets.token_hex(2)

        def person(name, role="participant"):
            return {"name": name, "user_id": f"{name.lower()}{n}{tag}", "account_id": "acctE2E",
                    "email": f"{name.lower()}{n}{tag}@example.com", "role": role}

        body = {"topic": f"Panel test {n}", "host": person(host), "start": True,
                "participants": [person(p) for p in participants],
                "settings": {"share_with_apps": True, "require_host_approval": True, **settings}}
        body["host"].pop("role")
        response = self.sim.post("/_sim/meetings", json=body)
        assert response.status_code in (200, 201), response.text
        self.meetings.append(response.json())
        return response.json()

    def end_meetings(self):
        """End this test's meetings and wait for our streams to stop, so the database is reset with no worker
        still writing into it."""
        from rtms.models import StreamSession

        for meeting in self.meetings:
            self.sim.post(f"/_sim/meetings/{meeting['id']}/end")
        # Bounds for a loaded machine, not figures: on a 2-core machine running the suite in two processes (load
        # average 8), one meeting's webhooks go one after another, and one answered after Zoom's 3 s is retried
        # (0.3, 1.2 and 3.6 s later at the suite's scale, tests/conftest.py).
        wait_for(lambda: streams_at_rest(StreamSession.objects.filter(client_id=self.app.client_id)), timeout=60,
                 what="this test's streams to stop and be let go")
        # Zoom's last webhooks (meeting ended, participants left) are answered only once we have handled them.
        try:
            wait_for(lambda: not self.undelivered_webhooks(), timeout=120, what="Zoom's webhooks to be delivered")
        except AssertionError as exc:
            raise AssertionError(f"{exc}; still undelivered: {self.undelivered_webhooks()}") from None

    def undelivered_webhooks(self):
        """Event, status and attempts (HTTP status or error, duration) of this app's webhooks not yet answered."""
        return [(d["event"], d["status"], [(a["status_code"] or a["error"], a["duration_ms"]) for a in d["attempts"]])
                for d in self.sim.get("/_sim/webhooks", params={"client_id": self.app.client_id}).json()
                if d["status"] in ("pending", "retrying")]

    def user_id(self, meeting, name):
        return next(p["user_id"] for p in meeting["participants"] if p["name"] == name)

    def key(self, meeting, name):
        return next(p["key"] for p in meeting["participants"] if p["name"] == name)

    def authorize(self, user_id):
        """The user installs our app: our install link → Zoom's consent → our callback."""
        start = requests.get(f"{self.web.url}/zoom/install/{self.app.client_id}", allow_redirects=False, timeout=10)
        consent = requests.get(start.headers["Location"], params={"user_id": user_id}, allow_redirects=False,
                               timeout=10)
        query = parse_qs(urlsplit(consent.headers["Location"]).query)
        page = requests.get(f"{self.web.url}/zoom/oauth/callback/{self.app.client_id}",
                            params={"code": query["code"][0], "state": query["state"][0]}, timeout=10)
        assert page.status_code == 200, page.text

    def sim_call(self, method, path, json=None):
        response = self.sim.request(method, path, json=json)
        assert response.status_code < 300, response.text
        return response.json() if response.content else None


class Person:
    """One person's simulated Zoom window (own browser context) with our app open in its Apps panel."""

    def __init__(self, browser, stack, meeting, name):
        self.stack = stack
        self.name = name
        self.key = stack.key(meeting, name)
        self.context = browser.new_context(viewport={"width": 1280, "height": 800})
        self.page = self.context.new_page()
        self.page.goto(f"{stack.sim.http_url}/meetings/{meeting['id']}/as/{self.key}")
        self.page.wait_for_function("() => window.__ready === true")
        # Zoom shows its disclosure modal whenever sharing starts; a person reads it and presses OK.
        self.page.add_locator_handler(self.page.locator("#disclosure:not([hidden])"),
                                      lambda _: self.dismiss_zoom_dialogs())
        self.frame = None

    def open_panel(self):
        self.page.click("#apps-button")
        self.page.click(f"#apps-menu-list button[data-client-id='{self.stack.app.client_id}']")
        # Bounds for the full suite on a loaded 2-core machine (one open took over 30 s there), not figures.
        try:
            handle = self.page.wait_for_selector(f"#panel-frame[data-client-id='{self.stack.app.client_id}']",
                                                 timeout=60000)
        except PlaywrightError:
            warning = self.page.locator("#panel-warning").inner_text()
            body = self.page.locator("#panel-body").inner_text()
            raise AssertionError(f"{self.name}'s Zoom window shows no app frame; its panel says {body!r}, "
                                 f"warning {warning!r}") from None
        self.frame = handle.content_frame()
        self.frame.wait_for_selector("#panel[data-ready='true']", timeout=30000)
        return self

    # what the panel shows
    def outcome(self):
        return self.frame.locator("#outcome").inner_text()

    def wait_outcome(self, status, timeout=15000):
        """A bound on the wait, not a speed check (bench/approval_latency.py measures that): with two xdist workers
        on a slow 2-core machine, an approve-all's two stream starts once took just past 10 s."""
        try:
            self.frame.wait_for_selector(f"#outcome[data-status='{status}']", timeout=timeout)
        except PlaywrightError:
            shown = self.frame.locator("#outcome").get_attribute("data-status")
            error = self.frame.locator("#error").inner_text()
            raise AssertionError(f"{self.name}'s panel shows {shown!r} ({self.outcome()!r}), not {status!r}"
                                 f"; error line: {error!r}") from None
        return self.outcome()

    def version(self):
        return int(self.frame.locator("#panel").get_attribute("data-version"))

    # acting like a person
    def dismiss_zoom_dialogs(self):
        """Presses OK on Zoom's disclosure modal if it is up (it dims the window for clicks and screenshots)."""
        ok = self.page.locator("#disclosure:not([hidden]) #disclosure-ok")
        try:
            if ok.is_visible():
                ok.click(force=True, timeout=1000)
        except PlaywrightError:
            pass  # closed meanwhile: the window is clear either way

    def click(self, selector):
        self.frame.locator(selector).click()

    def screenshot(self, name):
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        self.dismiss_zoom_dialogs()
        self.page.locator("#panel").screenshot(path=str(SCREENSHOTS / f"{name}.png"))

    def close(self):
        self.context.close()
