"""Panel fan-out: N panel WebSockets open in one meeting, through the real daphne, Channels layer and Redis.

    .venv/bin/python bench/panel_fanout.py 200 500 1000        # one stack, the panel counts in turn
    .venv/bin/python bench/panel_fanout.py 1000 --rounds 10 --profile var/panel_fanout.svg
    .venv/bin/python bench/panel_fanout.py 1000 --web 2         # two daphne processes, the panels spread over both

For each N: N panels open at once (a large meeting's start: each loads the Home URL with its app context as
Zoom's client does, then connects its socket with the token the page carries: the token check and snapshot),
then a few of the meeting's participants take turns: each asks to share (their panel's "request"), the host
approves from her panel (the real chain: REST to the simulator, its signed webhook, the worker's stream), and the
participant stops from their panel. Every panel is a real WebSocket client; each records when each state version
reached it.

Prints, each line with the machine's load average:
--web N starts N daphne processes and spreads the panels over them in turn, as the proxy in front of the web
processes does (docs/DEPLOY.md); every "web CPU" is then the sum over them.

- opening: wall time for all N, per-panel Home URL request and connect → snapshot p50/p99, and the web
  processes' CPU per panel for each, at once (the burst) and one at a time (a late joiner in a full meeting);
- per change (request, approve → "starting", stream active → "sharing", stop): p50/p99 from the action sent (for
  "stream active", from the worker's record of the stream going active) to the LAST panel holding the new state,
  the web processes' CPU per change (from /proc of the daphne pids), and how
  many states a watching panel received since the previous change (several pushes, or fewer when the newest
  overtook older ones);
- the bytes of one push per panel (a host's and a participant's) and in all.

--profile FILE records the (first) web process with py-spy (installed into the venv if missing) while the panels open
and while the changes run, one file each.
Needs PostgreSQL (a database `bench_fanout_<pid>` is created and dropped) and Redis on 127.0.0.1.
"""

import argparse
import asyncio
import itertools
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.deployed_env import PG, register_bench_app, set_up  # noqa: E402 - after sys.path, before Django reads it

RUN, DB_NAME = set_up("fanout")

ACTORS = 5  # participants taking turns to share; every other panel only watches
VERSION = re.compile(rb'"version":(\d+)')  # a state frame's first "version" is the state's own


def percentile(values, q):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


def load():
    one, five, _ = os.getloadavg()
    return f"load {one:.1f}/{five:.1f} on {os.cpu_count()} cores"


def cpu_seconds(processes_):
    """User + system CPU of these processes so far (/proc/<pid>/stat utime and stime, in clock ticks)."""
    ticks = 0
    for process in processes_:
        fields = Path(f"/proc/{process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def database(action):
    import psycopg

    with psycopg.connect(f"{PG}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{DB_NAME}" WITH (FORCE)')
        if action == "create":
            conn.execute(f'CREATE DATABASE "{DB_NAME}"')


class Panel:
    """One panel's socket. Watchers only note when each state version arrived (no JSON parsing, so the bench's
    own CPU stays small next to the web process's); the panels that act also keep the last state parsed."""

    def __init__(self, socket, parse):
        self.socket, self.parse = socket, parse
        self.arrivals = {}  # version -> (perf_counter, bytes)
        self.version = 0
        self.state = None
        self.refused = None
        self.changed = asyncio.Event()

    async def read(self):
        async for frame in self.socket:
            data = frame.encode() if isinstance(frame, str) else frame
            now = time.perf_counter()
            if data.startswith(b'{"type":"state"'):
                version = int(VERSION.search(data).group(1))
                self.arrivals.setdefault(version, (now, len(data)))
                self.version = max(self.version, version)
                if self.parse:
                    self.state = json.loads(data)["state"]
            elif self.parse and data.startswith(b'{"type":"refused"'):
                self.refused = json.loads(data)
            self.changed.set()

    async def until(self, predicate, timeout=30.0):
        deadline = time.monotonic() + timeout
        while not (self.state is not None and predicate(self.state)):
            if self.refused:
                raise SystemExit(f"refused: {self.refused}")
            self.changed.clear()
            await asyncio.wait_for(self.changed.wait(), max(0.01, deadline - time.monotonic()))
        return self.state


def share_of(state, user_id):
    return next((s for s in state["shares"] if s["user_id"] == user_id), None)


def status_in(user_id, statuses):
    return lambda state: (share_of(state, user_id) or {}).get("status") in statuses


_opened = itertools.count()  # panels opened so far: the next one goes to the next web process


async def open_panels(urls, tokens_, parse=False, at_once=100):
    """Open one panel per token on the web processes' `urls` in turn, at most `at_once` connecting at a time;
    returns the panels, each one's connect→snapshot seconds, and how many connections were dropped before they
    opened."""
    from websockets.asyncio.client import connect
    from websockets.exceptions import InvalidHandshake

    gate = asyncio.Semaphore(at_once)
    seconds, retries = [], []

    async def one(token):
        url = urls[next(_opened) % len(urls)]
        async with gate:
            began = time.perf_counter()
            for attempt in range(5):
                try:
                    socket = await connect(url + token, open_timeout=60, max_size=None, ping_interval=None,
                                           compression=None)
                    break
                except (OSError, InvalidHandshake):
                    # daphne drops a socket its application has not accepted within 5 s; a panel opens again
                    retries.append(token)
                    await asyncio.sleep(0.5 * (attempt + 1))
            else:
                raise SystemExit("a panel could not open in 5 attempts")
            panel = Panel(socket, parse)
            panel.reader = asyncio.get_running_loop().create_task(panel.read())
            while not panel.arrivals:
                panel.changed.clear()
                await asyncio.wait_for(panel.changed.wait(), 60)
            seconds.append(time.perf_counter() - began)
            return panel

    panels = await asyncio.gather(*(one(t) for t in tokens_))
    return panels, seconds, len(retries)


TOKEN = re.compile(r'data-token="([^"]*)"')


async def load_home(home_urls, contexts, at_once):
    """Each panel's first request, as Zoom's client makes it: the Home URL with the person's encrypted app context
    (the context verified, the person bound to the meeting, a panel token minted, the page rendered). Returns the
    tokens the pages carry and each request's seconds."""
    import aiohttp

    gate = asyncio.Semaphore(at_once)
    seconds = []

    async def one(session, index, context):
        async with gate:
            began = time.perf_counter()
            async with session.get(home_urls[index % len(home_urls)], headers={"X-Zoom-App-Context": context}) as page:
                html = await page.text()
            seconds.append(time.perf_counter() - began)
        token = TOKEN.search(html)
        if page.status != 200 or not token or not token.group(1):
            raise SystemExit(f"the Home URL answered {page.status} without a panel token")
        return token.group(1)

    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=120)) as session:
        tokens_ = await asyncio.gather(*(one(session, i, c) for i, c in enumerate(contexts)))
    return tokens_, seconds


async def reached_all(panels, version, timeout=60.0):
    """Wait until every panel holds `version` or newer; returns (first, last) arrival times."""
    deadline = time.monotonic() + timeout
    while any(p.version < version for p in panels):
        if time.monotonic() > deadline:
            behind = sum(p.version < version for p in panels)
            raise SystemExit(f"{behind} panels never received version {version}")
        await asyncio.sleep(0.002)
    times = [min(t for v, (t, _) in p.arrivals.items() if v >= version) for p in panels]
    return min(times), max(times)


def start_profiler(args, web, phase):
    """py-spy on the web process, into the --profile file's name with the phase added."""
    if not args.profile:
        return None
    out = Path(args.profile).with_name(f"{Path(args.profile).stem}-{phase}{Path(args.profile).suffix}")
    # --gil: only what holds the interpreter (the idle threads' waits are left out); --nonblocking: the process
    # is never stopped to be sampled, so the figures printed beside stay near the real ones.
    profiler = subprocess.Popen([str(Path(sys.executable).parent / "py-spy"), "record", "--pid", str(web.pid),
                                 "--gil", "--nonblocking",
                                 "--rate", "200", "--output", str(out), "--format",
                                 {".json": "speedscope", ".txt": "raw"}.get(out.suffix, "flamegraph")],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(1.0)  # py-spy attached
    return profiler


def stop_profiler(profiler):
    if profiler is not None:
        profiler.send_signal(signal.SIGINT)
        profiler.wait(30)


async def one_size(args, n, ctx):
    from tests.consent_support import context_for
    from zoomapp.consent import tokens

    app, uuid, ws_url, webs = ctx["app"], ctx["uuid"], ctx["ws_urls"], ctx["webs"]
    watchers = n - 1 - ACTORS
    # Watchers: participants who only look (half signed in, half guests, as a webinar's audience would be).
    contexts = [context_for(app, uuid, f"watcher{n}x{i}" if i % 2 else None) for i in range(watchers)]

    profiler = start_profiler(args, webs[0], f"open-{n}")
    cpu0, began = cpu_seconds(webs), time.perf_counter()
    watcher_tokens, home_seconds = await load_home(ctx["home_urls"], contexts, args.at_once)
    home_wall, home_cpu = time.perf_counter() - began, cpu_seconds(webs) - cpu0
    print(f"N={n:<5} loading the Home URL for {watchers} panels at once ({args.at_once} at a time): "
          f"{home_wall:.2f} s wall, request p50 {percentile(home_seconds, 50) * 1000:.0f} ms "
          f"p99 {percentile(home_seconds, 99) * 1000:.0f} ms, web CPU {home_cpu / watchers * 1000:.2f} ms/panel "
          f"  [{load()}]", flush=True)
    cpu0, began = cpu_seconds(webs), time.perf_counter()
    watching, connect_seconds, retried = await open_panels(ws_url, watcher_tokens, at_once=args.at_once)
    burst_wall, burst_cpu = time.perf_counter() - began, cpu_seconds(webs) - cpu0
    host = (await open_panels(ws_url, [tokens.mint(app.client_id, uuid, "benchHost")], parse=True))[0][0]
    actors = [(await open_panels(ws_url, [tokens.mint(app.client_id, uuid, f"benchUser{i}")], parse=True))[0][0]
              for i in range(ACTORS)]
    everyone = watching + [host] + actors
    print(f"N={n:<5} opening {watchers} panels at once ({args.at_once} connecting at a time): "
          f"{burst_wall:.2f} s wall, connect→snapshot p50 {percentile(connect_seconds, 50) * 1000:.0f} ms "
          f"p99 {percentile(connect_seconds, 99) * 1000:.0f} ms, {retried} dropped and opened again, "
          f"web CPU {burst_cpu / watchers * 1000:.2f} ms/panel "
          f"  [{load()}]", flush=True)

    # A late joiner in a full meeting, one at a time: the Home URL, then the token check and snapshot.
    cpu0 = cpu_seconds(webs)
    late_seconds = []
    for i in range(args.late):
        began = time.perf_counter()
        token, _ = await load_home(ctx["home_urls"], [context_for(app, uuid, f"late{n}x{i}")], 1)
        panels, _, _ = await open_panels(ws_url, token)
        late_seconds.append(time.perf_counter() - began)
        everyone += panels
    late_cpu = cpu_seconds(webs) - cpu0
    stop_profiler(profiler)
    if args.late:
        print(f"N={n:<5} opening one more panel, one at a time ×{args.late}: Home URL → snapshot p50 "
              f"{percentile(late_seconds, 50) * 1000:.1f} ms p99 {percentile(late_seconds, 99) * 1000:.1f} ms, "
              f"web CPU {late_cpu / args.late * 1000:.2f} ms/panel   [{load()}]", flush=True)

    profiler = start_profiler(args, webs[0], f"changes-{n}")
    kinds = {"request": [], "approve → starting": [], "stream active → sharing": [], "stop": []}
    cpu = {kind: [] for kind in kinds}
    sizes = {"host": [], "participant": [], "guest": []}
    # States a watcher received per change: one push each, unless a newer one overtook it on the way.
    pushes = {kind: [] for kind in kinds}
    seen = {"version": watching[0].version}

    async def change(kind, panel, frame, user_id, *statuses):
        cpu_before, sent = cpu_seconds(webs), time.perf_counter()
        if frame is not None:
            await panel.socket.send(json.dumps(frame))
        state = await panel.until(status_in(user_id, statuses))
        first, last = await reached_all(everyone, state["version"])
        if frame is None:  # no action of the bench's: the change is the stream going active, when the worker said so
            sent = await asyncio.to_thread(stream_active_at, share_of(state, user_id)["id"])
        await asyncio.sleep(0.05)  # the web process's last sends are counted in its CPU
        if round_ >= args.warmup:
            kinds[kind].append((last - sent) * 1000)
            pushes[kind].append(sum(seen["version"] < v <= state["version"] for v in watching[0].arrivals))
            cpu[kind].append(cpu_seconds(webs) - cpu_before)
            for label, who in (("host", host), ("participant", watching[1]), ("guest", watching[0])):
                sizes[label].append(who.arrivals[min(v for v in who.arrivals if v >= state["version"])][1])
        seen["version"] = state["version"]
        return state

    for round_ in range(args.warmup + args.rounds):
        i = round_ % ACTORS
        user_id, actor = f"benchUser{i}", actors[i]
        await change("request", actor, {"action": "request"}, user_id, "pending")
        asking = await host.until(lambda s, asker=user_id: any(r["user_id"] == asker for r in s["requests"]))
        request_id = next(r["id"] for r in asking["requests"] if r["user_id"] == user_id)
        await change("approve → starting", host, {"action": "approve", "requests": [request_id]}, user_id,
                     "starting", "sharing")  # a state newer than "starting" may overtake it
        sharing = await change("stream active → sharing", actor, None, user_id, "sharing")
        share_id = share_of(sharing, user_id)["id"]
        await change("stop", actor, {"action": "stop", "share": share_id}, user_id, "stopped")
        await asyncio.to_thread(ctx["wait_stopped"], share_id)

    stop_profiler(profiler)
    for kind, values in kinds.items():
        if not values:
            continue
        per_change = sum(cpu[kind]) / len(cpu[kind]) * 1000
        # The stream goes active while the approval's "starting" is still being written: its push's CPU falls
        # mostly in the approval's window, so it is not shown on its own.
        web_cpu = ("web CPU in the approval's    " if kind == "stream active → sharing" else
                   f"web CPU {per_change:6.1f} ms/change ({per_change * 1000 / len(everyone):.0f} µs/panel),")
        print(f"N={n:<5} {kind:<24} action → last panel p50 {percentile(values, 50):6.0f} ms "
              f"p99 {percentile(values, 99):6.0f} ms   {web_cpu} "
              f"{sum(pushes[kind]) / len(pushes[kind]):.1f} states received per panel   [{load()}]", flush=True)
    if sizes["participant"]:  # none with --rounds 0: the opening alone
        watchers_bytes = sum(sizes["participant"]) / len(sizes["participant"])
        print(f"N={n:<5} bytes per push: host {sum(sizes['host']) / len(sizes['host']):.0f}, participant "
              f"{watchers_bytes:.0f}, guest {sum(sizes['guest']) / len(sizes['guest']):.0f}; "
              f"≈{watchers_bytes * len(everyone) / 1024:.0f} KiB to all {len(everyone)} panels   [{load()}]",
              flush=True)
    for panel in everyone:
        await panel.socket.close()
        panel.reader.cancel()
    await asyncio.sleep(1.0)
    return kinds


def setup_meeting(sim, web, requests):
    from django.conf import settings

    from zoomapp.consent import meetings
    from zoomapp.consent.actions import presence
    from zoomapp.consent.permissions import Actor

    app = register_bench_app(sim, web.url, settings.SITE_URL)
    people = [{"name": f"P{i}", "user_id": f"benchUser{i}", "account_id": "acctBench"} for i in range(ACTORS)]
    meeting = sim.post("/_sim/meetings", json={
        "topic": "Fan-out bench", "host": {"name": "Host", "user_id": "benchHost", "account_id": "acctBench"},
        "participants": people, "settings": {"share_with_apps": True, "require_host_approval": True},
        "start": True,
    }).json()
    # The host installs the app (authorization code flow through our install link), so approvals can start.
    start = requests.get(f"{web.url}/zoom/install/{app.client_id}", allow_redirects=False, timeout=10)
    consent = requests.get(start.headers["Location"], params={"user_id": "benchHost"}, allow_redirects=False,
                           timeout=10)
    query = parse_qs(urlsplit(consent.headers["Location"]).query)
    assert requests.get(f"{web.url}/zoom/oauth/callback/{app.client_id}", timeout=10,
                        params={"code": query["code"][0], "state": query["state"][0]}).status_code == 200
    presence.do_panel_opened(meetings.get_meeting(app, meeting["uuid"]), "benchHost", "host", "Host",
                             actor=Actor("benchHost"))
    return app, meeting["uuid"]


def stream_active_at(share_id):
    """When the worker recorded the share's stream as active (the database's row, on the machine's wall clock), on
    the bench's perf_counter clock: that state change, not the bench's wait for it, starts "stream active"."""
    from rtms.models import StreamSession, StreamTransition
    from zoomapp.consent.models import Share

    stream = StreamSession.objects.get(rtms_stream_id=Share.objects.get(pk=share_id).rtms_stream_id)
    active_at = StreamTransition.objects.filter(stream=stream, state="active").order_by("id")[0].at
    return active_at.timestamp() - (time.time() - time.perf_counter())


def wait_stopped(share_id):
    from rtms.models import StreamSession
    from zoomapp.consent.models import Share

    stream_id = Share.objects.get(pk=share_id).rtms_stream_id
    deadline = time.monotonic() + 10
    while StreamSession.objects.filter(rtms_stream_id=stream_id).exclude(state="stopped").exists():
        if time.monotonic() > deadline:
            raise SystemExit(f"stream {stream_id} did not stop")
        time.sleep(0.02)


def run_stack(args):
    """The simulator, daphne and a worker against this run's database; each panel count in turn."""
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)

    import requests

    from tests import processes
    from tests.zoomsim_process import run_zoomsim

    workdir = Path(os.environ["DATA_DIR"])
    print(f"panel fan-out, one meeting, panel counts {args.panels}, {args.web} web process(es)   [{load()}]",
          flush=True)
    with run_zoomsim(workdir / "zoomsim", retry_scale=0.001) as sim:
        env = dict(os.environ, ZOOM_OAUTH_URL=sim.http_url, ZOOM_API_URL=f"{sim.http_url}/v2", PYTHONUNBUFFERED="1")
        os.environ.update(ZOOM_OAUTH_URL=sim.http_url, ZOOM_API_URL=f"{sim.http_url}/v2")
        for i in range(args.web):
            (workdir / f"web{i}").mkdir()  # each daphne's own log
        webs = [processes.start_daphne(env, workdir / f"web{i}") for i in range(args.web)]
        web = webs[0]  # Zoom's webhooks and the OAuth callback go to one of them
        worker = processes.start_worker(env, workdir, "bench-worker", concurrency=2)
        try:
            app, uuid = setup_meeting(sim, web, requests)
            ctx = {"app": app, "uuid": uuid, "webs": webs, "wait_stopped": wait_stopped,
                   "ws_urls": [w.url.replace("http", "ws") + "/ws/panel/?token=" for w in webs],
                   "home_urls": [f"{w.url}/panel/{app.client_id}/" for w in webs]}
            return {n: asyncio.run(one_size(args, n, ctx)) for n in args.panels}
        finally:
            worker.stop()
            for w in webs:
                w.stop()


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("panels", type=int, nargs="*", default=[200, 500, 1000])
    parser.add_argument("--rounds", type=int, default=10, help="request/approve/stop rounds counted per N")
    parser.add_argument("--warmup", type=int, default=1, help="rounds run first and not counted")
    parser.add_argument("--late", type=int, default=50, help="panels opened one at a time after the burst")
    parser.add_argument("--at-once", type=int, default=50, help="panels connecting at the same time")
    parser.add_argument("--web", type=int, default=1, help="daphne processes the panels are spread over")
    parser.add_argument("--profile", help="record the web process with py-spy into this file "
                                          "(.svg, .json, or .txt for collapsed stacks)")
    args = parser.parse_args()
    if args.profile and not (Path(sys.executable).parent / "py-spy").exists():
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "py-spy"], check=True)

    database("create")
    try:
        results = run_stack(args)
    except BaseException:
        print(f"the processes' logs are in {os.environ['DATA_DIR']}", file=sys.stderr)
        raise
    else:
        shutil.rmtree(os.environ["DATA_DIR"], ignore_errors=True)
    finally:  # a failed run leaves no database behind either
        from django.db import connections

        connections.close_all()
        database("drop")
    if any(results.get(1000, {}).values()):
        worst = max(percentile(v, 99) for v in results[1000].values() if v)
        print(f"goal: p99 action → last panel under 1 s at 1,000 panels → {'met' if worst < 1000 else 'NOT met'} "
              f"(worst kind {worst:.0f} ms)   [{load()}]")


if __name__ == "__main__":
    main()
