"""Garbage collection pauses in a process that loaded the web app, with and without its start-up objects frozen.

    .venv/bin/python bench/gc_pauses.py            # 5 full collections each way

A full collection stops every thread of the process: in daphne every panel socket, webhook and approval waits it
out. zoomapp/asgi.py freezes what the app loaded (gc.freeze()) so that collections skip it. This loads the same
app (zoomapp.asgi, which freezes), unfreezes, and times full collections of everything, then frozen again, side by
side, with the machine's load average. No database or Redis is needed: nothing is served.
"""

import argparse
import gc
import os
import secrets
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def full_collections(count):
    pauses = []
    for _ in range(count):
        started = time.perf_counter()
        gc.collect()
        pauses.append((time.perf_counter() - started) * 1000)
    return pauses


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--collections", type=int, default=5)
    args = parser.parse_args()
    os.environ.update({"DEBUG": "false", "SECRET_KEY": secrets.token_urlsafe(32),
                       "FIELD_ENCRYPTION_KEY": secrets.token_urlsafe(32), "DJANGO_SETTINGS_MODULE": "zoomapp.settings",
                       "LOG_LEVEL": "WARNING", "SITE_URL": "http://127.0.0.1:8000", "ZOOM_ALLOW_INSECURE_HTTP": "true"})
    import zoomapp.asgi  # noqa: F401 - the web process's start-up, which freezes what it loaded

    frozen_at_start = gc.get_freeze_count()
    gc.unfreeze()
    loaded = len(gc.get_objects())
    unfrozen = full_collections(args.collections)
    gc.freeze()
    frozen = full_collections(args.collections)
    load = "/".join(f"{value:.2f}" for value in os.getloadavg())
    print(f"web app loaded (zoomapp.asgi): {loaded:,} objects tracked by the collector, {frozen_at_start:,} of them "
          f"frozen at start")
    for name, pauses in (("not frozen", unfrozen), ("frozen (as zoomapp/asgi.py does)", frozen)):
        print(f"  full collection, {name:<34} median {statistics.median(pauses):7.2f} ms   "
              f"max {max(pauses):7.2f} ms   ({len(pauses)} collections)")
    print(f"load average {load} on {os.cpu_count()} cores")


if __name__ == "__main__":
    main()
