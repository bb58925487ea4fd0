"""Fleet benchmark: N streams held by three worker nodes (Celery workers with their own host names and spool
directories, one PostgreSQL, one Redis, one media storage), then one node killed with SIGKILL (it comes back, as
a machine does) and another drained with SIGTERM (a deploy). The harness is tests/fleet.py, the one the fleet test
uses; the load is bench/rtms_receive.py's RTMS server.

    .venv/bin/python bench/fleet.py                            # 300 streams, capacity 150 per process, local media
    .venv/bin/python bench/fleet.py --streams 600 --capacity 300 --s3   # media in moto's S3 server on 127.0.0.1

It prints, for each signal: the takeover time distribution (p50/p99/max from the signal to the lease won by a
process of another node, and the audio no holder stored meanwhile), the streams per node before and after, the
most streams one process held (against its capacity), and the machine's load average.
Needs PostgreSQL (DATABASE_URL or the local server; a scratch database is created and dropped) and Redis.
"""

import argparse
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

from bench.streams_hold import _drop_database, _scratch_database  # noqa: E402


def _line(what, seconds):
    seconds = [s for s in seconds if s is not None]
    from tests.fleet import percentile

    if not seconds:
        return f"{what}: none"
    return (f"{what}: p50 {percentile(seconds, 0.5):.2f} s, p99 {percentile(seconds, 0.99):.2f} s, "
            f"max {max(seconds):.2f} s")


def _start_s3(workdir, env):
    import boto3
    import requests

    from tests.processes import free_port, wait_for
    from tests.s3_server import CREDENTIALS

    port = free_port()
    server = subprocess.Popen([str(Path(sys.executable).parent / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    wait_for(lambda: requests.get(f"{url}/moto-api/", timeout=1).ok, 30, "moto's S3 server")
    os.environ.update(CREDENTIALS)
    boto3.client("s3", endpoint_url=url, region_name="us-east-1").create_bucket(Bucket="fleet-bench")
    env.update(CREDENTIALS, MEDIA_STORAGE="s3", MEDIA_S3_BUCKET="fleet-bench", MEDIA_S3_ENDPOINT_URL=url)
    return server


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--streams", type=int, default=300)
    parser.add_argument("--capacity", type=int, default=150, help="RTMS_STREAMS_PER_PROCESS of each node")
    parser.add_argument("--settle", type=float, default=6.0, help="seconds between the steps")
    parser.add_argument("--s3", action="store_true", help="media in moto's S3 server instead of the filesystem")
    args = parser.parse_args()

    base_url = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/test")
    admin, name, url = _scratch_database(base_url)
    workdir = Path(tempfile.mkdtemp(prefix="fleet-"))
    env = dict(os.environ, DATABASE_URL=url, DJANGO_SETTINGS_MODULE="zoomapp.settings", DATA_DIR=str(workdir),
               DEBUG="0", SECRET_KEY="bench-not-secret", FIELD_ENCRYPTION_KEY="bench-fields-not-secret",
               SITE_URL="http://127.0.0.1:8000",
               REDIS_NAMESPACE=f"benchfleet{os.getpid()}", LOG_LEVEL=os.environ.get("BENCH_LOG_LEVEL", "INFO"))
    s3 = _start_s3(workdir, env) if args.s3 else None
    fleet = None
    try:
        subprocess.run([sys.executable, str(ROOT / "manage.py"), "migrate", "-v", "0"], env=env, cwd=ROOT, check=True)
        os.environ.update({k: env[k] for k in ("DATABASE_URL", "DJANGO_SETTINGS_MODULE", "DEBUG", "SECRET_KEY",
                                               "FIELD_ENCRYPTION_KEY", "REDIS_NAMESPACE")})
        import django

        django.setup()
        from tests.fleet import Fleet, audio_gap, load_average

        fleet = Fleet(env, workdir, args.streams, args.capacity)
        print(f"fleet: {args.streams} streams, 3 nodes, capacity {args.capacity} per process, media "
              f"{'in S3 (moto)' if args.s3 else 'on the filesystem'}; load average {load_average()}")
        fleet.start()
        started = time.monotonic()
        fleet.wait_all_held(120)
        print(f"fleet: all held {time.monotonic() - started:.1f} s after the nodes started; per node "
              f"{dict(fleet.per_node())}")
        time.sleep(args.settle)
        events = []
        for victim, sig in (("node-a", signal.SIGKILL), ("node-b", signal.SIGTERM)):
            before = dict(fleet.per_node())
            takeover, peak = fleet.takeover(victim, sig)
            events.append((victim, sig, fleet.victim_workers, takeover))
            print(f"fleet: {signal.Signals(sig).name} {victim}: per node before {before}, after "
                  f"{dict(fleet.per_node())}; most held by one process {peak} (capacity {args.capacity})")
            print("  " + _line("lease won by another node", takeover.values()))
            if sig == signal.SIGKILL:
                fleet.start_node(victim)
            time.sleep(args.settle)
        print(f"fleet: load average {load_average()}")

        from rtms.models import StreamSession

        StreamSession.objects.update(desired_state="stopped")
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not _all_uploaded(fleet):
            time.sleep(1)
        segments = fleet.audio_segments()
        for victim, sig, workers, takeover in events:
            gaps = [audio_gap(segments[stream_id], workers) for stream_id in takeover]
            print(f"fleet: {signal.Signals(sig).name} {victim}: "
                  + _line("audio not stored at the takeover (sent while nobody held the stream)", gaps))
    finally:
        if fleet is not None:
            fleet.stop()
        if s3 is not None:
            s3.terminate()
        _drop_database(admin, name)
        shutil.rmtree(workdir, ignore_errors=True)


def _all_uploaded(fleet):
    from rtms.models import StreamSession

    segments = fleet.audio_segments()
    return (StreamSession.objects.exclude(state="stopped").count() == 0
            and all(seg and all(s.stored for s in seg) for seg in segments.values()))


if __name__ == "__main__":
    main()
