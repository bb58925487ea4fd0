"""A web process's PostgreSQL connections stay bounded under a burst: Zoom delivers a meeting's start, its joins and
its streams' webhooks at once, and Django under ASGI runs each request on a thread of its own. Without a pool every
request in flight held a connection of its own (45 at once in a test run, touching PostgreSQL's 100), and past
`max_connections` every process of the deployment fails ("too many clients"). A worker keeps its tasks'
connection from one task to the next, and replaces it when it is broken. docs/DEPLOY.md "PostgreSQL connections"
gives the counts per process."""

import os
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import psycopg
import pytest
from django.conf import settings
from django.db import connection

from tests import processes
from tests.consent_support import make_app, meeting_uuid
from tests.webhook_support import event, post_signed
from zoomapp.consent.meetings import get_meeting, upsert_participant
from zoomapp.consent.models import Meeting
from zoomapp.consent.panel_state import meeting_state

pytestmark = pytest.mark.django_db(transaction=True)

BURST = 80
REQUESTS_AT_ONCE = 3


@pytest.fixture
def web(stack_env, tmp_path):
    """A daphne of its own, named in pg_stat_activity, allowed REQUESTS_AT_ONCE requests' connections."""
    proc = processes.start_daphne({**stack_env, "DATABASE_POOL_REQUESTS": str(REQUESTS_AT_ONCE)}, tmp_path,
                                  name="burst-web")
    yield proc
    proc.stop()


class ConnectionSampler:
    """The most connections the application `name` held at once, sampled from pg_stat_activity."""

    def __init__(self, name):
        self.name = name
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self):
        dsn = settings.DATABASES["default"]
        with psycopg.connect(host=dsn["HOST"], port=dsn["PORT"], user=dsn["USER"], dbname="postgres",
                             autocommit=True) as conn:
            while not self._stop.is_set():
                (count,) = conn.execute("SELECT count(*) FROM pg_stat_activity WHERE application_name = %s",
                                        (self.name,)).fetchone()
                self.peak = max(self.peak, count)
                time.sleep(0.002)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(5)


def test_a_burst_of_webhooks_is_served_on_a_bounded_number_of_connections(web):
    app = make_app("Burst Notes")
    meetings = [meeting_uuid() for _ in range(BURST)]

    def deliver(uuid):
        return post_signed(web.url, app, event("meeting.started", {"account_id": app.account_id, "object": {
            "id": "81234567890", "uuid": uuid, "host_id": "hostBurst1", "topic": "Burst", "type": 2,
            "start_time": "2026-11-29T20:00:00Z", "timezone": "UTC", "duration": 60}}), timeout=30)

    with ConnectionSampler("test-burst-web") as sampler, ThreadPoolExecutor(BURST) as pool:
        statuses = [response.status_code for response in pool.map(deliver, meetings)]

    assert statuses == [200] * BURST
    assert Meeting.objects.filter(app=app, uuid__in=meetings).count() == BURST
    # The web process's pool: the connections its threads keep, plus the requests' own.
    bound = settings.DATABASES["default"]["OPTIONS"]["pool"]["max_size"] - settings.DATABASE_POOL_REQUESTS + \
        REQUESTS_AT_ONCE
    print(f"\n{BURST} webhooks at once: at most {sampler.peak} connections (the pool's bound: {bound})")
    assert 0 < sampler.peak <= bound


def test_a_statement_a_connection_runs_again_is_parsed_and_planned_once():
    """The panels' state read runs on every change of every meeting: after a few runs on a connection, PostgreSQL
    executes it from a prepared statement instead of parsing and planning it each time (docs/PERFORMANCE.md)."""
    meeting = get_meeting(make_app(), meeting_uuid())
    upsert_participant(meeting, "hostPrep1", "Hana Host", role="host")
    states = [meeting_state(meeting) for _ in range(7)]

    assert [state["hosts"] for state in states] == [["hostPrep1"]] * 7
    with connection.cursor() as cursor:
        cursor.execute("SELECT statement FROM pg_prepared_statements")
        prepared = [statement for (statement,) in cursor.fetchall()]
    assert any('FROM "consent_share"' in statement and "$1" in statement for statement in prepared), prepared


def _statements_prepared_by_a_process(prepared_statements):
    """How many statements a new process with DATABASE_PREPARED_STATEMENTS=`prepared_statements` has PostgreSQL
    keep prepared after running one query eight times through Django."""
    run_query = ("import django; from django.db import connection; django.setup(); cursor = connection.cursor(); "
                 "[cursor.execute('SELECT %s::int + 1', [n]) for n in range(8)]; "
                 "cursor.execute('SELECT count(*) FROM pg_prepared_statements'); print(cursor.fetchone()[0])")
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "zoomapp.settings",
           "DATABASE_PREPARED_STATEMENTS": prepared_statements}
    return int(subprocess.run([sys.executable, "-c", run_query], env=env, capture_output=True, text=True, check=True,
                              cwd=processes.ROOT).stdout)


def test_prepared_statements_can_be_turned_off_for_a_pooler_that_cannot_keep_them():
    """Behind a transaction-mode PgBouncer older than 1.21 a prepared statement may be asked of another backend:
    DATABASE_PREPARED_STATEMENTS=false gives Django's client-side binding, with nothing prepared (docs/DEPLOY.md)."""
    assert _statements_prepared_by_a_process("true") == 1
    assert _statements_prepared_by_a_process("false") == 0


@pytest.fixture
def task_worker(stack_env, tmp_path):
    """A Celery worker of its own, on a queue of its own (the session's worker must not take these tasks), named in
    pg_stat_activity."""
    queue = f"{settings.CELERY_TASK_DEFAULT_QUEUE}.connections"
    proc = processes.Process("conn-worker", [
        str(processes.VENV_BIN / "celery"), "-A", "zoomapp", "worker", "--pool=prefork", "--concurrency=1",
        "--hostname", "conn-worker@%h", "--loglevel=INFO", "--without-mingle", "--without-gossip", "-Q", queue,
    ], stack_env, tmp_path)
    processes.wait_for(lambda: "ready." in proc.log_text(), 30, "conn-worker to be ready", process=proc)
    yield proc, queue
    proc.stop()


def _last_stream_read(name):
    """(backend pid, when it started its last statement) of the newest backend of application `name` whose last
    statement read a stream, or None."""
    dsn = settings.DATABASES["default"]
    with psycopg.connect(host=dsn["HOST"], port=dsn["PORT"], user=dsn["USER"], dbname="postgres",
                         autocommit=True) as conn:
        return conn.execute(
            "SELECT pid, query_start FROM pg_stat_activity WHERE application_name = %s AND query LIKE %s "
            "ORDER BY query_start DESC LIMIT 1", (name, 'SELECT "rtms_streamsession".%')).fetchone()


def test_a_worker_keeps_its_database_connection_from_one_task_to_the_next(task_worker):
    """Each task in a new connection made PostgreSQL start a backend for every stopped stream's export and every
    auto-start on a join (a large meeting's start: one per person), and forgot its prepared statements."""
    from zoomapp.celery import app as celery_app

    proc, queue = task_worker
    reads = []

    def next_read():
        read = _last_stream_read("test-conn-worker")
        return read if read and (not reads or read[1] > reads[-1][1]) else None

    def run_task(task):
        celery_app.send_task("rtms.export_stream_text", args=(f"no-such-stream-{task}",), queue=queue)
        # A connection closed with its task is gone before it can be seen: then this times out.
        reads.append(processes.wait_for(next_read, 20, f"task {task}'s read of the stream table", process=proc))

    for task in range(3):
        run_task(task)
    assert len({pid for pid, _ in reads}) == 1, reads  # one backend served all three tasks

    # PostgreSQL restarted, or an operator ended the backend: the next task finds the kept connection dead and
    # runs on a new one.
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_terminate_backend(%s)", [reads[-1][0]])
    run_task(3)
    assert reads[-1][0] != reads[0][0]
