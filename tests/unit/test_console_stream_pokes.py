"""A stream's state change pokes the live-streams table of its meeting's account (zoomapp/console/streams_feed.py),
and the meeting's account is read once: it is never overwritten once known (zoomapp/consent/meetings.py)."""

import secrets

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from rtms.models import StreamSession
from rtms.signals import stream_state_changed
from tests.consent_support import meeting_uuid
from zoomapp.consent import meetings
from zoomapp.console.streams_feed import account_group

pytestmark = pytest.mark.django_db


def change_state(app, uuid):
    stream = StreamSession(rtms_stream_id=secrets.token_hex(16), meeting_uuid=uuid, client_id=app.client_id)
    stream_state_changed.send_robust(sender=StreamSession, stream=stream, previous="starting", reason="test")


def pokes(pushes, account_id):
    return len(pushes.to(account_group(account_id), "console.streams_changed"))


def test_a_state_change_pokes_the_meetings_account_once_it_is_known(app, pushes):
    uuid = meeting_uuid()

    change_state(app, uuid)  # no row of this meeting yet: no account to tell
    meetings.get_meeting(app, uuid, account_id="acctA")
    change_state(app, uuid)

    assert pokes(pushes, "acctA") == 1


def test_the_meetings_account_is_read_once_and_never_taken_from_a_later_claim(app, pushes):
    uuid = meeting_uuid()
    meetings.get_meeting(app, uuid, account_id="acctA")
    change_state(app, uuid)

    meetings.get_meeting(app, uuid, account_id="acctB")  # kept: a meeting's account is never overwritten
    with CaptureQueriesContext(connection) as queries:
        change_state(app, uuid)

    assert not [q for q in queries.captured_queries if q["sql"].startswith('SELECT "consent_meeting"."account_id"')]
    assert (pokes(pushes, "acctA"), pokes(pushes, "acctB")) == (2, 0)
