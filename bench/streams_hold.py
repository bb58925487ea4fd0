"""End-to-end hold benchmark: N real-time streams (20 ms L16 audio + a transcript line every 5 s per stream) held by
ONE session host (rtms.host, the code a Celery worker process runs) and stored through the real sinks: WAV files
under a temporary MEDIA_ROOT, transcript rows in PostgreSQL, leases in Redis.

    .venv/bin/python bench/streams_hold.py                              # N = 200, 500, 1000; 60 s measured each
    .venv/bin/python bench/streams_hold.py --streams 200 --duration 20 --warmup 5
    .venv/bin/python bench/streams_hold.py --capacity                   # N = 400, 800, … then bisected: capacity

The load server is bench/rtms_receive.py's built-in RTMS server (the client engineer's raw receive benchmark),
pinned to core 0; the holder runs pinned to core 1. In the same run, Zoom's official SDK (`rtms` 1.1.0, one
EventLoop thread) receives the same load through `rtms_receive.py _sdk` (receive + buffer only), so the ratio
printed is our full hold-and-store cost against the SDK's receive cost.

Per N it prints: CPU seconds per stream-minute, cores used, RSS per stream, audio frames lost (gaps in the stored
timeline), p50/p99 lag from the server's send time to storage (file write / row commit), and the SDK ratio. With
--capacity it steps N up (400, 800, 1200, 1600, and on by 400 while it holds) and prints, for ours and for the SDK
on the same load, whether each held every stream in real time (all connected, no frame lost, p99 lag <=
--max-p99-ms, 250 by default); after an implementation's first miss, the gap between the largest N it held and the
smallest it missed is halved until it is --resolution streams (50) or less. Then the capacity of each (the largest N
held), their ratio and the memory per stream there (RSS growth over N, the process's fixed share included), and what
one more stream cost between the two largest N held, with the load average on each line. Our holder's lines also
show its tick and the cores each of its threads used (the loop, the file thread, the database threads); --profile
FILE records it with py-spy over each measured window.
Needs PostgreSQL (DATABASE_URL or the local server; a scratch database is created and dropped) and Redis.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
RECEIVE_BENCH = ROOT / "bench" / "rtms_receive.py"
CLIENT_ID, CLIENT_SECRET = "benchClientId", "benchClientSecret"  # what rtms_receive.py's server checks


def _rss_bytes():
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _thread_cpu_seconds():
    """{thread name: (CPU seconds, of which in the kernel)} of this process's threads (Linux: /proc/self/task),
    to show where the core goes: the loop, the file thread, the database threads; and how much of it is system
    calls."""
    import threading

    ticks = os.sysconf("SC_CLK_TCK")
    names = {thread.native_id: thread.name for thread in threading.enumerate()}
    threads = {}
    for task in Path("/proc/self/task").iterdir():
        # A pool's threads under one name (rtms-uploads_0 … _7 → rtms-uploads); native threads by their id.
        name = names.get(int(task.name), f"native-{task.name}").rsplit("_", 1)[0]
        try:
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:  # the thread ended meanwhile
            continue
        spent, kernel = threads.get(name, (0.0, 0.0))
        threads[name] = (spent + (int(fields[11]) + int(fields[12])) / ticks, kernel + int(fields[12]) / ticks)
    return threads


def _cpu_seconds():
    times = os.times()
    return times.user + times.system


# ================================================================================================================
# The holder (`streams_hold.py _hold`): one process, one session host, N streams


def _hold(args):
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "zoomapp.settings")
    django.setup()
    from rtms import leases, metrics
    from rtms.host import start_host
    from rtms.models import StreamSession, StreamState
    from zoomapp.marketplace.models import ZoomApp

    streams = json.loads(Path(args.ready_file).read_text())["streams"]
    ZoomApp.objects.get_or_create(client_id=CLIENT_ID, defaults={
        "name": "Bench", "client_secret": CLIENT_SECRET, "webhook_secret_token": "bench"})
    StreamSession.objects.bulk_create([StreamSession(
        rtms_stream_id=s["rtms_stream_id"], meeting_uuid=s["meeting_uuid"], client_id=CLIENT_ID,
        server_urls=s["server_urls"]) for s in streams],
        # Each N reuses the stream ids of the previous N: they must point at this N's load server, not the last.
        update_conflicts=True, unique_fields=["rtms_stream_id"], update_fields=["server_urls", "meeting_uuid"])
    rows = list(StreamSession.objects.filter(rtms_stream_id__in=[s["rtms_stream_id"] for s in streams]))

    rss_before = _rss_bytes()
    host = start_host("bench-holder")
    for stream in rows:
        value = leases.new_lease_value(host.worker_id)
        assert leases.try_acquire(stream.rtms_stream_id, value), "lease already held: stale bench namespace?"
        host.hand([(stream, value)])

    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        ready = sum(1 for held in list(host.streams.values()) if held.client and held.client.phase.value == "ready")
        if ready == len(rows):
            break
        time.sleep(0.2)
    # Each stream's first connection queues its state change (with the product's receivers): a one-off burst
    # of a thousand, not the steady load measured here. Wait (bounded) until every stream shows as active.
    states_backlog = host._state_queue.qsize()
    drain_started = time.monotonic()
    ids = [s.rtms_stream_id for s in rows]
    while (StreamSession.objects.filter(rtms_stream_id__in=ids, state=StreamState.ACTIVE).count() < len(ids)
           and time.monotonic() < drain_started + 120):
        time.sleep(0.2)
    states_drain_s = time.monotonic() - drain_started
    time.sleep(args.warmup)

    metrics.store_lag.reset()
    gc_pauses = _watch_gc()
    spans_before = _audio_spans(host)
    profiler = _profile_self(args)
    cpu0, wall0, threads0 = _cpu_seconds(), time.monotonic(), _thread_cpu_seconds()
    write_every = []  # the pacer's media write period in ticks, sampled: how much of the window it batched
    while time.monotonic() < wall0 + args.duration:
        write_every.append(host._pacer.write_every)
        time.sleep(0.1)
    cpu, wall = _cpu_seconds() - cpu0, time.monotonic() - wall0
    threads = {}
    for name, (spent, kernel) in _thread_cpu_seconds().items():
        spent0, kernel0 = threads0.get(name, (0.0, 0.0))
        threads[name] = ((spent - spent0) / wall, (kernel - kernel0) / wall)
    if profiler is not None:
        profiler.wait(30)
    rss = _rss_bytes()
    spans_after = _audio_spans(host)

    # Frames lost = holes in each stream's stored timeline over the measured window (the server stamps every
    # frame on a strict 20 ms grid).
    lost = expected = 0
    for stream_id, (_first, last, frames) in spans_after.items():
        before = spans_before.get(stream_id)
        if before is None:
            continue
        span_frames = (last - before[1]) // 20
        expected += span_frames
        lost += max(0, span_frames - (frames - before[2]))
    n = len(rows)
    counters = {}
    for snapshot in host._counter_snapshots():
        for name, value in snapshot.items():
            counters[name] = counters.get(name, 0) + value
    result = {
        "streams": n, "ready": ready, "wall_s": wall, "cpu_s": cpu, "cores": cpu / wall,
        "cpu_per_stream_minute": cpu / (n * wall / 60), "rss_per_stream_kib": (rss - rss_before) / n / 1024,
        "audio_frames_expected": expected, "audio_frames_lost": lost,
        "lag_p50_ms": metrics.store_lag.percentile(0.50), "lag_p99_ms": metrics.store_lag.percentile(0.99),
        "reconnects": counters.get("reconnects", 0), "malformed": counters.get("malformed", 0),
        "pending_row_batches": len(host._pending_rows), "states_backlog_when_ready": states_backlog,
        "states_drain_s": states_drain_s,
        "states_pending_at_end": host._state_queue.qsize(),
        "gc_collections": len(gc_pauses), "gc_max_ms": max(gc_pauses, default=0) * 1000,
        "gc_total_ms": sum(gc_pauses) * 1000,
        # The pacer's choice at the end (rtms/client/pacing.py): its tick and the load it measured.
        "tick_ms": host._pacer.period * 1000, "process_load": host._pacer.load,
        "written_every_other_tick": sum(1 for every in write_every if every > 1) / max(1, len(write_every)),
        "cores_by_thread": {name: round(share, 3) for name, (share, _) in
                            sorted(threads.items(), key=lambda t: -t[1][0]) if share >= 0.005},
        "kernel_cores_by_thread": {name: round(kernel, 3) for name, (share, kernel) in threads.items()
                                   if share >= 0.005},
    }
    Path(args.result_file).write_text(json.dumps(result))
    os._exit(0)  # the streams die with the process; the scratch database is dropped by the parent


def _profile_self(args):
    """py-spy recording this holder over the measured window (--profile; its own CPU runs on another core)."""
    if not args.profile:
        return None
    n = len(json.loads(Path(args.ready_file).read_text())["streams"])
    out = Path(args.profile).with_name(f"{Path(args.profile).stem}-{n}{Path(args.profile).suffix}")
    command = [str(Path(sys.executable).parent / "py-spy"), "record", "--pid", str(os.getpid()), "--threads",
               "--duration", str(int(args.duration)), "--rate", "200", "--output", str(out), "--nonblocking"]
    if out.suffix == ".txt":
        command += ["--format", "raw"]
    return subprocess.Popen(_pinned(0, command), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _watch_gc():
    """Durations of the interpreter's garbage collections from now on: each one stops every thread."""
    import gc

    pauses, started = [], []

    def on_gc(phase, info):
        if phase == "start":
            started[:] = [time.perf_counter()]
        elif started:
            pauses.append(time.perf_counter() - started[0])

    gc.callbacks.append(on_gc)
    return pauses


def _audio_spans(host):
    """{stream_id: (first_ts, last_ts, frames)} of mixed audio written to files so far: each stream's segments not
    yet indexed as stored (read on the file thread that owns them), then those the media index in the database
    says are stored (a segment leaves the holder's memory once that index is committed, so read after)."""
    from rtms.models import MediaFile

    def read():
        return {stream_id: {row["path"]: row for row in held.files.index_rows()}
                for stream_id, held in list(host.streams.items())}
    segments = host._file_pool.submit(read).result()
    for row in MediaFile.objects.filter(stream__rtms_stream_id__in=list(segments), stored=True).values(
            "stream__rtms_stream_id", "path", "kind", "first_timestamp", "last_timestamp", "frames"):
        segments[row["stream__rtms_stream_id"]].setdefault(row["path"], row)
    spans = {}
    for stream_id, rows in segments.items():
        rows = [row for row in rows.values()
                if row["kind"] == MediaFile.Kind.AUDIO_MIXED and row["first_timestamp"] is not None]
        if rows:
            spans[stream_id] = (min(row["first_timestamp"] for row in rows),
                                max(row["last_timestamp"] for row in rows), sum(row["frames"] for row in rows))
    return spans


CAPACITY_STEPS = "400,800,1200,1600"
CAPACITY_LIMIT = 4000  # streams: four sockets each on this one machine (both ends), within the open-file limit

# ================================================================================================================
# The parent: scratch database, load server, holder, SDK, figures


def _pinned(core, argv):
    return ["taskset", "-c", str(core), *argv] if core is not None and shutil.which("taskset") else argv


def _scratch_database(base_url):
    import psycopg

    name = f"bench_streams_{os.getpid()}"
    admin = base_url.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name}")
        conn.execute(f"CREATE DATABASE {name}")
    return admin, name, base_url.rsplit("/", 1)[0] + f"/{name}"


def _drop_database(admin, name):
    import psycopg

    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def _side(argv, result_file, args, failed, **popen):
    """One side's run and its result; a side that cannot bring its streams up (past the capacity) is killed after
    a few minutes and counted as not holding them, so the steps go on."""
    timeout = args.duration + args.warmup + 240
    try:
        subprocess.run(argv, timeout=timeout, check=False, **popen)
    except subprocess.TimeoutExpired:
        return {"error": f"did not finish in {timeout:.0f} s"}
    return json.loads(result_file.read_text()) if result_file.exists() else {"error": failed}


def _run(args, n, env, workdir, skip_ours=False, skip_sdk=False):
    """One load server of `n` streams; our holder on it, then Zoom's SDK on the same server (unless skipped)."""
    server_core, holder_core = (0, 1) if (os.cpu_count() or 1) > 1 else (None, None)
    ready_file = workdir / f"server-{n}.json"
    server = subprocess.Popen(_pinned(server_core, [sys.executable, str(RECEIVE_BENCH), "_serve", "--streams", str(n),
                                                    "--ready-file", str(ready_file)]), stderr=subprocess.DEVNULL)
    results = {}
    try:
        deadline = time.monotonic() + 30
        while not ready_file.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        if not skip_ours:
            # A spool of its own: each holder ends with os._exit, and the next one would find the last one's spool
            # abandoned and upload it while being measured (0.29 core at 1,000 streams: rtms/spool.py).
            hold_env = dict(env, REDIS_NAMESPACE=f"bench{os.getpid()}n{n}", MEDIA_ROOT=str(workdir / f"media-{n}"),
                            RTMS_SPOOL_DIR=str(workdir / f"spool-{n}"),
                            LOG_LEVEL=os.environ.get("BENCH_LOG_LEVEL", "WARNING"))
            result_file = workdir / f"hold-{n}.json"
            results["ours"] = _side(_pinned(holder_core, [
                sys.executable, __file__, "_hold", "--ready-file", str(ready_file), "--result-file", str(result_file),
                "--duration", str(args.duration), "--warmup", str(args.warmup),
                *(["--profile", str(Path(args.profile).resolve())] if args.profile else [])]),
                result_file, args, "no result", env=hold_env)
        if not skip_sdk:
            sdk_file = workdir / f"sdk-{n}.json"
            results["sdk"] = _side(_pinned(holder_core, [
                sys.executable, str(RECEIVE_BENCH), "_sdk", "--streams", str(n), "--ready-file", str(ready_file),
                "--result-file", str(sdk_file), "--duration", str(args.duration), "--warmup", str(args.warmup)]),
                sdk_file, args, "SDK run failed", stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=workdir)
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(10)
        except subprocess.TimeoutExpired:
            server.kill()
    server_stats = Path(str(ready_file) + ".stats")
    if server_stats.exists():  # the server's own lateness is part of the lag it stamps
        results["server"] = json.loads(server_stats.read_text())
    return results


def _load_average():
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def _print_run(n, results):
    ours, sdk = results.get("ours", {}), results.get("sdk")
    if "error" in ours:
        print(f"{n:>5} ours  {ours['error']}")
        return
    ratio = (f"{ours['cpu_per_stream_minute'] / sdk['cpu_per_stream_minute']:.2f}x"
             if sdk and "error" not in sdk and sdk.get("cpu_per_stream_minute") else "n/a")
    print(f"{n:>5} ours  {ours['cpu_per_stream_minute']:>16.4f} {ours['cores']:>6.2f} "
          f"{ours['rss_per_stream_kib']:>15.1f} {ours['audio_frames_lost']:>6} "
          f"{ours['audio_frames_expected']:>10} "
          f"{ours['lag_p50_ms']:>10} {ours['lag_p99_ms']:>7} {ratio:>7}")
    print(f"{'':>5} ours  reconnects {ours['reconnects']}, malformed {ours['malformed']}, row batches pending "
          f"{ours['pending_row_batches']}, state changes queued when all were ready "
          f"{ours['states_backlog_when_ready']} (all streams active in the database "
          f"{ours['states_drain_s']:.1f} s "
          f"after all were ready; pending at the end "
          f"{ours['states_pending_at_end']}); "
          f"load server late ticks {results.get('server', {}).get('late_ticks')}, "
          f"max {results.get('server', {}).get('max_late_ms')} ms; "
          f"{ours['gc_collections']} garbage collections, "
          f"longest {ours['gc_max_ms']:.0f} ms, {ours['gc_total_ms']:.0f} ms in all; "
          f"tick {ours['tick_ms']:.0f} ms at a measured load of {ours['process_load']:.2f} core, media written "
          f"every other tick {ours['written_every_other_tick']:.0%} of the time; cores by thread "
          f"{ours['cores_by_thread']} (in the kernel {ours['kernel_cores_by_thread']}); "
          f"load average {_load_average()}")
    if sdk and "error" not in sdk:
        print(f"{n:>5} sdk   {sdk['cpu_per_stream_minute']:>16.4f} {sdk['cores']:>6.2f} "
              f"{sdk['rss_per_stream_kib']:>15.1f} {sdk['lost_frames']:>6} {sdk['expected_frames']:>10} "
              f"{sdk['lag_p50_ms']:>10} {sdk['lag_p99_ms']:>7}   (receive only)")
    elif sdk:
        print(f"{n:>5} sdk   {sdk['error']}")


def _real_time(impl, n, result, bound_ms):
    """Whether `impl` held all `n` streams in real time: every one connected, no frame lost, p99 lag within the
    bound. Returns (held, the figures of its line)."""
    if not result or "error" in result:
        return False, {"why": (result or {}).get("error", "not run")}
    if impl == "ours":
        lost, expected, ready = result["audio_frames_lost"], result["audio_frames_expected"], result["ready"]
    else:
        lost, expected, ready = result["lost_frames"], result["expected_frames"], result["ready"]
    p99 = result["lag_p99_ms"]
    held = ready == n and lost == 0 and expected > 0 and p99 is not None and p99 <= bound_ms
    return held, {"cpu": result["cpu_per_stream_minute"], "cores": result["cores"],
                  "kib": result["rss_per_stream_kib"], "lost": lost, "ready": ready,
                  "p50": result["lag_p50_ms"], "p99": p99}


def _next_n(steps, held, missed, resolution):
    """The next N to try for one implementation: the coarse steps until its first miss, and on past the last one by
    the last step's size (a machine fast enough to hold every step still gets its capacity from one command, up
    to CAPACITY_LIMIT); then halving the gap between the largest N it held and the smallest it missed until the
    gap is `resolution` or less (rounded to it); None when its capacity is known."""
    if missed is None:
        coarse = next((n for n in steps if held is None or n > held), None)
        if coarse is not None or held is None:
            return coarse
        further = held + (steps[-1] - steps[-2] if len(steps) > 1 else steps[-1])
        return further if further <= CAPACITY_LIMIT else None
    low = held or 0
    if missed - low <= resolution:
        return None
    middle = (low + missed) // 2 // resolution * resolution
    return middle if low < middle < missed else None


def _marginal(rss_by_n):
    """What one more stream costs between the two largest N held: the per-stream figure also carries the
    process's fixed share (threads, pools, connections), which weighs more the fewer streams there are."""
    if len(rss_by_n) < 2:
        return ""
    small, large = sorted(rss_by_n)[-2:]
    return f"; one more stream {(rss_by_n[large] - rss_by_n[small]) / (large - small):.1f} KiB from {small} to {large}"


def _capacity(args, env, workdir):
    """Each implementation runs the coarse steps until it first misses the real-time bound (it would miss it at
    every larger N too), then its bound is bisected down to --resolution streams. Both run on the same load
    server whenever they need the same N. The capacity of each is the largest N it held."""
    bound = args.max_p99_ms
    print(f"capacity: the most streams one core holds with every stream connected, no audio frame lost and p99 "
          f"lag <= {bound:g} ms (ours: held and stored end to end; sdk: Zoom's SDK receiving only), to within "
          f"{args.resolution} streams")
    print(f"{'N':>5} {'impl':<5} {'held':<5} {'CPU s/stream-min':>16} {'cores':>6} {'KiB/stream':>10} "
          f"{'ready':>6} {'lost':>6} {'p50 ms':>7} {'p99 ms':>7}  load average")
    steps = [int(x) for x in args.streams.split(",")]
    impls = ("ours",) if args.no_sdk else ("ours", "sdk")
    held, missed, kib = dict.fromkeys(impls), dict.fromkeys(impls), {}
    held_rss = {impl: {} for impl in impls}  # N held -> KiB in all, for what one more stream costs
    while True:
        wanted = {impl: _next_n(steps, held[impl], missed[impl], args.resolution) for impl in impls}
        if all(n is None for n in wanted.values()):
            break
        n = min(n for n in wanted.values() if n is not None)
        results = _run(args, n, env, workdir, skip_ours=wanted.get("ours") != n, skip_sdk=wanted.get("sdk") != n)
        load = _load_average()
        for impl in impls:
            if impl not in results:
                continue
            ok, f = _real_time(impl, n, results[impl], bound)
            if "why" in f:
                print(f"{n:>5} {impl:<5} {'no':<5} {f['why']}  {load}")
            else:
                print(f"{n:>5} {impl:<5} {'yes' if ok else 'no':<5} {f['cpu']:>16.4f} {f['cores']:>6.2f} "
                      f"{f['kib']:>10.1f} {f['ready']:>6} {f['lost']:>6} {f['p50'] or 0:>7.0f} {f['p99'] or 0:>7.0f}"
                      f"  {load}")
            if impl == "ours" and "cores_by_thread" in results[impl]:
                server = results.get("server", {})
                print(f"{'':>5} ours  tick {results[impl]['tick_ms']:.0f} ms, media written every other tick "
                      f"{results[impl]['written_every_other_tick']:.0%} of the time, cores by thread "
                      f"{results[impl]['cores_by_thread']} (in the kernel "
                      f"{results[impl]['kernel_cores_by_thread']}); the load server's late ticks (in everyone's lag) "
                      f"{server.get('late_ticks')}, the latest {server.get('max_late_ms')} ms")
            if ok:
                held[impl], kib[impl] = n, f["kib"]
                held_rss[impl][n] = f["kib"] * n
            else:
                missed[impl] = n
        sys.stdout.flush()
    describe = {impl: f"{held[impl]} streams ({kib[impl]:.1f} KiB per stream{_marginal(held_rss[impl])})"
                if held[impl] else "none of the steps" for impl in impls}
    ratio = f"{held['ours'] / held['sdk']:.2f}x" if held["ours"] and held.get("sdk") else "n/a"
    print(f"capacity at p99 <= {bound:g} ms, nothing lost: ours {describe['ours']}, "
          f"sdk {describe.get('sdk', 'not run')}; ours / sdk {ratio}; load average {_load_average()}")
    for impl in impls:
        if held[impl] and missed[impl] is None:
            print(f"  ({impl} held every step; the benchmark stops at {CAPACITY_LIMIT} streams: its capacity is at "
                  f"least {held[impl]})")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("mode", nargs="?", default="bench", choices=["bench", "_hold"])
    parser.add_argument("--streams", help="N to run, comma separated (default 200,500,1000; with --capacity "
                        f"{CAPACITY_STEPS})")
    parser.add_argument("--duration", type=float, help="seconds measured per N (default 60; with --capacity 15)")
    parser.add_argument("--warmup", type=float, default=5.0)
    parser.add_argument("--no-sdk", action="store_true", help="skip Zoom's SDK side-by-side run")
    parser.add_argument("--capacity", action="store_true",
                        help="step N up until each of ours and the SDK misses the real-time bound; print both "
                             "capacities and their ratio")
    parser.add_argument("--max-p99-ms", type=float, default=250.0, help="the real-time bound of --capacity")
    parser.add_argument("--resolution", type=int, default=50,
                        help="--capacity bisects between the coarse steps down to this many streams")
    parser.add_argument("--profile", help="record our holder with py-spy over each measured window into this file "
                        "(the N added to its name; .txt: collapsed stacks, else a flame graph SVG)")
    parser.add_argument("--ready-file")
    parser.add_argument("--result-file")
    args = parser.parse_args()
    if args.streams is None:
        args.streams = CAPACITY_STEPS if args.capacity else "200,500,1000"
    if args.duration is None:
        args.duration = 15.0 if args.capacity else 60.0
    if args.profile and not (Path(sys.executable).parent / "py-spy").exists():
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "py-spy"], check=True)
    if args.mode == "_hold":
        _hold(args)
        return

    base_url = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/test")
    admin, name, url = _scratch_database(base_url)
    workdir = Path(tempfile.mkdtemp(prefix="streams-hold-"))
    # DEBUG off as in a deployed worker: Django's debug cursor formats, logs and keeps every query.
    env = dict(os.environ, DATABASE_URL=url, DJANGO_SETTINGS_MODULE="zoomapp.settings", DATA_DIR=str(workdir),
               DEBUG="0", SECRET_KEY="bench-not-secret", FIELD_ENCRYPTION_KEY="bench-fields-not-secret",
               SITE_URL="http://127.0.0.1:8000",
               # The load server is ws://127.0.0.1: outside production's outbound allow list.
               RTMS_ALLOWED_HOSTS="127.0.0.1", RTMS_ALLOW_INSECURE_WS="true")
    try:
        migrate = [sys.executable, str(ROOT / "manage.py"), "migrate", "-v", "0"]
        if subprocess.run(migrate, env=env, cwd=ROOT, capture_output=True).returncode != 0:
            print("streams_hold: full migrate failed; migrating what the holder and its signal receivers use")
            for app in ("marketplace", "rtms", "consent"):
                subprocess.run([*migrate, app], env=env, check=True, cwd=ROOT)
        load = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
        print(f"streams_hold: {args.duration:g} s measured per N after {args.warmup:g} s warm-up; machine: {load}")
        if args.capacity:
            _capacity(args, env, workdir)
            return
        print(f"{'N':>5} {'impl':<5} {'CPU s/stream-min':>16} {'cores':>6} {'RSS KiB/stream':>15} {'lost':>6} "
              f"{'of frames':>10} {'lag p50 ms':>10} {'p99 ms':>7} {'vs SDK':>7}")
        for n in [int(x) for x in args.streams.split(",")]:
            _print_run(n, _run(args, n, env, workdir, skip_sdk=args.no_sdk))
            sys.stdout.flush()
    finally:
        _drop_database(admin, name)
        shutil.rmtree(workdir, ignore_errors=True)

if __name__ == "__main__":
    main()
