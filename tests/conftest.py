"""Shared fixtures: the migrated test database and the real processes (daphne, workers, beat, simulator).

The run's own Redis namespace and database name are set by tests/environment.py.
"""

import os

import pytest

from tests import processes


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
def test_database(django_db_setup, django_db_blocker):
    """The migrated test database for our subprocesses, even when no selected test carries a django_db mark
    (pytest-django then creates none). Tests against real workers use no mark on purpose: a transactional
    test flushes every table while the workers are still writing."""
    from django.conf import settings
    from django.db import connection
    from django.test.utils import setup_databases, teardown_databases

    created = None
    if connection.settings_dict["NAME"] != settings.DATABASES["default"]["TEST"]["NAME"]:
        with django_db_blocker.unblock():
            created = setup_databases(verbosity=0, interactive=False, aliases={"default"})
    yield
    if created:
        with django_db_blocker.unblock():
            teardown_databases(created, verbosity=0)


@pytest.fixture(scope="session")
def stack_env(test_database, zoomsim):
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
