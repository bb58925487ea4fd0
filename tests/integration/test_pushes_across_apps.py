"""Two apps in one Zoom meeting: a change of one app's meeting is pushed to the other app's panels too (their hosts
see each other's pending requests), under a newer version of the other app's meeting. What goes with that version
is the other app's state as committed after the version went up, never a state read before it."""

import threading

import pytest
from django.db import connection

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
