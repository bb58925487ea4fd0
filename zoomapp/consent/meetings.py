"""This app's rows for a meeting: finding or creating them, locking them, and the people and shares in them.

Used by every action in zoomapp.consent.actions; each meeting row belongs to one app (docs/SECURITY.md "Tenancy").
"""

import logging

from django.db.models import Case, F, Value, When

from rtms.compiled_read import CompiledModelRead
from zoomapp import texts
from zoomapp.consent.models import AuditEntry, Meeting, Participant, Share
from zoomapp.consent.permissions import Refused

log = logging.getLogger("zoomapp.consent")

# Who the meeting belongs to: set by the first verified input of this app and never overwritten after
# (docs/SECURITY.md "Tenancy"); a later event that disagrees is logged, not applied.
IDENTITY_FIELDS = ("account_id", "host_user_id")


def get_meeting(app, uuid, **known):
    """This app's row for the meeting, created on first sight; fills in facts (host, numeric id…) we did not
    know. `app` is the app whose verified input (webhook, app context, panel token) is asking."""
    meeting = _MEETING.one(app.pk, uuid)
    if meeting is None:
        meeting, _ = Meeting.objects.get_or_create(app=app, uuid=uuid)
    updates = {}
    for key, value in known.items():
        if not value or getattr(meeting, key) == value:
            continue
        if key in IDENTITY_FIELDS and getattr(meeting, key):
            log.warning("meeting identity kept", extra={"meeting": uuid, "client_id": app.client_id,
                                                        "field": key, "kept": getattr(meeting, key), "offered": value})
            continue
        updates[key] = value
    if updates:
        # An identity field is written only while still empty in the row, not as read above without a lock: the
        # first verified input may have filled it meanwhile (a host's panel binding, a webhook of the meeting).
        Meeting.objects.filter(pk=meeting.pk).update(**{
            key: Case(When(**{key: ""}, then=Value(value)), default=F(key)) if key in IDENTITY_FIELDS else value
            for key, value in updates.items()})
        for key, value in updates.items():
            setattr(meeting, key, value)
        identity = [key for key in updates if key in IDENTITY_FIELDS]
        if identity:
            meeting.refresh_from_db(fields=identity)
        if "account_id" in updates:
            AuditEntry.objects.file_under_account(app, uuid, meeting.account_id)
    return meeting


def lock(meeting):
    """Serialise changes to one meeting (a no-op lock on SQLite, whose IMMEDIATE transactions serialise anyway).
    Only the meeting's row: locking its app's too would serialise every meeting of the app. FOR NO KEY UPDATE, as
    an UPDATE of the row takes: it excludes every other change of the meeting, but not the inserts of its rows
    (participants, shares, requests), whose foreign key check would wait out a FOR UPDATE: an attendee's panel
    opening (actions/presence.py) inserts one without the lock."""
    locked = _LOCKED.one(meeting.pk)
    if locked is None:
        raise Meeting.DoesNotExist(f"meeting {meeting.pk} is gone")
    locked.remembered_roles = {}  # permissions.role_of: roles change only under this lock
    return locked


def locked_meeting_of(client_id, uuid):
    """This app's row for the meeting, locked as lock() does it; None when there is none yet."""
    locked = _LOCKED_OF_APP.one(client_id, uuid)
    if locked is not None:
        locked.remembered_roles = {}
    return locked


def locked_meetings():
    return Meeting.objects.select_for_update(of=("self",), no_key=True).select_related("app")


# Read on every webhook about a meeting and every panel's page.
_MEETING = CompiledModelRead(lambda app_pk, uuid: Meeting.objects.filter(app_id=app_pk, uuid=uuid), -1,
                             "meeting uuid stand-in")
# Only the share's row is locked, not its app's (every meeting of the app would wait on it).
_SHARE_IN = CompiledModelRead(
    lambda pk, meeting_pk: Share.objects.select_for_update(of=("self",)).select_related("app").filter(
        pk=pk, meeting_id=meeting_pk), -1, -2)
_LOCKED = CompiledModelRead(lambda pk: locked_meetings().filter(pk=pk), -1)
_LOCKED_OF_APP = CompiledModelRead(
    lambda client_id, uuid: locked_meetings().filter(app__client_id=client_id, uuid=uuid),
    "client id stand-in", "meeting uuid stand-in")


def upsert_participant(meeting, user_id, name="", role=None, present=True, role_as_of_ms=None, presence_as_of_ms=None):
    defaults = {"present": present}
    if presence_as_of_ms is not None:
        defaults["presence_as_of_ms"] = presence_as_of_ms
    if name:
        defaults["name"] = name[:200]
    if role:
        defaults["role"] = role
    if role_as_of_ms is not None:
        defaults["role_as_of_ms"] = role_as_of_ms
    participant, _ = Participant.objects.update_or_create(meeting=meeting, user_id=user_id, defaults=defaults)
    getattr(meeting, "remembered_roles", {}).pop(user_id, None)
    return participant


def share_for(meeting, user_id, name=""):
    """The meeting's app's share for this user, locked; created (stopped) on first use."""
    share, _ = Share.objects.select_for_update().get_or_create(
        meeting=meeting, app_id=meeting.app_id, user_id=user_id,
        defaults={"user_name": name[:200], "status": Share.Status.STOPPED},
    )
    if name and share.user_name != name:
        share.user_name = name[:200]
    return share


def share_in(meeting, share_id):
    """A share of THIS meeting (a panel of meeting A, or of another app, can never reach other rows)."""
    share = _SHARE_IN.one(share_id, meeting.pk)
    if share is None:
        raise Refused("unknown_share", texts.REFUSED_UNKNOWN_SHARE)
    return share
