"""A meeting's lock (zoomapp.consent.meetings.lock) holds that meeting's row only: while one meeting's change is
under way, another meeting of the same app changes at once (the app's row is read with it, not locked). The same
for a share a host action locks (meetings.share_in), and for a start Zoom refused or that timed out and a pause
Zoom confirmed, which take the meeting before the share, as a host's action does."""

import threading

import pytest
from django.db import OperationalError, connection, transaction

from tests.consent_support import meeting_uuid
from tests.locks_support import blocked_on_a_lock, held_elsewhere
from tests.processes import wait_for

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


def starting_share(app):
    from zoomapp.consent import meetings
    from zoomapp.consent.models import Share

    meeting = meetings.get_meeting(app, meeting_uuid())
    with transaction.atomic():
        share = meetings.share_for(meetings.lock(meeting), "u1")
        share.set_status(Share.Status.STARTING, start_attempt=1)
    return meeting, share


def waits_for_the_meeting_with_the_share_free(meeting, share, change):
    """Run `change()` in a thread while the meeting is held elsewhere: it must wait for the meeting without holding
    the share (a host's action, next in the meeting's lock, takes the share). Returns what `change()` returned."""
    from zoomapp.consent import meetings
    from zoomapp.consent.models import Share

    returned = []

    def run():
        try:
            returned.append(change())
        finally:
            connection.close()

    with held_elsewhere(lambda: meetings.lock(meeting)):
        changing = threading.Thread(target=run)
        changing.start()
        wait_for(blocked_on_a_lock, 5, "the change to wait for the meeting")
        with transaction.atomic():
            Share.objects.select_for_update(nowait=True).get(pk=share.pk)  # free: no "could not obtain lock"
    changing.join(10)
    return returned[0]


def test_a_start_that_failed_waits_for_its_meeting_before_it_takes_the_share(app):
    """A host acting on a share locks the meeting, then the share: a start timing out meanwhile must wait for the
    meeting without holding the share, or each would wait for the other (PostgreSQL would cancel one after a
    second: a host's Stop failing, or a start left "starting")."""
    from zoomapp.consent.actions.starting import do_start_failed
    from zoomapp.consent.models import Share

    if connection.vendor != "postgresql":
        pytest.skip("row locks are PostgreSQL's")
    meeting, share = starting_share(app)
    failed = waits_for_the_meeting_with_the_share_free(meeting, share, lambda: do_start_failed(
        share.pk, 1, Share.Status.HOST_CANNOT_APPROVE, reason="timed out"))
    assert failed.status == Share.Status.HOST_CANNOT_APPROVE
    assert Share.objects.get(pk=share.pk).status == Share.Status.HOST_CANNOT_APPROVE


def test_a_pause_zoom_confirmed_waits_for_its_meeting_before_it_takes_the_share(app):
    """The host's Pause went through Zoom's REST API (after commit): marking the share paused takes the meeting
    first too, so the host's next action on the share (Stop, say) cannot deadlock with it."""
    from zoomapp.consent.actions.streams import do_stream_paused
    from zoomapp.consent.models import Share

    if connection.vendor != "postgresql":
        pytest.skip("row locks are PostgreSQL's")
    meeting, share = starting_share(app)
    Share.objects.filter(pk=share.pk).update(status=Share.Status.SHARING, rtms_stream_id="a1b2c3d4e5f6")
    paused = waits_for_the_meeting_with_the_share_free(meeting, share, lambda: do_stream_paused(
        meeting, "a1b2c3d4e5f6", paused=True))
    assert paused.status == Share.Status.PAUSED == Share.objects.get(pk=share.pk).status


def test_a_start_falling_back_to_the_requesters_panel_does_not_lock_the_app(app):
    from zoomapp.consent.actions.starting import do_fall_back_to_in_client
    from zoomapp.consent.models import Share
    from zoomapp.marketplace.models import ZoomApp

    if connection.vendor != "postgresql":
        pytest.skip("row locks are PostgreSQL's")
    _, share = starting_share(app)
    with held_elsewhere(lambda: do_fall_back_to_in_client(share.pk, 1, reason="REST refused")):
        with transaction.atomic():  # every meeting's registration and grant changes of the app lock its row
            assert ZoomApp.objects.select_for_update(nowait=True).get(pk=app.pk).client_id == app.client_id
    assert Share.objects.get(pk=share.pk).start_path == Share.StartPath.IN_CLIENT


def bens_event_while_held(app, kind, held_change):
    """Zoom's `kind` event about Ben in a weekly meeting of host1, delivered (its receiver in a thread of its own)
    while `held_change(meeting, presence)` holds the meeting: it must wait for the meeting, then decide. Returns
    the meeting."""
    from zoomapp.consent import meetings
    from zoomapp.consent.actions import presence
    from zoomapp.consent.receivers import on_zoom_event
    from zoomapp.webhooks import meeting_events

    facts = {"uuid": meeting_uuid(), "id": "81234567890", "host_id": "host1", "topic": "Weekly sync"}
    meeting = meetings.get_meeting(app, facts["uuid"], zoom_meeting_id=facts["id"], host_user_id="host1",
                                   account_id="acctHost1", topic=facts["topic"])
    event = meeting_events.parse(kind, {"account_id": "acctHost1", "object": {
        **facts, "participant": {"user_id": "16779264", "id": "ben1", "user_name": "Ben"}}})

    def deliver():
        try:
            on_zoom_event(sender=app, meeting_event=event)
        finally:
            connection.close()

    delivering = threading.Thread(target=deliver)
    with held_elsewhere(lambda: held_change(meeting, presence)):
        delivering.start()
        wait_for(blocked_on_a_lock, 5, "the delivery to wait for the meeting")
    delivering.join(10)
    return meeting


def test_a_join_decides_the_role_under_the_meeting_lock_so_a_co_host_bound_meanwhile_stays_one(app):
    """Zoom's join names no role (a co-host stays one): Ben's co-host panel is binding, holding the meeting, when
    his join arrives. The join read his role before that lock and then wrote "participant" over the co-host."""
    from zoomapp.consent.models import Participant
    from zoomapp.consent.permissions import Actor
    from zoomapp.webhooks import meeting_events

    if connection.vendor != "postgresql":
        pytest.skip("row locks are PostgreSQL's")

    def binding_a_co_host(meeting, presence):
        Participant.objects.get_or_create(meeting=meeting, user_id="ben1",
                                          defaults={"name": "Ben", "role": "participant", "present": False})
        presence.do_panel_opened(meeting, "ben1", "co-host", "Ben", actor=Actor("ben1"))

    meeting = bens_event_while_held(app, meeting_events.PARTICIPANT_JOINED, binding_a_co_host)
    assert Participant.objects.filter(meeting=meeting, user_id="ben1").values_list("role", "present").get() == (
        "co-host", True)


def test_a_leave_decides_host_or_participant_under_the_meeting_lock_so_a_host_named_meanwhile_is_seen_leaving(app):
    """Zoom makes Ben the host, holding the meeting, when his leave arrives. The leave read his role before that
    lock ("participant") and left the meeting with a host marked present and nobody to decide."""
    from zoomapp.consent.models import Meeting, Participant
    from zoomapp.webhooks import meeting_events

    if connection.vendor != "postgresql":
        pytest.skip("row locks are PostgreSQL's")

    def named_host(meeting, presence):
        presence.do_participant_joined(meeting, "ben1", "Ben")
        presence.do_role_changed(meeting, "ben1", "Ben", "host")

    meeting = bens_event_while_held(app, meeting_events.PARTICIPANT_LEFT, named_host)
    assert Participant.objects.filter(meeting=meeting, user_id="ben1").values_list("role", "present").get() == (
        "host", False)
    assert Meeting.objects.get(pk=meeting.pk).host_present is False
