"""State-change burst benchmark: N streams recorded "active" at once, as a worker's session host does at its start
or after a takeover (rtms.host._apply_in_order on N queued change_state calls, on the state thread's one
connection), with the product's receivers: each stream has its meeting and a share the takeover left
"interrupted", which the announcement turns "sharing" and pushes to the panels.

    .venv/bin/python bench/state_burst.py                  # N = 1000
    .venv/bin/python bench/state_burst.py --streams 500 --profile   # and the 40 costliest calls (cProfile)

To compare with older code, run this file from the old checkout (`git worktree add /tmp/old <rev>`).
Prints the wall time, the ms per stream and the process's CPU per stream, with the load average.
Needs PostgreSQL (BENCH_POSTGRES's server, 127.0.0.1:5432 by default; a scratch database is created and
dropped) and Redis.
"""

import argparse
import cProfile
import pstats
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.deployed_env import own_database  # noqa: E402 - after sys.path


def _burst(n, profile):
    from rtms import services
    from rtms.host import _apply_in_order
    from rtms.models import StreamSession
    from zoomapp.consent.models import Meeting, Share
    from zoomapp.marketplace.models import ZoomApp

    app = ZoomApp.objects.create(name="Bench", client_id="benchStateBurst", client_secret="s",
                                 webhook_secret_token="t")
    ids = [f"{i:032x}" for i in range(n)]
    meetings = Meeting.objects.bulk_create([Meeting(app=app, uuid=f"bench{i:05d}==", host_user_id="host",
                                                    account_id="account") for i in range(n)])
    StreamSession.objects.bulk_create([StreamSession(rtms_stream_id=stream_id, meeting_uuid=meeting.uuid,
                                                     client_id=app.client_id, state="interrupted", operator_id="user")
                                       for stream_id, meeting in zip(ids, meetings)])
    Share.objects.bulk_create([Share(meeting=meeting, app=app, user_id="user", status="interrupted",
                                     rtms_stream_id=stream_id) for stream_id, meeting in zip(ids, meetings)])
    changes = [(services.change_state, (stream_id, "active"), {"reason": "connected", "worker": "bench"})
               for stream_id in ids]
    profiler = cProfile.Profile() if profile else None
    load = " ".join(Path("/proc/loadavg").read_text().split()[:3])
    wall0, cpu0 = time.monotonic(), time.process_time()
    if profiler:
        profiler.enable()
    done, error = _apply_in_order(changes)
    if profiler:
        profiler.disable()
    wall, cpu = time.monotonic() - wall0, time.process_time() - cpu0
    assert (done, error) == (n, None), (done, error)
    assert Share.objects.filter(status="sharing").count() == n, "not every share shows sharing"
    print(f"state_burst ({ROOT}): {n} streams active in {wall:.2f} s, {wall / n * 1000:.1f} ms per stream, "
          f"CPU {cpu / n * 1000:.1f} ms per stream; load average {load}")
    if profiler:
        pstats.Stats(profiler, stream=sys.stdout).sort_stats("cumulative").print_stats(40)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--streams", type=int, default=1000)
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()

    with own_database("state_burst"):
        _burst(args.streams, args.profile)


if __name__ == "__main__":
    main()
