"""Approval latency: from the host pressing Approve to the participant's panel showing "Sharing".

    .venv/bin/python bench/approval_latency.py                 # 200 approvals
    .venv/bin/python bench/approval_latency.py --approvals 50 --participants 5

The whole real chain runs: the host's panel socket (daphne) → do_approve → REST rtms_app/status with the host's
OAuth token (simulator) → signed `meeting.rtms_started` webhook (daphne) → placement and claim (a worker's
session host) → RTMS signaling + media handshakes and CLIENT_READY_ACK (worker's session host ↔ simulator) →
stream active → do_stream_state → channel layer (Redis) → the participant's panel socket. Both sockets are real
WebSocket clients connected to daphne. After each approval the stream is stopped (the app's user presses Stop)
and the next participant asks.

Prints p50/p95/p99/max of the total, and of its parts from the rows written on the way (approve audit entry →
stream row created by the webhook → stream active → push received), and the CPU time daphne, the worker (with its
pool processes), the simulator and the PostgreSQL backends serving them spent per approval with its stop: unlike
the latencies, that figure does not move with what else the machine runs.

Then what a person sees (`--browser-approvals`, 50 by default, 0 to skip): Chromium (Debian's /usr/bin/chromium,
through Playwright, as the end-to-end tests) opens the simulated Zoom window of a host and two participants with
the app's panel in each; a participant clicks Share, the host clicks Approve in her panel's modal, and the time is
taken in the browsers, from the click landing in the host's panel to "Sharing" rendered in the participant's panel
(one machine, one clock). The same approvals' server-side stages are printed beside it, with the load average.
And a request reaching a host whose panel is closed (`--invitations`, 30 by default): a participant clicks Share,
and the time is taken from the click to Zoom's app invitation shown in the host's window; she ignores it and the
participant cancels before the next one.

Needs PostgreSQL (a database `bench_approval_<pid>` is created and dropped) and Redis on 127.0.0.1.
"""

import argparse
import contextlib
import json
import os
import statistics
import sys
import time
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.deployed_env import PG, register_bench_app, set_up  # noqa: E402 - after sys.path, before Django reads it

RUN, DB_NAME = set_up("approval")


def percentile(values, q):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


def summary(name, values_ms):
    return (f"{name:<28} p50 {percentile(values_ms, 50):7.1f} ms   p95 {percentile(values_ms, 95):7.1f} ms   "
            f"p99 {percentile(values_ms, 99):7.1f} ms   max {max(values_ms):7.1f} ms   "
            f"mean {statistics.mean(values_ms):7.1f}")


def create_database():
    import psycopg

    with psycopg.connect(f"{PG}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{DB_NAME}"')
        conn.execute(f'CREATE DATABASE "{DB_NAME}"')


def drop_database():
    import psycopg

    with psycopg.connect(f"{PG}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{DB_NAME}" WITH (FORCE)')


def receive_until(socket, predicate, timeout=15.0):
    deadline = time.monotonic() + timeout
    while True:
        message = json.loads(socket.recv(timeout=max(0.01, deadline - time.monotonic())))
        if message.get("type") == "state" and predicate(message["state"]):
            return message["state"]


def my_share(state):
    return next((s for s in state["shares"] if s["user_id"] == state["viewer"]["user_id"]), None)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--approvals", type=int, default=200)
    parser.add_argument("--participants", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=5, help="approvals run first and not counted")
    parser.add_argument("--browser-approvals", type=int, default=50,
                        help="approvals clicked in Chromium, measured as a person sees them (0: skip)")
    parser.add_argument("--invitations", type=int, default=30,
                        help="requests to a host whose panel is closed, in Chromium, click → Zoom's invitation shown")
    args = parser.parse_args()
    from tests.e2e.zoom_window_fixtures import CHROMIUM

    if (args.browser_approvals or args.invitations) and not Path(CHROMIUM).exists():
        sys.exit(f"{CHROMIUM} is missing: install Debian's chromium (apt-get install chromium), or pass "
                 "--browser-approvals 0 --invitations 0 for the server-side figures only")

    create_database()
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)

    import requests
    from websockets.sync.client import connect

    from tests import processes
    from tests.zoomsim_process import run_zoomsim

    workdir = Path(os.environ["DATA_DIR"])
    with run_zoomsim(workdir / "zoomsim", retry_scale=0.001) as sim:
        env = dict(os.environ, ZOOM_OAUTH_URL=sim.http_url, ZOOM_API_URL=f"{sim.http_url}/v2", PYTHONUNBUFFERED="1")
        os.environ.update(ZOOM_OAUTH_URL=sim.http_url, ZOOM_API_URL=f"{sim.http_url}/v2")
        web = processes.start_daphne(env, workdir)
        worker = processes.start_worker(env, workdir, "bench-worker", concurrency=2)
        try:
            cpu = CpuMeter({"daphne": web.pid, "worker": worker.pid, "simulator": sim.popen.pid})
            try:
                results = run(args, sim, web, requests, connect, cpu)
            finally:
                cpu.close()
            load_sockets = os.getloadavg()
            in_browsers = run_in_browsers(args, sim, web, requests) \
                if args.browser_approvals or args.invitations else None
            load_browsers = os.getloadavg()
        finally:
            worker.stop()
            web.stop()
    from django.db import connections

    connections.close_all()
    drop_database()

    total, to_rest, to_webhook, to_active, to_push, cpu_ms = results
    print(f"\napproval → participant's panel shows Sharing, {len(total)} approvals "
          f"({args.participants} participants taking turns, {args.warmup} warm-up approvals not counted)")
    print(summary("total (click → Sharing)", total))
    print(summary("  approve → REST answered", to_rest))
    print(summary("  approve → webhook row", to_webhook))
    print(summary("  webhook → stream active", to_active))
    print(summary("  active → panel push", to_push))
    print("CPU per approval, with its stop (ms): " + ", ".join(f"{name} {ms:.1f}" for name, ms in cpu_ms.items()))
    print(f"goal: p99 under 100 ms → {'met' if percentile(total, 99) < 100 else 'NOT met'}"
          f"   (load average during the run: {load_text(load_sockets)} on {os.cpu_count()} cores)")
    if in_browsers:
        (shown, click_to_approve, rest, webhook, active, push), invited = in_browsers
        if shown:
            print(f"\nin the browsers: click in the host's panel → \"Sharing\" rendered in the participant's panel, "
                  f"{len(shown)} approvals (Chromium, {args.warmup} warm-up approvals not counted)")
            print(summary("total (click → Sharing shown)", shown))
            print(summary("  click → approve row", click_to_approve))
            print(summary("  approve → REST answered", rest))
            print(summary("  approve → webhook row", webhook))
            print(summary("  webhook → stream active", active))
            print(summary("  active → Sharing shown", push))
        if invited:
            print(f"\nin the browsers: a participant's Share click → Zoom's invitation shown in the window of a host "
                  f"whose panel is closed, {len(invited)} requests")
            print(summary("total (click → invitation)", invited))
        print(f"load average: {load_text(load_browsers)} on {os.cpu_count()} cores (1, 5, 15 minutes)")


def load_text(load):
    return "/".join(f"{value:.2f}" for value in load)


def _cpu_seconds(process):
    times = process.cpu_times()
    return times.user + times.system


class CpuMeter:
    """CPU time of each process (with its children: the worker's pool processes) between two readings, and of the
    PostgreSQL backends serving them: a figure that, unlike the latencies, does not depend on what else the machine
    is running."""

    def __init__(self, pids):
        import psutil

        self.processes = {name: psutil.Process(pid) for name, pid in pids.items()}
        self.postgres = PostgresBackends()
        self.start = self.read()

    def read(self):
        return {**{name: _cpu_seconds(p) + sum(_cpu_seconds(c) for c in p.children(recursive=True))
                   for name, p in self.processes.items()}, "postgresql": self.postgres.read()}

    def restart(self):
        self.start = self.read()

    def per(self, count):
        return {name: (now - self.start[name]) * 1000 / count for name, now in self.read().items()}

    def close(self):
        self.postgres.close()


class PostgresBackends:
    """CPU seconds of the PostgreSQL backends serving the bench's processes (their connections to the bench's
    database, named by PGAPPNAME; not the benchmark's own), sampled every 0.2 s by a thread: a backend that exits
    (a Celery task's connection) still counts up to its last sample. PostgreSQL runs on this machine."""

    def __init__(self):
        import threading

        self._cpu = {}  # backend pid -> its CPU seconds at the latest sample
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def _sample(self):
        import psutil
        import psycopg

        with psycopg.connect(f"{PG}/postgres", autocommit=True) as conn:
            while not self._stop.wait(0.2):
                pids = [pid for (pid,) in conn.execute(
                    "SELECT pid FROM pg_stat_activity WHERE datname = %s AND application_name LIKE 'test-%%'",
                    (DB_NAME,))]
                for pid in pids:
                    with contextlib.suppress(psutil.Error):
                        seconds = _cpu_seconds(psutil.Process(pid))
                        with self._lock:
                            self._cpu[pid] = seconds

    def read(self):
        with self._lock:
            return sum(self._cpu.values())

    def close(self):
        self._stop.set()
        self._thread.join(5)


def authorize(web, requests, app, user_id):
    """The host installs the app (authorization code flow through our install link)."""
    start = requests.get(f"{web.url}/zoom/install/{app.client_id}", allow_redirects=False, timeout=10)
    consent = requests.get(start.headers["Location"], params={"user_id": user_id}, allow_redirects=False, timeout=10)
    query = parse_qs(urlsplit(consent.headers["Location"]).query)
    assert requests.get(f"{web.url}/zoom/oauth/callback/{app.client_id}", timeout=10,
                        params={"code": query["code"][0], "state": query["state"][0]}).status_code == 200


def server_stages(user_id, share):
    """When the approval was recorded, REST answered, Zoom's webhook made the stream row, and the stream went active
    (database clock, the machine's)."""
    from rtms.models import StreamSession, StreamTransition
    from zoomapp.consent.models import AuditEntry

    approve_at = AuditEntry.objects.filter(kind="approve", subject_user_id=user_id).order_by("-id")[0].created
    stream = StreamSession.objects.get(rtms_stream_id=share.rtms_stream_id)
    active_at = StreamTransition.objects.filter(stream=stream, state="active").order_by("id")[0].at
    rest_at = AuditEntry.objects.filter(kind="start_requested", subject_user_id=user_id).order_by("-id")[0].created
    return approve_at, rest_at, stream.created, active_at


def wait_stream_stopped(share):
    from rtms.models import StreamSession

    deadline = time.monotonic() + 10
    while StreamSession.objects.filter(rtms_stream_id=share.rtms_stream_id).exclude(state="stopped").exists():
        if time.monotonic() > deadline:
            raise SystemExit(f"stream {share.rtms_stream_id} did not stop")
        time.sleep(0.02)


# Both instants are taken in the browsers: the host's click as it lands in her panel, and the participant's panel
# rendering "Sharing" (not when Playwright's polling notices either).
MARK_CLICK = """() => document.addEventListener("click", () => { window.__clickedAt = Date.now(); },
                                              {capture: true, once: true})"""
MARK_SHARING = """() => { window.__sharingAt = null; new MutationObserver((changes, observer) => {
    if (document.getElementById("outcome").dataset.status === "sharing") {
        window.__sharingAt = Date.now(); observer.disconnect();
    }
}).observe(document.getElementById("outcome"), {attributes: true}); }"""
MARK_INVITATION = """() => { window.__invitedAt = null; new MutationObserver((changes, observer) => {
    if (document.querySelector("#invitations .invitation")) { window.__invitedAt = Date.now(); observer.disconnect(); }
}).observe(document.getElementById("invitations"), {childList: true, subtree: true}); }"""


def run_in_browsers(args, sim, web, requests):
    from playwright.sync_api import sync_playwright

    from tests.e2e.panel_support import Person, Stack
    from tests.e2e.zoom_window_fixtures import CHROMIUM, CHROMIUM_ARGS
    from zoomapp.consent.models import Share
    from zoomapp.marketplace.models import ZoomApp

    # Playwright's sync API runs an event loop in this thread; the ORM reads here are this bench's own, as in the
    # end-to-end tests (tests/e2e/conftest.py). daphne and the worker were started without it.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    app = ZoomApp.objects.get(name="Bench Bot")
    names = ("Hana", "Pat", "Quinn")
    people = {name: {"name": name, "user_id": f"bench{name}", "account_id": "acctBench"} for name in names}
    meeting = sim.post("/_sim/meetings", json={
        "topic": "Approval bench in browsers", "host": people["Hana"], "start": True,
        "participants": [people["Pat"], people["Quinn"]],
        "settings": {"share_with_apps": True, "require_host_approval": True},
    }).json()
    authorize(web, requests, app, "benchHana")
    stack = Stack(sim, web, app)
    shown_ms, click_to_approve, rest, webhook, active, push = [], [], [], [], [], []
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        hana = Person(chromium, stack, meeting, "Hana").open_panel()
        participants = [Person(chromium, stack, meeting, name).open_panel() for name in names[1:]]
        for i in range(args.warmup + args.browser_approvals if args.browser_approvals else 0):
            person = participants[i % len(participants)]
            person.click("#share-button")
            person.wait_outcome("pending")
            hana.frame.wait_for_selector("#requests-modal[data-kind='single'][open]")
            hana.frame.evaluate(MARK_CLICK)
            person.frame.evaluate(MARK_SHARING)
            hana.frame.locator("#requests-list button", has_text="Approve").click()
            person.wait_outcome("sharing", timeout=15000)
            clicked_at = hana.frame.evaluate("window.__clickedAt") / 1000
            sharing_at = person.frame.evaluate("window.__sharingAt") / 1000
            user_id = people[person.name]["user_id"]
            share = Share.objects.get(meeting__uuid=meeting["uuid"], user_id=user_id)
            if i >= args.warmup:
                approve_at, rest_at, webhook_at, active_at = server_stages(user_id, share)
                shown_ms.append((sharing_at - clicked_at) * 1000)
                click_to_approve.append((approve_at.timestamp() - clicked_at) * 1000)
                rest.append((rest_at - approve_at).total_seconds() * 1000)
                webhook.append((webhook_at - approve_at).total_seconds() * 1000)
                active.append((active_at - webhook_at).total_seconds() * 1000)
                push.append((sharing_at - active_at.timestamp()) * 1000)
            person.click("#stop-button")
            person.wait_outcome("stopped")
            wait_stream_stopped(share)
        for person in (hana, *participants):
            person.close()
        invited_ms = time_invitations(args, sim, chromium, stack)
        chromium.close()
    return (shown_ms, click_to_approve, rest, webhook, active, push), invited_ms


def time_invitations(args, sim, chromium, stack):
    """Ivy hosts with no app open; Otto's request reaches her as Zoom's invitation (docs/REQUESTS.md)."""
    from tests.e2e.panel_support import Person

    if not args.invitations:
        return []
    people = {name: {"name": name, "user_id": f"bench{name}", "account_id": "acctBench"} for name in ("Ivy", "Otto")}
    meeting = sim.post("/_sim/meetings", json={
        "topic": "Invitation bench in browsers", "host": people["Ivy"], "start": True, "participants": [people["Otto"]],
        "settings": {"share_with_apps": True, "require_host_approval": True},
    }).json()
    ivy, otto = Person(chromium, stack, meeting, "Ivy"), Person(chromium, stack, meeting, "Otto").open_panel()
    invited_ms = []
    for i in range(args.warmup + args.invitations):
        otto.frame.evaluate(MARK_CLICK)
        ivy.page.evaluate(MARK_INVITATION)
        otto.click("#share-button")
        invitation = ivy.page.locator("#invitations .invitation")
        invitation.wait_for(timeout=15000)
        if i >= args.warmup:
            invited_ms.append(ivy.page.evaluate("window.__invitedAt") - otto.frame.evaluate("window.__clickedAt"))
        invitation.get_by_role("button", name="Ignore").click()
        invitation.wait_for(state="detached")
        otto.wait_outcome("pending")
        otto.click("#cancel-button")
        otto.wait_outcome("stopped")
    for person in (ivy, otto):
        person.close()
    return invited_ms


def run(args, sim, web, requests, connect, cpu):
    from django.conf import settings

    from zoomapp.consent import tokens
    from zoomapp.consent.models import Share

    app = register_bench_app(sim, web.url, settings.SITE_URL)
    people = [{"name": f"P{i}", "user_id": f"benchUser{i}", "account_id": "acctBench"}
              for i in range(args.participants)]
    meeting = sim.post("/_sim/meetings", json={
        "topic": "Approval bench", "host": {"name": "Host", "user_id": "benchHost", "account_id": "acctBench"},
        "participants": people, "settings": {"share_with_apps": True, "require_host_approval": True},
        "start": True,
    }).json()
    authorize(web, requests, app, "benchHost")

    ws_base = web.url.replace("http", "ws") + "/ws/panel/?token="
    uuid = meeting["uuid"]
    sockets = contextlib.ExitStack()  # every panel socket is closed on the way out

    def open_panel(user_id):
        return sockets.enter_context(connect(ws_base + tokens.mint(app.client_id, uuid, user_id), open_timeout=10,
                                             max_queue=None, ping_interval=None))

    host = open_panel("benchHost")
    receive_until(host, lambda state: True)
    # The host's panel makes the host present (as Zoom's context would say).
    from zoomapp.consent import meetings
    from zoomapp.consent.actions import presence
    from zoomapp.consent.permissions import Actor

    presence.do_panel_opened(meetings.get_meeting(app, uuid), "benchHost", "host", "Host", actor=Actor("benchHost"))
    panels = []
    for person in people:
        socket = open_panel(person["user_id"])
        receive_until(socket, lambda state: True)
        panels.append(socket)

    total, to_rest, to_webhook, to_active, to_push = [], [], [], [], []
    for i in range(args.warmup + args.approvals):
        if i == args.warmup:
            cpu.restart()
        panel = panels[i % len(panels)]
        user_id = people[i % len(panels)]["user_id"]
        panel.send(json.dumps({"action": "request"}))
        pending = receive_until(panel, lambda s: (my_share(s) or {}).get("status") == "pending")
        request_id = next(r["id"] for r in pending["requests"])
        clicked = time.time()
        host.send(json.dumps({"action": "approve", "requests": [request_id]}))
        shown = receive_until(panel, lambda s: (my_share(s) or {}).get("status") == "sharing")
        received = time.time()
        share = Share.objects.get(pk=my_share(shown)["id"])
        if i >= args.warmup:
            approve_at, rest_at, webhook_at, active_at = server_stages(user_id, share)
            total.append((received - clicked) * 1000)
            to_rest.append((rest_at - approve_at).total_seconds() * 1000)
            to_webhook.append((webhook_at - approve_at).total_seconds() * 1000)
            to_active.append((active_at - webhook_at).total_seconds() * 1000)
            to_push.append((received - active_at.timestamp()) * 1000)
        panel.send(json.dumps({"action": "stop", "share": share.pk}))
        receive_until(panel, lambda s: (my_share(s) or {}).get("status") == "stopped")
        wait_stream_stopped(share)
    cpu_ms = cpu.per(args.approvals)
    sockets.close()
    return total, to_rest, to_webhook, to_active, to_push, cpu_ms


if __name__ == "__main__":
    main()
