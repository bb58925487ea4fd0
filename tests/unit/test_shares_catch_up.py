"""A share follows its stream even when the announcement of the stream's change was lost on the way (it is sent
after the stream's change commits: a database restarting in between loses it). consent.catch_up_with_streams
finds, every 30 s, the shares left behind by a change older than ANNOUNCEMENT_GRACE and makes them follow."""

from datetime import timedelta

import pytest
from django.utils import timezone

from rtms.models import StreamSession
from tests.unit.test_stream_restarts import HOST, active_stream, meeting, share_of  # noqa: F401 - the fixture
from zoomapp.consent import tasks
from zoomapp.consent.models import AuditEntry

pytestmark = pytest.mark.django_db


def changed_unannounced(stream, seconds_ago, **change):
    """The stream's row changed `seconds_ago`, and consent never heard of it."""
    StreamSession.objects.filter(pk=stream.pk).update(updated=timezone.now() - timedelta(seconds=seconds_ago),
                                                      **change)


def test_a_share_still_sharing_a_stream_that_stopped_is_stopped(app, meeting):  # noqa: F811
    stream = active_stream(app, meeting)
    assert share_of(app, meeting).status == "sharing"
    changed_unannounced(stream, 5, state="stopped", stop_reason=6)
    assert tasks.catch_up_with_streams() == 0  # the announcement may still be on its way
    assert share_of(app, meeting).status == "sharing"
    changed_unannounced(stream, 60, state="stopped", stop_reason=6)
    assert tasks.catch_up_with_streams() == 1
    assert share_of(app, meeting).status == "stopped"
    assert tasks.catch_up_with_streams() == 0  # caught up: nothing more to do


def test_a_lost_error_stop_is_still_restarted(app, meeting):  # noqa: F811
    stream = active_stream(app, meeting)
    changed_unannounced(stream, 60, state="stopped", stop_reason=13)
    assert tasks.catch_up_with_streams() == 1
    assert AuditEntry.objects.filter(kind="stream_restart", meeting_uuid=meeting.uuid).count() == 1
    assert share_of(app, meeting).status == "starting"


def test_a_share_still_starting_a_stream_that_runs_shows_it_sharing(app, meeting):  # noqa: F811
    stream = active_stream(app, meeting)
    changed_unannounced(stream, 0, state="starting")
    from zoomapp.consent.actions import streams

    streams.do_stream_state(app.client_id, meeting.uuid, stream.rtms_stream_id, HOST.user_id, "starting")
    assert share_of(app, meeting).status == "starting"
    changed_unannounced(stream, 60, state="active")
    assert tasks.catch_up_with_streams() == 1
    assert share_of(app, meeting).status == "sharing"
