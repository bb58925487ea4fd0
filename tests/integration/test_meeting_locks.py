"""A meeting's lock (zoomapp.consent.meetings.lock) holds that meeting's row only: while one meeting's change is
under way, another meeting of the same app changes at once (the app's row is read with it, not locked). The same
for a share a host action locks (meetings.share_in)."""

import contextlib
import threading

import pytest
from django.db import OperationalError, connection, transaction

from tests.consent_support import meeting_uuid

pytestmark = pytest.mark.django_db(transaction=True)


def lock_within(seconds, meeting, share=None):
    """meetings.lock (and meetings.share_in for `share`) in a transaction of its own that gives up waiting after
    `seconds`."""
    from zoomapp.consent import meetings

    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute(f"SET LOCAL lock_timeout = '{int(seconds * 1000)}ms'")
        locked = meetings.lock(meeting)
        return locked if share is None else meetings.share_in(locked, share.pk)


@contextlib.contextmanager
def held_elsewhere(change):
    """`change()` in a transaction of another thread (its own connection), held open until the block ends."""
    locked, release = threading.Event(), threading.Event()

    def hold():
        try:
            with transaction.atomic():
                change()
                locked.set()
                release.wait(20)
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


def test_a_meeting_being_changed_does_not_hold_up_another_meeting_of_the_same_app(app):
    from zoomapp.consent import meetings

    if connection.vendor != "postgresql":
        pytest.skip("row locks are PostgreSQL's")
    first, second = meetings.get_meeting(app, meeting_uuid()), meetings.get_meeting(app, meeting_uuid())
    with held_elsewhere(lambda: meetings.lock(first)):
        with pytest.raises(OperationalError, match="lock timeout"):
            lock_within(0.2, first)  # the first meeting is held
        assert lock_within(5, second).pk == second.pk


def test_a_share_being_changed_does_not_hold_up_another_meetings_share_of_the_same_app(app):
    from zoomapp.consent import meetings

    if connection.vendor != "postgresql":
        pytest.skip("row locks are PostgreSQL's")
    first, second = meetings.get_meeting(app, meeting_uuid()), meetings.get_meeting(app, meeting_uuid())
    with transaction.atomic():
        first_share, second_share = meetings.share_for(first, "u1"), meetings.share_for(second, "u2")
    with held_elsewhere(lambda: meetings.share_in(meetings.lock(first), first_share.pk)):
        assert lock_within(5, second, second_share).app.client_id == app.client_id
