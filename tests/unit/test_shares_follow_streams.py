"""A share follows its stream's stops. Zoom's case 4 (docs/STREAMS.md): which error stops are restarted through
Zoom, and the bound, as the audit log and the share show them; the REST call itself runs after commit (exercised
end to end against the simulator in tests/integration/test_streams_zoom_failover.py), here it is only captured.
And a stream's change whose announcement was lost on the way (it is sent after the change commits: a database
restarting in between loses it): consent.catch_up_with_streams finds, every 30 s, the shares left behind by a
change older than ANNOUNCEMENT_GRACE and makes them follow."""

import secrets
from datetime import timedelta

import pytest
from django.utils import timezone

from rtms.client.protocol import stop_reason_name
from rtms.models import StreamSession
from tests.consent_support import meeting_uuid
from zoomapp.consent import meetings, tasks
from zoomapp.consent.actions import host_controls, presence, streams
from zoomapp.consent.models import AuditEntry, Share
from zoomapp.consent.permissions import Actor

pytestmark = pytest.mark.django_db

HOST = Actor("host1", "Ana", "test")


@pytest.fixture
def meeting(app):
    meeting = meetings.get_meeting(app, meeting_uuid(), host_user_id=HOST.user_id, account_id="acct1")
    presence.do_host_joined(meeting, HOST.user_id, "Ana")
    return meeting


def stopped_by_zoom(app, meeting, stop_reason):
    """A stream the host started, now stopped by Zoom with `stop_reason`, as the receivers leave it."""
    stream = active_stream(app, meeting)
    return stopped(app, meeting, stream, stop_reason)


def active_stream(app, meeting):
    """A stream of the host's, active, announced as the receivers do."""
    stream = StreamSession.objects.create(rtms_stream_id=secrets.token_hex(16), meeting_uuid=meeting.uuid,
                                          client_id=app.client_id, operator_id=HOST.user_id, state="active")
    streams.do_stream_state(app.client_id, meeting.uuid, stream.rtms_stream_id, HOST.user_id, "active")
    return stream


def stopped(app, meeting, stream, stop_reason):
    """Zoom stopped `stream` with `stop_reason`: the row says so, then it is announced."""
    StreamSession.objects.filter(pk=stream.pk).update(state="stopped", stop_reason=stop_reason)
    stream.refresh_from_db()
    streams.do_stream_state(app.client_id, meeting.uuid, stream.rtms_stream_id, HOST.user_id, "stopped",
                            stop_reason=stop_reason)
    return stream


def share_of(app, meeting):
    return Share.objects.get(meeting=meeting, app=app, user_id=HOST.user_id)


@pytest.mark.parametrize("stop_reason", [10, 13, 16, 19, 24])
def test_an_error_stop_is_restarted_through_zoom_and_audited(app, meeting, stop_reason):
    stream = stopped_by_zoom(app, meeting, stop_reason)
    streams.do_restart_after_error_stop(stream)
    entry = AuditEntry.objects.get(kind="stream_restart", meeting_uuid=meeting.uuid)
    assert entry.reason.startswith(f"{stop_reason_name(stop_reason)} ({stop_reason}): restart 1 of 3")
    assert entry.rtms_stream_id == stream.rtms_stream_id and entry.subject_user_id == HOST.user_id
    assert (entry.actor_user_id, entry.actor_role) == ("app", "app")  # the app itself, not someone in the meeting
    share = share_of(app, meeting)
    assert share.status == "starting" and share.start_path == "rest"  # REST start with the host's token, queued


@pytest.mark.parametrize("stop_reason", [1, 6, 8, 20, 23, None])
def test_other_stops_are_not_restarted(app, meeting, stop_reason):
    stream = stopped_by_zoom(app, meeting, stop_reason)
    streams.do_restart_after_error_stop(stream)
    assert not AuditEntry.objects.filter(kind__startswith="stream_restart").exists()
    assert share_of(app, meeting).status != "starting"


def test_no_restart_once_the_meeting_ended(app, meeting):
    stream = stopped_by_zoom(app, meeting, 13)
    presence.do_meeting_ended(meeting)
    streams.do_restart_after_error_stop(stream)
    assert not AuditEntry.objects.filter(kind="stream_restart").exists()


def test_no_restart_of_a_stream_someone_chose_to_stop(app, meeting):
    stream = active_stream(app, meeting)
    # The host stops it; Zoom's error arrives anyway.
    host_controls.do_stop(meeting, share_of(app, meeting).pk, actor=HOST)
    stream = stopped(app, meeting, stream, 13)
    streams.do_restart_after_error_stop(stream)
    assert not AuditEntry.objects.filter(kind="stream_restart").exists()
    assert share_of(app, meeting).status == "stopped"


def test_the_fourth_error_in_the_window_is_not_restarted(app, meeting):
    for _ in range(streams.MAX_RESTARTS):
        streams.do_restart_after_error_stop(stopped_by_zoom(app, meeting, 13))
    last = stopped_by_zoom(app, meeting, 13)
    streams.do_restart_after_error_stop(last)
    assert AuditEntry.objects.filter(kind="stream_restart").count() == streams.MAX_RESTARTS
    refused = AuditEntry.objects.get(kind="stream_not_restarted")
    assert refused.rtms_stream_id == last.rtms_stream_id
    assert refused.reason == "SIGNAL_CONNECTION_INTERRUPTED (13): already restarted 3 times in 10 minutes"
    assert share_of(app, meeting).status == "stopped"


def changed_unannounced(stream, seconds_ago, **change):
    """The stream's row changed `seconds_ago`, and consent never heard of it."""
    StreamSession.objects.filter(pk=stream.pk).update(updated=timezone.now() - timedelta(seconds=seconds_ago),
                                                      **change)


def test_a_share_still_sharing_a_stream_that_stopped_is_stopped(app, meeting):
    stream = active_stream(app, meeting)
    assert share_of(app, meeting).status == "sharing"
    changed_unannounced(stream, 5, state="stopped", stop_reason=6)
    assert tasks.catch_up_with_streams() == 0  # the announcement may still be on its way
    assert share_of(app, meeting).status == "sharing"
    changed_unannounced(stream, 60, state="stopped", stop_reason=6)
    assert tasks.catch_up_with_streams() == 1
    assert share_of(app, meeting).status == "stopped"
    assert tasks.catch_up_with_streams() == 0  # caught up: nothing more to do


def test_a_lost_error_stop_is_still_restarted(app, meeting):
    stream = active_stream(app, meeting)
    changed_unannounced(stream, 60, state="stopped", stop_reason=13)
    assert tasks.catch_up_with_streams() == 1
    assert AuditEntry.objects.filter(kind="stream_restart", meeting_uuid=meeting.uuid).count() == 1
    assert share_of(app, meeting).status == "starting"


def test_a_share_still_starting_a_stream_that_runs_shows_it_sharing(app, meeting):
    stream = active_stream(app, meeting)
    changed_unannounced(stream, 0, state="starting")
    streams.do_stream_state(app.client_id, meeting.uuid, stream.rtms_stream_id, HOST.user_id, "starting")
    assert share_of(app, meeting).status == "starting"
    changed_unannounced(stream, 60, state="active")
    assert tasks.catch_up_with_streams() == 1
    assert share_of(app, meeting).status == "sharing"
