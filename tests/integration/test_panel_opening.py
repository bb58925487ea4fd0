"""A panel opening binds its person (zoomapp/consent/actions/presence.py): an attendee's or a guest's panel takes no
meeting lock, so a large meeting's start does not queue a thousand panels one behind another for it; what another
panel shows (a host, a role that changes, someone coming back) still goes through the lock and is pushed. Against
the real PostgreSQL, with a second connection holding the meeting's row lock as a webhook's transaction would."""

import psycopg
import pytest
from django.db import connection, transaction

from tests.consent_support import meeting_uuid, open_panel
from zoomapp.consent import meetings
from zoomapp.consent.models import Meeting, Participant

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def meeting(client, app):
    uuid = meeting_uuid()
    open_panel(client, app, uuid, "host1", "host", "Ana")
    return Meeting.objects.get(app=app, uuid=uuid)


@pytest.fixture
def locked_elsewhere(meeting):
    """The meeting's row locked by another connection, as a change of the meeting (a webhook's, another panel's)
    locks it; this test's own connection waits for a lock at most 2 s."""
    db = connection.settings_dict
    other = psycopg.connect(dbname=db["NAME"], user=db["USER"], password=db["PASSWORD"], host=db["HOST"],
                            port=db["PORT"])
    with transaction.atomic():  # Django compiles a locking query only inside one
        sql, params = meetings.locked_meetings().filter(pk=meeting.pk).query.get_compiler("default").as_sql()
    assert " FOR NO KEY UPDATE" in sql
    other.execute(sql, params)  # the lock every change of the meeting takes
    with connection.cursor() as cursor:
        cursor.execute("SET lock_timeout = '2s'")
    yield
    other.rollback()
    other.close()
    with connection.cursor() as cursor:
        cursor.execute("SET lock_timeout = 0")


def _participant(meeting, user_id):
    return Participant.objects.filter(meeting=meeting, user_id=user_id).values_list("role", "name", "present").first()


def test_attendees_and_guests_open_their_panel_while_the_meeting_is_locked(client, app, meeting, locked_elsewhere):
    version = meeting.version

    _, first = open_panel(client, app, meeting.uuid, "ben1", "participant", "Ben")  # seen for the first time
    _, again = open_panel(client, app, meeting.uuid, "ben1", "participant", "Ben")  # known, nothing to change
    _, guest = open_panel(client, app, meeting.uuid, None)

    assert _participant(meeting, "ben1") == ("participant", "Ben", True)
    assert first["viewer"]["user_id"] == again["viewer"]["user_id"] == "ben1"
    assert guest["viewer"]["user_id"].startswith("guest:")
    assert Meeting.objects.get(pk=meeting.pk).version == version  # no other panel had anything new to show


@pytest.mark.parametrize("before, opened_as, after", [
    (("participant", "Ben", False), "participant", ("participant", "Ben", True)),  # back after leaving
    (("participant", "Ben", True), "cohost", ("co-host", "Ben", True)),  # made a co-host
    (("co-host", "Ben", True), "participant", ("participant", "Ben", True)),  # no longer one
])
def test_a_change_other_panels_show_goes_through_the_lock_and_is_pushed(client, app, meeting, before, opened_as,
                                                                        after):
    role, name, present = before
    Participant.objects.create(meeting=meeting, user_id="ben1", role=role, name=name, present=present)
    version = Meeting.objects.get(pk=meeting.pk).version

    open_panel(client, app, meeting.uuid, "ben1", opened_as, "Ben")

    assert _participant(meeting, "ben1") == after
    assert Meeting.objects.get(pk=meeting.pk).version > version


def test_a_name_zoom_never_sent_is_taken_from_the_panel_under_the_lock(client, app, meeting):
    Participant.objects.create(meeting=meeting, user_id="ben1", role="participant", name="", present=True)

    open_panel(client, app, meeting.uuid, "ben1", "participant", "Ben")

    assert _participant(meeting, "ben1") == ("participant", "Ben", True)


def test_two_panels_of_someone_new_opening_at_once_insert_one_row(meeting):
    """Both find no row; the one that inserts it is bound, the other learns it lost the race (and binds under the
    lock, as a known attendee)."""
    from zoomapp.consent.actions import presence

    assert presence._inserted_if_new(meeting, "ben1", "Ben", "participant") is True
    assert presence._inserted_if_new(meeting, "ben1", "Benjamin", "co-host") is False
    [row] = Participant.objects.filter(meeting=meeting, user_id="ben1")
    assert (row.role, row.name, row.present, row.updated is not None) == ("participant", "Ben", True, True)
