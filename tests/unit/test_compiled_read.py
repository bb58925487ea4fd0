"""A read compiled to SQL once gives what the same QuerySet gives, with each argument in its place, for any number of
calls; none when no row matches; a refusal when several do. Model instances come with their related rows, their
annotations and every field converted (an encrypted token decrypted, JSON decoded), and a locking read locks."""

import threading
from datetime import timedelta

import pytest
from django.core.exceptions import MultipleObjectsReturned
from django.db import DatabaseError, connection, transaction
from django.db.models import OuterRef, Subquery
from django.db.transaction import TransactionManagementError
from django.utils import timezone

from rtms.compiled_read import CompiledModelRead, CompiledRead
from tests.consent_support import make_app, meeting_uuid
from zoomapp.consent import meetings
from zoomapp.consent.models import Meeting, Participant
from zoomapp.marketplace.models import UserAuthorization

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


MEETING_WITH_NAME = CompiledModelRead(
    lambda client_id, uuid, user_id: Meeting.objects.select_related("app").filter(app__client_id=client_id, uuid=uuid)
    .annotate(actor_name=Subquery(
        Participant.objects.filter(meeting=OuterRef("pk"), user_id=user_id).values("name")[:1])),
    "client id stand-in", "uuid stand-in", "user id stand-in")
GRANT = CompiledModelRead(
    lambda app_pk, user_id: UserAuthorization.objects.filter(app_id=app_pk, user_id=user_id).select_related("app"),
    -1, "user id stand-in")


def _grant(app, user_id, token, groups):
    return UserAuthorization.objects.create(app=app, user_id=user_id, access_token=token, refresh_token=f"r-{token}",
                                            expires_at=timezone.now() + timedelta(hours=1), group_ids=groups)


def test_model_instances_match_the_orms_with_related_rows_and_annotations(app, django_assert_num_queries):
    other_app = make_app("Other Bot")
    uuid = meeting_uuid()
    for each in (app, other_app):
        meetings.upsert_participant(meetings.get_meeting(each, uuid, topic=f"{each.name} sync"), "u1",
                                    f"Ana of {each.name}", "host")

    for each in (app, other_app):
        read = MEETING_WITH_NAME.one(each.client_id, uuid, "u1")
        orm = Meeting.objects.select_related("app").get(app=each, uuid=uuid)
        assert (read.pk, read.topic, read.version, read.actor_name) == (orm.pk, orm.topic, orm.version,
                                                                        f"Ana of {each.name}")
        assert read.app.client_secret == each.client_secret  # the related app's encrypted field, decrypted
        with django_assert_num_queries(0):
            assert read.app.client_id == each.client_id
    assert MEETING_WITH_NAME.one(app.client_id, uuid, "nobody").actor_name is None
    assert MEETING_WITH_NAME.one(app.client_id, meeting_uuid(), "u1") is None


def test_fields_are_converted_and_deferred_ones_load_on_use(app):
    _grant(app, "u1", "token one", ["g1", "g2"])
    _grant(app, "u2", "token two", [])
    grant = GRANT.one(app.pk, "u1")
    assert (grant.access_token, grant.refresh_token, grant.group_ids) == ("token one", "r-token one", ["g1", "g2"])
    assert GRANT.one(app.pk, "u2").access_token == "token two"
    groups_only = CompiledModelRead(lambda app_pk: UserAuthorization.objects.filter(app_id=app_pk).only("group_ids")
                                    .order_by("user_id"), -1)
    first, second = groups_only.all(app.pk)
    assert (first.group_ids, second.group_ids) == (["g1", "g2"], [])
    assert first.get_deferred_fields() >= {"access_token", "user_id"}
    assert first.access_token == "token one"  # a deferred field is read on use, as the ORM does


def test_constants_stay_and_arguments_move(app):
    meeting = meetings.get_meeting(app, meeting_uuid())
    for user_id, role in (("u1", "host"), ("u2", "attendee"), ("u3", "co_host")):
        meetings.upsert_participant(meeting, user_id, "", role)
    hosts_or = CompiledRead(
        lambda meeting_pk, user_id: Participant.objects.filter(meeting_id=meeting_pk, role__in=("host", "co_host"))
        .values_list("user_id").union(Participant.objects.filter(meeting_id=meeting_pk, user_id=user_id)
                                      .values_list("user_id")).order_by("user_id"),
        -1, "user id stand-in")
    assert hosts_or.all(meeting.pk, "u2") == [("u1",), ("u2",), ("u3",)]
    assert hosts_or.all(meeting.pk, "nobody") == [("u1",), ("u3",)]


def test_a_stand_in_django_transforms_is_refused(app):
    by_name_part = CompiledRead(lambda part: Participant.objects.filter(name__contains=part).values_list("user_id"),
                                "part stand-in")
    with pytest.raises(ValueError, match="stand-in"):
        by_name_part.all("Ana")


@pytest.mark.django_db(transaction=True)
def test_a_locking_read_locks_the_row_until_commit(app):
    meeting = meetings.get_meeting(app, meeting_uuid())
    locked = CompiledModelRead(lambda pk: meetings.locked_meetings().filter(pk=pk), -1)
    seen = {}

    def try_lock_elsewhere():
        try:
            with transaction.atomic():
                Meeting.objects.select_for_update(nowait=True).get(pk=meeting.pk)
            seen["locked"] = False
        except DatabaseError:
            seen["locked"] = True
        finally:
            connection.close()

    with transaction.atomic():
        assert locked.one(meeting.pk).app.client_id == app.client_id
        other = threading.Thread(target=try_lock_elsewhere)
        other.start()
        other.join()
    assert seen == {"locked": True}
    other = threading.Thread(target=try_lock_elsewhere)
    other.start()
    other.join()
    assert seen == {"locked": False}
    with pytest.raises(TransactionManagementError):  # a lock outside a transaction would end with the statement
        locked.one(meeting.pk)

