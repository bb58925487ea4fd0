"""The host's controls and the app user's own: the two meeting toggles, disabling one app, pause, resume and stop
(docs/CONSENT.md rule 8)."""

from django.db import transaction

from zoomapp import texts
from zoomapp.consent import audit, meetings, zoom_calls
from zoomapp.consent.actions.sharing_requests import approve_pending
from zoomapp.consent.actions.sharing_with_apps import sharing_turned
from zoomapp.consent.actions.starting import stop_after_commit
from zoomapp.consent.actions.streams import do_stream_paused
from zoomapp.consent.models import Meeting, Share
from zoomapp.consent.permissions import Refused, require_host, require_live, require_owner_or_host
from zoomapp.consent.push import mark_changed, push_to_user

Status = Share.Status


@transaction.atomic
def do_set_toggles(meeting, *, share_with_apps=None, require_host_approval=None, actor):
    meeting = meetings.lock(meeting)
    require_host(meeting, actor)
    require_live(meeting)
    changes = {}
    if share_with_apps is not None and share_with_apps != meeting.share_with_apps:
        changes["share_with_apps"] = share_with_apps
    if require_host_approval is not None and require_host_approval != meeting.require_host_approval:
        changes["require_host_approval"] = require_host_approval
    if not changes:
        return meeting
    Meeting.objects.filter(pk=meeting.pk).update(**changes)
    for key, value in changes.items():
        setattr(meeting, key, value)
    audit.record_in_meeting("set_toggles", meeting, actor, detail=changes)
    if "share_with_apps" in changes:
        sharing_turned(meeting, actor)  # the meeting's setting: every app's row of the meeting follows (rule 8)
    if changes.get("require_host_approval") is False and meeting.share_with_apps:
        # Approval is no longer required: what was waiting for it starts now.
        approve_pending(meeting, None, actor=actor, reason="host approval no longer required")
    mark_changed(meeting)
    return meeting


@transaction.atomic
def do_disable(meeting, share_id, *, actor):
    """Rule 8: the host disables one actively sharing app → "Host disabled your app from sharing…"."""
    meeting = meetings.lock(meeting)
    require_host(meeting, actor)
    return _end_sharing(meeting, meetings.share_in(meeting, share_id), "disable", Status.DISABLED_BY_HOST, actor)


@transaction.atomic
def do_stop(meeting, share_id, *, actor):
    """The app's user (or a host, under continuous sharing) stops the app."""
    meeting = meetings.lock(meeting)
    share = meetings.share_in(meeting, share_id)
    require_owner_or_host(meeting, actor, share)
    return _end_sharing(meeting, share, "stop", Status.STOPPED, actor)


def _end_sharing(meeting, share, kind, outcome, actor):
    """Ends an active share by a person's decision: the outcome now, Zoom's stream stopped after commit."""
    if not share.is_active:
        raise Refused("not_sharing", texts.REFUSED_NOT_SHARING)
    share.set_status(outcome, stop_intent=outcome)
    audit.record_in_meeting(kind, meeting, actor, share=share, outcome=outcome)
    if share.rtms_stream_id:
        stop_after_commit(share, actor)
    mark_changed(meeting)
    return share


@transaction.atomic
def do_pause(meeting, share_id, *, actor):
    return _pause_or_resume(meeting, share_id, "pause", Status.SHARING, actor)


@transaction.atomic
def do_resume(meeting, share_id, *, actor):
    return _pause_or_resume(meeting, share_id, "resume", Status.PAUSED, actor)


def _pause_or_resume(meeting, share_id, action, required, actor):
    meeting = meetings.lock(meeting)
    share = meetings.share_in(meeting, share_id)
    require_owner_or_host(meeting, actor, share)
    if share.status != required or not share.rtms_stream_id:
        raise Refused("wrong_state", texts.REFUSED_PAUSE_NOT_SHARING if action == "pause"
                      else texts.REFUSED_RESUME_NOT_PAUSED)
    audit.record_in_meeting(f"{action}_requested", meeting, actor, share=share, outcome=share.status)
    zoom_calls.after_commit(pause_or_resume_via_rest, share.pk, action, actor)
    return share


def pause_or_resume_via_rest(share_id, action, actor):
    """REST with the actor's (else the host's) token; when REST cannot, the app user's panel calls Zoom's
    in-client pauseRTMS/resumeRTMS, which act on the invoking app's own stream."""
    share = Share.objects.select_related("meeting", "meeting__app", "app").get(pk=share_id)
    outcome, detail = zoom_calls.rtms_app_status(
        share.meeting, action, [actor.user_id, share.meeting.host_user_id], participant_user_id=share.user_id,
    )
    if outcome == "ok":
        do_stream_paused(share.meeting, share.rtms_stream_id, paused=(action == "pause"), actor=actor)
    else:
        push_to_user(share, {"type": "panel.sdk_call", "api": f"{action}RTMS", "share": share.pk})
        with transaction.atomic():
            audit.record_in_meeting(f"{action}_in_client", share.meeting, actor, share=share, outcome=share.status,
                                    reason=f"REST {outcome}: {detail}")
