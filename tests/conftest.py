"""Shared fixtures: a namespaced Redis, a migrated test database, and the real processes.

Every test run gets its own Redis namespace and test database name, so two runs on one
machine (or a developer's dev stack) never see each other's keys, queues or rows.
"""

import os

import pytest

RUN_ID = f"t{os.getpid()}"
os.environ.setdefault("REDIS_NAMESPACE", RUN_ID)
os.environ.setdefault("DATABASE_TEST_NAME", f"test_zoomapp_{RUN_ID}")
os.environ.setdefault("DATA_DIR", f"/tmp/zoomapp-{RUN_ID}")
os.environ.setdefault("DEBUG", "true")
# Fast failover in tests; production defaults are in settings.
os.environ.setdefault("RTMS_LEASE_TTL", "2")
os.environ.setdefault("RTMS_RECONCILE_INTERVAL", "1")

from tests import processes  # noqa: E402


@pytest.fixture(scope="session")
def logs_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("process-logs")


@pytest.fixture(scope="session")
def zoomsim(tmp_path_factory):
    """The Zoom simulator as a subprocess on free ports (see zoomsim/README.md)."""
    from tests.zoomsim_process import run_zoomsim

    with run_zoomsim(tmp_path_factory.mktemp("zoomsim")) as sim:
        yield sim


@pytest.fixture(scope="session")
def stack_env(django_db_setup, django_db_blocker, zoomsim):
    """Environment for our own subprocesses: the test database, this run's Redis namespace, the simulator."""
    from django.conf import settings

    db = settings.DATABASES["default"]
    env = dict(os.environ)
    if db["ENGINE"].endswith("sqlite3"):
        env["DATABASE_URL"] = f"sqlite:///{db['NAME']}"
    else:
        env["DATABASE_URL"] = f"postgres://{db['USER']}:{db['PASSWORD']}@{db['HOST']}:{db['PORT']}/{db['NAME']}"
    env.pop("DATABASE_TEST_NAME", None)
    env["ZOOM_OAUTH_URL"] = zoomsim.http_url
    env["ZOOM_API_URL"] = f"{zoomsim.http_url}/v2"
    env["PYTHONUNBUFFERED"] = "1"
    return env


@pytest.fixture(scope="session")
def daphne(stack_env, logs_dir):
    proc = processes.start_daphne(stack_env, logs_dir)
    yield proc
    proc.stop()


@pytest.fixture(scope="session")
def worker(stack_env, logs_dir):
    proc = processes.start_worker(stack_env, logs_dir, "worker1")
    yield proc
    proc.stop()


@pytest.fixture(scope="session")
def beat(stack_env, logs_dir, worker):
    proc = processes.start_beat(stack_env, logs_dir)
    yield proc
    proc.stop()
