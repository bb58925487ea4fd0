"""Asking Zoom to start or stop an app's stream, and what Zoom or the requester's panel answered.

A start goes to Zoom after commit, with the approving host's token (REST rtms_app/status); when REST does not
start it (no grant, Zoom's 2308, or a 2310 that names no cause), the requester's panel calls zoomSdk.startRTMS() so
that Zoom's own settings and approval run, and Zoom's rtms.request_status names the outcome (docs/CONSENT.md
"Starting and stopping"). Zoom's meeting.rtms_started webhook confirms a start (actions.streams).
"""

import logging

from django.db import transaction

from rtms import services as rtms_services
from rtms.compiled_read import CompiledModelRead
from zoomapp import texts
from zoomapp.consent import audit, meetings, zoom_calls
from zoomapp.consent.models import Share
from zoomapp.consent.permissions import Actor, Refused
from zoomapp.consent.push import mark_changed

log = logging.getLogger("zoomapp.consent")

Status = Share.Status
APP = Actor("app", source="task")

# The share with its meeting and their apps, for the calls to Zoom made after commit.
_SHARE_WITH_MEETING = CompiledModelRead(
    lambda pk: Share.objects.select_related("meeting", "meeting__app", "app").filter(pk=pk), -1)


def begin_start(meeting, share, token_user_id, *, publish=True):
    """Mark the share starting, and after commit ask Zoom to start it with `token_user_id`'s token."""
    share.set_status(Status.STARTING, started_by=Share.StartedBy.HOST, start_path=Share.StartPath.REST,
                     stop_intent="", stop_reason=None, rtms_stream_id="", start_attempt=share.start_attempt + 1)
    if publish:
        mark_changed(meeting)
    zoom_calls.after_commit(start_via_rest, share.pk, share.start_attempt, token_user_id)


def start_via_rest(share_id, attempt, token_user_id):
    """Start an approved share with the approving host's token; fall back to the requester's panel."""
    share = _SHARE_WITH_MEETING.one(share_id)
    if share is None or share.start_attempt != attempt or share.status != Status.STARTING:
        return
    meeting = share.meeting
    try:
        outcome, detail = zoom_calls.rtms_app_status(
            meeting, "start", [token_user_id, meeting.host_user_id], participant_user_id=share.user_id
        )
    except Exception as exc:  # logged below: the share must not stay "starting" forever
        log.exception("REST start failed", extra={"meeting": meeting.uuid, "share": share_id})
        outcome, detail = "refused", repr(exc)[:200]
    if outcome == "ok":
        _record(share, "start_requested", outcome=Status.STARTING, reason=f"REST start with {detail}'s token")
    else:
        # REST's refusals name no cause (2310 covers sharing off, eligibility and the stream limit alike); the
        # requester's own start does: Zoom shows its modal or answers with rtms.request_status.
        do_fall_back_to_in_client(share_id, attempt, reason=f"REST start {outcome}: {detail}")


@transaction.atomic
def _record(share, kind, outcome="", reason=""):
    audit.record_in_meeting(kind, share.meeting, APP, share=share, outcome=outcome, reason=reason)


def _locked(share_id):
    """The share's meeting locked, then the share: the order every change of a meeting takes them in. Taking the
    share first (with its meeting and app, in one statement) deadlocked against a host's action on the same share
    and locked the app's row, which every meeting of the app waits on (docs/ARCHITECTURE.md, "One way to announce
    a change")."""
    meeting = meetings.lock(Share.objects.select_related("meeting").get(pk=share_id).meeting)
    return meeting, meetings.share_in(meeting, share_id)


@transaction.atomic
def do_fall_back_to_in_client(share_id, attempt, *, reason):
    """REST cannot start it: the requester's panel calls zoomSdk.startRTMS(), so Zoom's own host approval runs."""
    meeting, share = _locked(share_id)
    if share.start_attempt != attempt or share.status != Status.STARTING:
        return share
    share.set_status(Status.STARTING, start_path=Share.StartPath.IN_CLIENT)
    audit.record_in_meeting("start_in_client", meeting, APP, share=share, outcome=Status.STARTING, reason=reason)
    mark_changed(meeting)
    return share


@transaction.atomic
def do_start_failed(share_id, attempt, outcome, *, reason, actor=APP):
    meeting, share = _locked(share_id)
    if share.start_attempt != attempt or share.status != Status.STARTING or share.rtms_stream_id:
        return share
    share.set_status(outcome, started_by="", start_path="")
    audit.record_in_meeting("start_failed", meeting, actor, share=share, outcome=outcome, reason=reason)
    mark_changed(meeting)
    return share


def do_in_client_result(share, result, detail="", *, actor):
    """What the requester's panel saw after zoomSdk.startRTMS(): "started" (Zoom's webhook confirms) or "failed"
    (rule 7: the in-client fallback was refused → the host cannot approve)."""
    if share.user_id != actor.user_id:
        raise Refused("not_your_app", texts.REFUSED_NOT_APPS_USER)
    if result == "failed":
        return do_start_failed(share.pk, share.start_attempt, Status.HOST_CANNOT_APPROVE,
                               reason=f"in-client start refused: {detail}"[:300], actor=actor)
    return share


def stop_after_commit(share, actor):
    zoom_calls.after_commit(stop_via_rest, share.pk, [actor.user_id])


def stop_via_rest(share_id, token_user_ids):
    """Ask Zoom to stop the stream; when nobody's token can, our worker closes it (STREAM_CLOSE_REQ)."""
    share = _SHARE_WITH_MEETING.one(share_id)
    if share is None or not share.rtms_stream_id:
        return
    outcome, detail = zoom_calls.rtms_app_status(
        share.meeting, "stop", [*token_user_ids, share.meeting.host_user_id], participant_user_id=share.user_id,
    )
    if outcome != "ok":
        rtms_services.request_stop(share.rtms_stream_id, reason=f"consent stop, REST {outcome}: {detail}")
    _record(share, "stop_requested", outcome=share.status, reason=f"REST stop: {outcome} {detail}")
