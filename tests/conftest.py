"""Shared fixtures: the migrated test database, the real processes (daphne, workers, beat, simulator), an app, and
what the code pushes to panels.

The run's own Redis namespace and database name are set by tests/environment.py.
"""

import os
import threading
import time
import warnings

import pytest

from tests import processes

RUN_ZOOMSIM = pytest.StashKey()


@pytest.hookimpl(hookwrapper=True, tryfirst=True)
def pytest_runtest_teardown(item, nextitem):
    """Calls to Zoom still running on the consent pool finish before the test's database is flushed: a flush that
    races their writes deadlocks in PostgreSQL. After a test file's last test (and its fixtures), the apps it
    registered with the run's simulator are deleted there."""
    from zoomapp.consent import zoom_calls

    zoom_calls.drain()
    yield
    sim = item.config.stash.get(RUN_ZOOMSIM, None)
    if sim is not None and nextitem is not None and nextitem.module is not item.module:
        sim.delete_registered_apps()


def _flush_tried_again_after_a_lost_lock(fixture_teardown):
    """A transactional test's flush is one TRUNCATE of every table, whose locks PostgreSQL takes one table after
    another: a statement still in flight from daphne or a worker that locks two of those tables in the other order
    (an insert and its foreign key's check) deadlocks with it, and PostgreSQL may cancel the flush. The tests wait
    for our processes to settle first (tests/processes.py, streams_at_rest); a flush that still loses is tried
    again, with a warning naming the cause, so the next test starts on empty tables."""
    from django.core.management.base import CommandError
    from django.db import OperationalError

    def flush(self):
        for attempt in range(1, 4):
            try:
                return fixture_teardown(self)
            except CommandError as exc:
                if attempt == 3 or not isinstance(exc.__cause__, OperationalError):
                    raise
                warnings.warn(f"the flush lost a lock and is tried again: {exc.__cause__}", stacklevel=1)
                time.sleep(0.5 * attempt)

    return flush


def pytest_configure(config):
    from django.test import TransactionTestCase

    TransactionTestCase._fixture_teardown = _flush_tried_again_after_a_lost_lock(TransactionTestCase._fixture_teardown)


@pytest.fixture(scope="session")
def logs_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("process-logs")


@pytest.fixture(scope="session")
def zoomsim(tmp_path_factory, pytestconfig):
    """The Zoom simulator as a subprocess on free ports (see zoomsim/README.md). Zoom's webhook retries (5, 20
    and 60 minutes after an attempt that failed or took over 3 s) scaled to 0.3, 1.2 and 3.6 s, as for the
    suite's other simulators: at Zoom's own scale, a webhook that timed out on a loaded machine came back only
    after the test had ended."""
    from tests.zoomsim_process import run_zoomsim

    with run_zoomsim(tmp_path_factory.mktemp("zoomsim"), retry_scale=0.001) as sim:
        pytestconfig.stash[RUN_ZOOMSIM] = sim
        yield sim


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup, django_db_blocker):
    """pytest-django's test database, whose drop at the end first ends the sessions still open on it (this
    process's consumer threads keep theirs): else the drop fails and the database is left behind."""
    yield
    from django.db import connection

    with django_db_blocker.unblock():
        _end_other_sessions(connection)


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
    with django_db_blocker.unblock():
        _end_other_sessions(connection)
        if created:
            teardown_databases(created, verbosity=0)


def _end_other_sessions(connection):
    """A subprocess killed at the end of the run leaves its PostgreSQL backend alive for a moment, and dropping the
    test database then fails ("being accessed by other users"): end those sessions first."""
    if connection.vendor != "postgresql":
        return
    others = "FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT pg_terminate_backend(pid) {others}")
        # A terminated backend takes a moment to go (longer on a loaded machine): the drop waits for it, 5 s at most.
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            cursor.execute(f"SELECT count(*) {others}")
            if not cursor.fetchone()[0]:
                break
            time.sleep(0.05)


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


@pytest.fixture
def beat(stack_env, logs_dir, worker):
    """Beat for one test only: its reconciler thread reconciles every stream in the database, and this run's
    database is shared with the stream tests' stacks, whose leases live in Redis namespaces of their own: a beat
    left running would take their streams for orphans and have this run's worker claim them (two holders)."""
    proc = processes.start_beat(stack_env, logs_dir)
    yield proc
    proc.stop()


@pytest.fixture
def app():
    """One of our registered Zoom apps (a row; register it with the simulator with consent_support.register_with_sim
    when the test needs Zoom's side too)."""
    from tests.consent_support import make_app

    return make_app()


class Pushes:
    """What was pushed to Channels groups through rtms.pushes.push, in order: (group, message) pairs."""

    def __init__(self):
        self.sent = []
        self._changed = threading.Condition()

    def record(self, group, message):
        with self._changed:
            self.sent.append((group, message))
            self._changed.notify_all()

    def to(self, group, kind=None):
        """The messages pushed to `group` (of type `kind`, e.g. "panel.state"), oldest first."""
        with self._changed:
            return [m for g, m in self.sent if g == group and (kind is None or m.get("type") == kind)]

    def wait_for(self, group, kind, timeout=10.0):
        """The first message of type `kind` pushed to `group`, waiting for it (pushes made after commit by Zoom
        calls run on another thread)."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while not (found := [m for g, m in self.sent if g == group and m.get("type") == kind]):
                left = deadline - time.monotonic()
                assert left > 0, f"nothing of type {kind} pushed to {group}; pushed: {self.sent}"
                self._changed.wait(left)
            return found[0]


@pytest.fixture
def pushes(monkeypatch):
    """Captures every push to panels and the console (as zulip's capture_send_event_calls): rtms.pushes.push is
    wrapped, not replaced, so each push still goes through the real channel layer."""
    import rtms.pushes

    captured = Pushes()
    send = rtms.pushes.push

    def push(group, message):
        captured.record(group, message)
        send(group, message)

    monkeypatch.setattr(rtms.pushes, "push", push)
    return captured


@pytest.fixture(params=["local", "s3"])
def storage_backend(request, settings, tmp_path):
    """Media storage on the local filesystem (MEDIA_ROOT) and, a second time, on the S3 server of tests/s3_server.py,
    whose fixtures the test module imports: its name."""
    settings.MEDIA_ROOT = tmp_path / "media"
    if request.param == "s3":
        settings.MEDIA_STORAGE = "s3"
        settings.MEDIA_S3_BUCKET = request.getfixturevalue("s3_bucket")
        settings.MEDIA_S3_ENDPOINT_URL = request.getfixturevalue("s3_server")
    return request.param
