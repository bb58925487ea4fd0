"""Approval latency: from the host pressing Approve to the participant's panel showing "Sharing".

    .venv/bin/python bench/approval_latency.py                 # 200 approvals
    .venv/bin/python bench/approval_latency.py --approvals 50 --participants 5

The whole real chain runs: the host's panel socket (daphne) → do_approve → REST rtms_app/status with the host's
OAuth token (simulator) → signed `meeting.rtms_started` webhook (daphne) → claim task (Celery worker) → RTMS
signaling + media handshakes and CLIENT_READY_ACK (worker's session host ↔ simulator) → stream active →
do_stream_state → channel layer (Redis) → the participant's panel socket. Both sockets are real WebSocket clients
connected to daphne. After each approval the stream is stopped (the app's user presses Stop) and the next
participant asks.

Prints p50/p95/p99/max of the total, and of its parts from the rows written on the way (approve audit entry →
stream row created by the webhook → stream active → push received).

Needs PostgreSQL (a database `bench_approval_<pid>` is created and dropped) and Redis on 127.0.0.1.
"""

import argparse
import contextlib
import json
import os
import secrets
import statistics
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

RUN = f"bench{os.getpid()}"
DB_NAME = f"bench_approval_{os.getpid()}"
PG = os.environ.get("BENCH_POSTGRES", "postgres://postgres@127.0.0.1:5432")
os.environ.update({
    "DATABASE_URL": f"{PG}/{DB_NAME}", "REDIS_NAMESPACE": RUN, "LOG_LEVEL": "WARNING",
    # As deployed: DEBUG off (Django's debug cursor would keep and format every query), so a real secret key.
    "DEBUG": "false", "SECRET_KEY": secrets.token_urlsafe(32), "FIELD_ENCRYPTION_KEY": secrets.token_urlsafe(32),
    "DATA_DIR": tempfile.mkdtemp(prefix="bench-approval-"), "DJANGO_SETTINGS_MODULE": "zoomapp.settings",
    # The simulator's RTMS servers are ws://127.0.0.1: outside production's outbound allow list.
    "RTMS_ALLOWED_HOSTS": "127.0.0.1", "RTMS_ALLOW_INSECURE_WS": "true",
    # Plain http on 127.0.0.1 (production redirects http to https and sends cookies over https only).
    "SECURE_SSL_REDIRECT": "false", "SESSION_COOKIE_SECURE": "false", "CSRF_COOKIE_SECURE": "false",
})


def percentile(values, q):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


def summary(name, values_ms):
    return (f"{name:<28} p50 {percentile(values_ms, 50):7.1f} ms   p95 {percentile(values_ms, 95):7.1f} ms   "
            f"p99 {percentile(values_ms, 99):7.1f} ms   max {max(values_ms):7.1f} ms   mean {statistics.mean(values_ms):7.1f}")


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
    args = parser.parse_args()

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
            results = run(args, sim, web, requests, connect)
        finally:
            worker.stop()
            web.stop()
    from django.db import connections

    connections.close_all()
    drop_database()

    total, to_rest, to_webhook, to_active, to_push = results
    print(f"\napproval → participant's panel shows Sharing, {len(total)} approvals "
          f"({args.participants} participants taking turns, {args.warmup} warm-up approvals not counted)")
    print(summary("total (click → Sharing)", total))
    print(summary("  approve → REST answered", to_rest))
    print(summary("  approve → webhook row", to_webhook))
    print(summary("  webhook → stream active", to_active))
    print(summary("  active → panel push", to_push))
    print(f"goal: p99 under 150 ms → {'met' if percentile(total, 99) < 150 else 'NOT met'}"
          f"   (load average during the run: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)")


def run(args, sim, web, requests, connect):
    from django.conf import settings

    from rtms.models import StreamSession, StreamTransition
    from zoomapp.consent import tokens
    from zoomapp.consent.models import AuditEntry, Share
    from zoomapp.marketplace.models import ZoomApp

    app = ZoomApp.objects.create(name="Bench Bot", client_id=f"bench{secrets.token_hex(4)}",
                                 client_secret=secrets.token_hex(16), webhook_secret_token=secrets.token_hex(16))
    response = sim.post("/_sim/apps", json={
        "name": app.name, "client_id": app.client_id, "client_secret": app.client_secret,
        "webhook_secret_token": app.webhook_secret_token, "event_url": web.url + app.webhook_path,
        "home_url": f"{web.url}/panel/{app.client_id}/", "account_id": "acctBench",
        "redirect_url": f"{settings.SITE_URL}/zoom/oauth/callback/{app.client_id}",
    })
    assert response.status_code in (200, 201), response.text
    people = [{"name": f"P{i}", "user_id": f"benchUser{i}", "account_id": "acctBench"} for i in range(args.participants)]
    meeting = sim.post("/_sim/meetings", json={
        "topic": "Approval bench", "host": {"name": "Host", "user_id": "benchHost", "account_id": "acctBench"},
        "participants": people, "settings": {"share_with_apps": True, "require_host_approval": True},
        "start": True,
    }).json()
    # The host installs the app (authorization code flow through our install link).
    start = requests.get(f"{web.url}/zoom/install/{app.client_id}", allow_redirects=False, timeout=10)
    consent = requests.get(start.headers["Location"], params={"user_id": "benchHost"}, allow_redirects=False,
                           timeout=10)
    query = parse_qs(urlsplit(consent.headers["Location"]).query)
    assert requests.get(f"{web.url}/zoom/oauth/callback/{app.client_id}", timeout=10,
                        params={"code": query["code"][0], "state": query["state"][0]}).status_code == 200

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
            approve_at = AuditEntry.objects.filter(kind="approve", subject_user_id=user_id).order_by("-id")[0].created
            stream = StreamSession.objects.get(rtms_stream_id=share.rtms_stream_id)
            active_at = StreamTransition.objects.filter(stream=stream, state="active").order_by("id")[0].at
            rest_at = AuditEntry.objects.filter(kind="start_requested", subject_user_id=user_id).order_by("-id")[0].created
            total.append((received - clicked) * 1000)
            to_rest.append((rest_at - approve_at).total_seconds() * 1000)
            to_webhook.append((stream.created - approve_at).total_seconds() * 1000)
            to_active.append((active_at - stream.created).total_seconds() * 1000)
            to_push.append((received - active_at.timestamp()) * 1000)
        panel.send(json.dumps({"action": "stop", "share": share.pk}))
        receive_until(panel, lambda s: (my_share(s) or {}).get("status") == "stopped")
        deadline = time.monotonic() + 10
        while StreamSession.objects.filter(rtms_stream_id=share.rtms_stream_id).exclude(state="stopped").exists():
            if time.monotonic() > deadline:
                raise SystemExit(f"stream {share.rtms_stream_id} did not stop")
            time.sleep(0.02)
    sockets.close()
    return total, to_rest, to_webhook, to_active, to_push


if __name__ == "__main__":
    main()
