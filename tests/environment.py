"""Test-run environment, loaded as a pytest plugin (`-p tests.environment`) before Django reads its settings.

Every test run gets its own Redis namespace and test database name, so two runs on one
machine (or a developer's dev stack) never see each other's keys, queues or rows.
"""

import os

RUN_ID = f"t{os.getpid()}"
os.environ.setdefault("REDIS_NAMESPACE", RUN_ID)
os.environ.setdefault("DATABASE_TEST_NAME", f"test_zoomapp_{RUN_ID}")
os.environ.setdefault("DATA_DIR", f"/tmp/zoomapp-{RUN_ID}")
os.makedirs(os.environ["DATA_DIR"], exist_ok=True)
os.environ.setdefault("DEBUG", "true")
# Names the test process in pg_stat_activity (tests/processes.py names the ones it starts).
os.environ.setdefault("PGAPPNAME", f"test-pytest-{RUN_ID}")
# Fast failover in tests; production defaults are in settings.
os.environ.setdefault("RTMS_LEASE_TTL", "2")
os.environ.setdefault("RTMS_RECONCILE_INTERVAL", "1")
# The simulator's RTMS servers: ws://127.0.0.1 (production: wss:// to *.zoom.us only).
os.environ.setdefault("RTMS_ALLOWED_HOSTS", "127.0.0.1,localhost")
os.environ.setdefault("RTMS_ALLOW_INSECURE_WS", "true")
