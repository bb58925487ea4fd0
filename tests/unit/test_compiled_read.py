"""A read compiled to SQL once gives what the same QuerySet gives, with each argument in its place, for any number of
calls; none when no row matches; a refusal when several do."""

import pytest
from django.core.exceptions import MultipleObjectsReturned

from tests.consent_support import meeting_uuid
from zoomapp.compiled_read import CompiledRead
from zoomapp.consent import meetings
from zoomapp.consent.models import Participant

pytestmark = pytest.mark.django_db

# The user before the meeting in the call, the meeting first in the SQL (Django sorts a filter's keywords).
PARTICIPANT = CompiledRead(
    lambda user_id, uuid: Participant.objects.filter(user_id=user_id, meeting__uuid=uuid).values_list("name", "role"),
    "user id stand-in", "uuid stand-in")


def test_each_call_reads_its_own_arguments_row(app):
    first, second = meeting_uuid(), meeting_uuid()
    for uuid, names in ((first, ("Ana", "Ben")), (second, ("Cleo", "Dev"))):
        meeting = meetings.get_meeting(app, uuid)
        for user_id, name in zip(("u1", "u2"), names, strict=True):
            meetings.upsert_participant(meeting, user_id, name, "attendee")

    assert PARTICIPANT.one("u2", first) == ("Ben", "attendee")
    assert PARTICIPANT.one("u1", second) == ("Cleo", "attendee")
    assert PARTICIPANT.one("u2", second) == tuple(
        Participant.objects.filter(meeting__uuid=second, user_id="u2").values_list("name", "role").get())


def test_no_row_is_none(app):
    meetings.get_meeting(app, meeting_uuid())
    assert PARTICIPANT.one("u1", meeting_uuid()) is None


def test_several_rows_are_refused(app):
    meeting = meetings.get_meeting(app, meeting_uuid())
    for user_id in ("u1", "u2"):
        meetings.upsert_participant(meeting, user_id, "", "attendee")
    by_role = CompiledRead(
        lambda meeting_pk, role: Participant.objects.filter(meeting_id=meeting_pk, role=role).values_list("user_id"),
        -1, "role stand-in")
    assert by_role.one(meeting.pk, "host") is None
    with pytest.raises(MultipleObjectsReturned):
        by_role.one(meeting.pk, "attendee")
