"""Test-run environment, loaded as a pytest plugin (`-p tests.environment`) before Django reads its settings.

Every test run gets its own Redis namespace and test database name, so two runs on one
machine (or a developer's dev stack) never see each other's keys, queues or rows. Under `pytest -n` (bin/test
runs two workers) each worker is a run of its own: its Redis namespace and data directory carry the worker's id
(gw0, gw1, ...), as its test database's name does (pytest-django), and it starts its own daphne, Celery worker,
beat and simulator.
"""

import os

RUN_ID = f"t{os.getpid()}"
os.environ.setdefault("REDIS_NAMESPACE", RUN_ID)
os.environ.setdefault("DATABASE_TEST_NAME", f"test_zoomapp_{RUN_ID}")
os.environ.setdefault("DATA_DIR", f"/tmp/zoomapp-{RUN_ID}")
# Names the test process in pg_stat_activity (tests/processes.py names the ones it starts).
os.environ.setdefault("PGAPPNAME", f"test-pytest-{RUN_ID}")
XDIST_WORKER = os.environ.get("PYTEST_XDIST_WORKER")  # set before a worker loads its plugins
if XDIST_WORKER:
    for name in ("REDIS_NAMESPACE", "DATA_DIR", "PGAPPNAME"):
        os.environ[name] = f"{os.environ[name]}-{XDIST_WORKER}"
os.makedirs(os.environ["DATA_DIR"], exist_ok=True)
os.environ.setdefault("DEBUG", "true")
# Fast failover in tests; production defaults are in settings.
os.environ.setdefault("RTMS_LEASE_TTL", "2")
os.environ.setdefault("RTMS_RECONCILE_INTERVAL", "1")
# The simulator's RTMS servers: ws://127.0.0.1 (production: wss:// to *.zoom.us only).
os.environ.setdefault("RTMS_ALLOWED_HOSTS", "127.0.0.1,localhost")
os.environ.setdefault("RTMS_ALLOW_INSECURE_WS", "true")
# Zoom's endpoints default to Zoom itself: a test that calls them without pointing them at its simulator gets a
# refused connection here, never traffic to the Internet.
os.environ.setdefault("ZOOM_OAUTH_URL", "http://127.0.0.1:9")
os.environ.setdefault("ZOOM_API_URL", "http://127.0.0.1:9/v2")
