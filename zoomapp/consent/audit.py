"""The audit log's one writer: every consent decision, stream transition and admin change goes through record().

The log is append-only (models.AuditEntry refuses updates and deletes); each entry names its app and, once known,
its account, so an account's admins see only their own entries (docs/SECURITY.md "Tenancy").
"""

import logging

from zoomapp.consent.models import AuditEntry, Meeting
from zoomapp.consent.permissions import NOT_PEOPLE, role_of

log = logging.getLogger("zoomapp.audit")


def record(kind, *, app=None, meeting_uuid="", actor_user_id="", actor_role="", subject_user_id="", outcome="",
           reason="", source="", address="", rtms_stream_id="", detail=None, account_id=""):
    """`account_id`: the meeting's account, else the one `detail` names (an admin's change, a deauthorization)."""
    detail = detail or {}
    entry = AuditEntry.objects.create(
        kind=kind, app=app, meeting_uuid=meeting_uuid, actor_user_id=actor_user_id, actor_role=actor_role,
        subject_user_id=subject_user_id, outcome=outcome, reason=reason[:300], source=source,
        source_address=address[:100], rtms_stream_id=rtms_stream_id, detail=detail,
        account_id=account_id or detail.get("account_id") or "",
    )
    log.info("audit %s", kind, extra={
        "meeting": meeting_uuid or None, "client_id": app.client_id if app else None, "actor": actor_user_id or None,
        "subject": subject_user_id or None, "outcome": outcome or None, "reason": reason or None,
        "source": source or None, "stream": rtms_stream_id or None})
    return entry


def record_in_meeting(kind, meeting, actor, *, share=None, outcome="", reason="", detail=None):
    """An entry about one meeting of one app: the actor's role as the server knows it, the share's user and
    stream when the entry is about a share. Zoom and the app itself are no one in the meeting: their id is their
    role, with no lookup. A share of the meeting's own app names the app the meeting row already holds (a share
    read without its app would read it again)."""
    app = meeting.app if share is None or share.app_id == meeting.app_id else share.app
    return record(
        kind, app=app, meeting_uuid=meeting.uuid, actor_user_id=actor.user_id,
        actor_role=actor.user_id if actor.user_id in NOT_PEOPLE else role_of(meeting, actor.user_id),
        subject_user_id=share.user_id if share else "", outcome=outcome, reason=reason, source=actor.source,
        address=actor.address, rtms_stream_id=share.rtms_stream_id if share else "", detail=detail,
        account_id=meeting.account_id or _account_now(meeting),
    )


def _account_now(meeting):
    """The meeting's account as its row says now: the caller's copy may have been read before a meeting event named
    it (a REST call to Zoom in between), after the entries then recorded were filed (meetings.get_meeting)."""
    return Meeting.objects.filter(pk=meeting.pk).values_list("account_id", flat=True).first() or ""
