"""A panel opening binds its person (zoomapp/consent/actions/presence.py): an attendee's or a guest's panel takes no
meeting lock, so a large meeting's start does not queue a thousand panels one behind another for it; what another
panel shows (a host, a role that changes, someone coming back) still goes through the lock and is pushed. Against
the real PostgreSQL, with a second connection holding the meeting's row lock as a webhook's transaction would."""

import time

import psycopg
import pytest
from django.db import connection, transaction

from tests.consent_support import context_for, meeting_uuid, open_panel, panel_action
from tests.webhook_support import deliver, event
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

    assert presence._inserted_if_new(meeting, "ben1", "Ben", "participant", 1_700_000_000_000) is True
    assert presence._inserted_if_new(meeting, "ben1", "Benjamin", "co-host", 1_700_000_000_001) is False
    [row] = Participant.objects.filter(meeting=meeting, user_id="ben1")
    assert (row.role, row.role_as_of_ms, row.name, row.present, row.updated is not None) == (
        "participant", 1_700_000_000_000, "Ben", True, True)


def _posted(client, app, context):
    return client.post(f"/panel/{app.client_id}/api/context", data={"context": context, "name": "Ben"},
                       content_type="application/json")


def _role_changed(meeting, user_id, old_role, new_role, event_ts=None):
    """Zoom's signed meeting.participant_role_changed (docs/ZOOM.md), as tests/webhook_support.py sends it."""
    participant = {"user_id": "16779264", "participant_user_id": user_id, "user_name": "Ben",
                   "old_role": old_role, "new_role": new_role}
    return event("meeting.participant_role_changed", {"account_id": "acctOwner", "object": {
        "uuid": meeting.uuid, "id": "81234567890", "host_id": "host1", "topic": "", "participant": participant}},
        event_ts=event_ts)


def test_a_context_made_before_zoom_demoted_its_co_host_does_not_give_host_rights_back(client, app, meeting):
    """Zoom's role change a minute ago wins over the co-host context Ben kept from before it (still valid for its
    ~2 minutes); a context Zoom made after the change binds what it says."""
    now_ms = int(time.time() * 1000)
    kept = context_for(app, meeting.uuid, "ben1", "cohost", now_ms=now_ms - 90_000)
    assert _posted(client, app, kept).status_code == 200
    assert _participant(meeting, "ben1")[0] == "co-host"
    demoted = _role_changed(meeting, "ben1", "co-host", "attendee", event_ts=now_ms - 60_000)
    assert deliver(client, app, demoted).status_code == 200
    assert _participant(meeting, "ben1")[0] == "participant"
    version = Meeting.objects.get(pk=meeting.pk).version

    replayed = _posted(client, app, kept)

    assert replayed.status_code == 200 and replayed.json()["state"]["viewer"]["is_host"] is False
    assert _participant(meeting, "ben1")[0] == "participant"
    for action in ({"action": "approve_all"}, {"action": "set_toggles", "share_with_apps": False}):
        refused = panel_action(client, app, replayed.json()["token"], **action)
        assert refused.status_code == 403 and refused.json()["error"] == "not_host"
    after = Meeting.objects.get(pk=meeting.pk)
    assert (after.version, after.share_with_apps) == (version, True)

    assert _posted(client, app, context_for(app, meeting.uuid, "ben1", "cohost")).status_code == 200
    assert _participant(meeting, "ben1")[0] == "co-host"


def test_a_context_made_after_zooms_role_change_binds_its_role_though_the_change_was_heard_later(client, app,
                                                                                                meeting):
    """Zoom demoted Ben a minute ago (event_ts; its delivery retried, heard now), promoted him again since, and
    made his panel a context 30 s ago saying co-host. Both times are Zoom's clock: the context, made after the
    demotion, binds co-host (the demotion once stood against every context made before it was heard)."""
    now_ms = int(time.time() * 1000)
    assert _posted(client, app, context_for(app, meeting.uuid, "ben1", "participant", now_ms=now_ms - 90_000)
                   ).status_code == 200
    demoted = _role_changed(meeting, "ben1", "co-host", "attendee", event_ts=now_ms - 60_000)
    assert deliver(client, app, demoted).status_code == 200

    fresh = _posted(client, app, context_for(app, meeting.uuid, "ben1", "cohost", now_ms=now_ms - 30_000))

    assert fresh.status_code == 200 and fresh.json()["state"]["viewer"]["is_host"] is True
    assert _participant(meeting, "ben1")[0] == "co-host"
    assert Participant.objects.get(meeting=meeting, user_id="ben1").role_as_of_ms == now_ms - 30_000
