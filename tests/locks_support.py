"""Row locks for the tests that show which rows a change locks and in what order: a change held open in a
transaction of another thread, and whether a connection waits for a lock (PostgreSQL's pg_stat_activity)."""

import contextlib
import threading
import time

from django.db import connection, transaction


@contextlib.contextmanager
def held_elsewhere(change, seconds=20):
    """`change()` in a transaction of another thread (its own connection), held open until the block ends (at most
    `seconds`)."""
    locked, release = threading.Event(), threading.Event()

    def hold():
        try:
            with transaction.atomic():
                change()
                locked.set()
                release.wait(seconds)
        finally:
            connection.close()

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert locked.wait(10)
        yield
    finally:
        release.set()
        holder.join()


def blocked_on_a_lock(count=1):
    """Whether `count` other connections of this database wait for a lock (transactions of other threads)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                       "AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()")
        return cursor.fetchone()[0] >= count


def run_queued_behind(change, threads):
    """Start `threads` in turn while another transaction holds what `change()` locks, each once the one before
    waits for a lock, so that they queue in this order; then release it and wait for them all to end."""
    with held_elsewhere(change):
        for count, thread in enumerate(threads, start=1):
            thread.start()
            wait_until_blocked(count)
    for thread in threads:
        thread.join(10)
        assert not thread.is_alive()


def wait_until_blocked(count=1, timeout=10):
    """Until `count` other connections wait for a lock (blocked_on_a_lock); fails after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not blocked_on_a_lock(count) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert blocked_on_a_lock(count), f"{count} connection(s) not waiting for a lock after {timeout} s"


def thread_with_its_own_connection(target, *args):
    """A thread running `target(*args)` that closes its database connection at the end: a connection left to a
    dead thread never goes back to the test process's pool, which the next tests then run out of."""
    def run():
        try:
            target(*args)
        finally:
            connection.close()

    return threading.Thread(target=run)
