"""Two apps in one Zoom meeting: a change of one app's meeting is pushed to the other app's panels too (their hosts
see each other's pending requests), under a newer version of the other app's meeting. What goes with that version
is the other app's state as committed after the version went up, never a state read before it."""

import threading

import pytest
from django.db import OperationalError, connection

from tests.consent_support import make_app, meeting_uuid
from tests.locks_support import blocked_on_a_lock, held_elsewhere
from tests.processes import wait_for

pytestmark = pytest.mark.django_db(transaction=True)


def test_the_other_apps_panels_never_get_an_older_state_under_a_newer_version(pushes):
    from zoomapp.consent import meetings
    from zoomapp.consent.models import Meeting
    from zoomapp.consent.push import mark_changed, meeting_group, publish_meeting_state

    if connection.vendor != "postgresql":
        pytest.skip("row locks are PostgreSQL's")
    uuid = meeting_uuid()
    notes, recorder = make_app("Notes Bot"), make_app("Recorder")
    notes_meeting, recorder_meeting = meetings.get_meeting(notes, uuid), meetings.get_meeting(recorder, uuid)

    def recorder_sharing_turned_off():
        locked = meetings.lock(recorder_meeting)
        Meeting.objects.filter(pk=locked.pk).update(share_with_apps=False)
        mark_changed(locked)

    def publish_notes():
        try:
            publish_meeting_state(notes_meeting.pk, uuid)
        finally:
            connection.close()

    # The Recorder's change is under way while a change of Notes Bot is published: the publisher has read both
    # rows and waits to raise the Recorder's version until that change commits.
    with held_elsewhere(recorder_sharing_turned_off):
        publisher = threading.Thread(target=publish_notes)
        publisher.start()
        wait_for(blocked_on_a_lock, 10, "the publisher to wait for the Recorder's meeting")
    publisher.join(10)

    states = [m["state"] for m in pushes.to(meeting_group(recorder.client_id, uuid), "panel.state")]
    assert len(states) == 2  # the Recorder's own push, and the one after Notes Bot's change
    newest = max(states, key=lambda state: state["version"])
    assert newest["meeting"]["share_with_apps"] is False
    assert newest["version"] == Meeting.objects.get(pk=recorder_meeting.pk).version



def test_zoom_stopping_every_apps_stream_at_once_turns_sharing_off_in_each_app_without_a_deadlock(pushes):
    """Zoom's "Share real-time meeting content with apps" went off: it stops Notes Bot's and the Recorder's streams
    with reason 9 at the same moment. Each app's row changes under its own lock, and the other app's row follows
    after that commits, never while it is held: two rows each locked while waiting for the other's would deadlock,
    and PostgreSQL would fail one of Zoom's deliveries. Both apps' panels end showing sharing off, and whoever asked
    in either reads "Apps sharing meeting content have been disabled."."""
    from zoomapp.consent import meetings
    from zoomapp.consent.actions import presence, sharing_requests, streams
    from zoomapp.consent.models import Meeting, Share
    from zoomapp.consent.permissions import Actor
    from zoomapp.consent.push import meeting_group

    if connection.vendor != "postgresql":
        pytest.skip("row locks are PostgreSQL's")
    uuid = meeting_uuid()
    apps = {name: make_app(name) for name in ("Notes Bot", "Recorder")}
    for app in apps.values():
        row = meetings.get_meeting(app, uuid, host_user_id="host1", account_id="acct1")
        presence.do_host_joined(row, "host1", "Ana")
        presence.do_participant_joined(row, "cleo1", "Cleo")
        sharing_requests.do_request(row, actor=Actor("cleo1", "Cleo", "test"))
        Share.objects.create(meeting=row, app=app, user_id="ben1", user_name="Ben", status=Share.Status.SHARING,
                             rtms_stream_id=f"stream-of-{app.client_id}")

    def stopped_by_zoom(name):
        app = apps[name]
        streams.do_stream_state(app.client_id, uuid, f"stream-of-{app.client_id}", "ben1", "stopped",
                                stop_reason=9)

    failures = []

    def notes_stopped():
        try:
            stopped_by_zoom("Notes Bot")
        except OperationalError as exc:  # PostgreSQL's deadlock error, were there one
            failures.append(exc)
        finally:
            connection.close()

    notes = threading.Thread(target=notes_stopped)
    with held_elsewhere(lambda: stopped_by_zoom("Recorder")):
        notes.start()
        wait_for(blocked_on_a_lock, 10, "Notes Bot's stop, committed, to wait for the Recorder's row to follow it")
    notes.join(10)
    assert not notes.is_alive() and failures == []

    for app in apps.values():
        row = Meeting.objects.get(app=app, uuid=uuid)
        shown = max((m["state"] for m in pushes.to(meeting_group(app.client_id, uuid), "panel.state")),
                    key=lambda state: state["version"])
        assert shown["version"] == row.version
        assert shown["meeting"]["share_with_apps"] is False
        assert {s["user_id"]: s["status"] for s in shown["shares"]} == {"ben1": "apps_disabled",
                                                                         "cleo1": "apps_disabled"}
        assert shown["requests"] == []
