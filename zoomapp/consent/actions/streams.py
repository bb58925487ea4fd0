"""What Zoom and our workers report about an app's streams, mapped onto the share's outcome; and Zoom's
reconnection case 4, a restart after an error stop (docs/CONSENT.md rule 8 and "Starting and stopping";
docs/STREAMS.md)."""

import logging
from datetime import timedelta

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from rtms.client.protocol import StopReason, stop_reason_name
from rtms.compiled_read import CompiledModelRead, CompiledRead
from rtms.models import StreamSession
from zoomapp.consent import audit, meetings
from zoomapp.consent.actions.sharing_with_apps import sharing_turned
from zoomapp.consent.actions.starting import begin_start, stop_after_commit
from zoomapp.consent.models import AuditEntry, Meeting, Participant, Share, ShareRequest
from zoomapp.consent.permissions import ZOOM, Actor
from zoomapp.consent.push import mark_changed
from zoomapp.marketplace.models import ZoomApp

log = logging.getLogger("zoomapp.consent")

Status = Share.Status

_STREAM_STATE = CompiledRead(lambda stream_id: StreamSession.objects.filter(rtms_stream_id=stream_id).values_list(
    "state"), "stream id stand-in")
_SHARES_OF_STREAM = CompiledModelRead(
    lambda meeting_pk, stream_id: Share.objects.select_for_update(of=("self",)).select_related("app").filter(
        meeting_id=meeting_pk, rtms_stream_id=stream_id), -1, "stream id stand-in")
_SHARES_OF_STREAM_OR_OPERATOR = CompiledModelRead(
    lambda meeting_pk, stream_id, operator_id: Share.objects.select_for_update(of=("self",)).select_related("app")
    .filter(Q(rtms_stream_id=stream_id) | Q(user_id=operator_id), meeting_id=meeting_pk),
    -1, "stream id stand-in", "operator id stand-in")

# Zoom's stop reason -> the participant's outcome (everything else: "stopped").
STOP_REASON_OUTCOMES = {
    StopReason.HOST_DISABLED_APP: Status.DISABLED_BY_HOST,
    StopReason.ALL_APPS_DISABLED: Status.APPS_DISABLED,
    StopReason.ADMIN_DISABLED_APP: Status.HOST_CANNOT_APPROVE,
}
# Outcomes the host (or the app's user) chose; Zoom's later stop reason does not overwrite them.
CHOSEN_STOPS = (Status.DISABLED_BY_HOST, Status.APPS_DISABLED, Status.STOPPED)
# Zoom's stop reasons that are a person's choice made in Zoom's own controls.
CHOSEN_STOP_REASONS = frozenset((StopReason.HOST_TRIGGERED, StopReason.USER_TRIGGERED, StopReason.HOST_DISABLED_APP,
                                 StopReason.ALL_APPS_DISABLED))
FINAL = (Status.DENIED, Status.HOST_CANNOT_APPROVE, Status.DISABLED_BY_HOST, Status.APPS_DISABLED, Status.STOPPED)

# Case 4: Zoom ended the stream with an error; the meeting still wants it, so it is started again, a few times.
ERROR_STOP_REASONS = frozenset((*range(10, 20), StopReason.KEEP_ALIVE_TIMEOUT))
MAX_RESTARTS = 3
RESTART_WINDOW = timedelta(minutes=10)
RESTARTER = Actor("app", "Stream restart", "stream")


@transaction.atomic
def do_stream_paused(meeting, stream_id, paused, *, actor=ZOOM):
    meeting = meetings.lock(meeting)  # before the share, as every change of the meeting (docs/ARCHITECTURE.md)
    share = _share_of_stream(meeting, stream_id, operator_id="")
    if share is None or not share.is_active:
        return share
    status = Status.PAUSED if paused else Status.SHARING
    if share.status != status:
        share.set_status(status)
        audit.record_in_meeting("paused" if paused else "resumed", meeting, actor, share=share, outcome=status)
        mark_changed(meeting)
    return share


def stop_was_chosen(share):
    """Someone in the meeting chose this share's stop: in a panel (its stop intent) or in Zoom's own controls (its
    stop reason). Auto-start never overrides it (docs/CONSENT.md rule 9)."""
    return share.status in CHOSEN_STOPS and bool(share.stop_intent or share.stop_reason in CHOSEN_STOP_REASONS)


def do_follow_stream(stream):
    """The share follows its stream's new state (announced after the stream's change commits, or found out of step
    by tasks.catch_up_with_streams); after Zoom's error stop, the stream is started again (case 4,
    docs/STREAMS.md)."""
    do_stream_state(stream.client_id, stream.meeting_uuid, stream.rtms_stream_id, stream.operator_id, stream.state,
                    stop_reason=stream.stop_reason)
    do_restart_after_error_stop(stream)


@transaction.atomic
def do_stream_state(client_id, meeting_uuid, stream_id, operator_id, state, stop_reason=None):
    """A stream of ours changed state (rtms.signals.stream_state_changed): map it to the share's outcome.

    Announcements can arrive out of order: the webhook queues the worker's claim before it announces "starting"
    (rtms.services.stream_started), and the worker and Zoom's webhooks announce from different processes. So,
    under the meeting's lock, an announcement whose state is no longer the stream's is skipped: the newer
    state's own announcement maps it, before or after this one."""
    meeting = meetings.locked_meeting_of(client_id, meeting_uuid)
    if meeting is None:
        app = ZoomApp.by_client_id(client_id)
        if app is None:
            return None
        meeting = meetings.lock(meetings.get_meeting(app, meeting_uuid))
    row = _STREAM_STATE.one(stream_id)
    current = row[0] if row else None
    if current not in (None, state):
        log.info("stream state announced late, skipped", extra={"meeting": meeting_uuid, "stream": stream_id,
                                                                "announced": state, "current": current})
        return None
    share = _share_of_stream(meeting, stream_id, operator_id)
    if share is None:
        return None
    if state == "stopped":
        if share.rtms_stream_id in (stream_id, ""):
            _stream_stopped(meeting, share, stop_reason)
    elif share.rtms_stream_id != stream_id:
        _stream_began(meeting, share, stream_id, state)
    elif share.status not in FINAL:
        status = {"active": Status.SHARING, "paused": Status.PAUSED, "interrupted": Status.INTERRUPTED}.get(
            state, Status.STARTING)
        if status != share.status:
            share.set_status(status)
            audit.record_in_meeting(f"stream_{state}", meeting, ZOOM, share=share, outcome=status)
            mark_changed(meeting)
    return share


def _share_of_stream(meeting, stream_id, operator_id):
    """The share holding the stream, else its operator's share (created when Zoom started it with no request of
    ours, e.g. its own auto-start, named as Zoom told us); locked. Both looked up in one query."""
    found = (_SHARES_OF_STREAM_OR_OPERATOR.all(meeting.pk, stream_id, operator_id) if operator_id
             else _SHARES_OF_STREAM.all(meeting.pk, stream_id))
    share = next((s for s in found if s.rtms_stream_id == stream_id), None) or next(iter(found), None)
    if share is None and operator_id:
        name = Participant.objects.filter(meeting=meeting, user_id=operator_id).values_list("name", flat=True).first()
        share = meetings.share_for(meeting, operator_id, name or "")
    return share


def _stream_began(meeting, share, stream_id, state):
    """A new stream for this app and user. With no request behind it, Zoom auto-started it."""
    # A stop chosen while Zoom was still starting it stands (docs/CONSENT.md "Starting and stopping"): the host's
    # disable or sharing turned off, or a Stop during "Starting…", before Zoom named a stream (no stream id: nothing
    # could be sent to Zoom then). A user's stop of a stream Zoom had named keeps that id, so a stream started
    # again from Zoom's own controls is shown. A stream of an ended meeting goes too, and one begun while sharing
    # with apps is off (Zoom's own auto-start, a start delivered late), which reads "Apps sharing … disabled".
    chosen = share.status in CHOSEN_STOPS and share.stop_intent and (
        share.status != Status.STOPPED or not share.rtms_stream_id)
    shown = share.status
    if chosen:
        why = f"stopped: {share.status} chosen while it started"
    elif meeting.ended_at is not None:
        why = "stopped: the meeting ended"
    elif not meeting.share_with_apps:
        why = "stopped: sharing with apps is off"
        share.status, share.stop_intent = Status.APPS_DISABLED, Status.APPS_DISABLED  # the "off" covers it
    else:
        why = ""
    if why:
        share.rtms_stream_id = stream_id
        share.save()
        audit.record_in_meeting("stream_started", meeting, ZOOM, share=share, outcome=share.status, reason=why)
        stop_after_commit(share, Actor(meeting.host_user_id, source="stream"))
        # The version names the stream's id; only a new outcome is pushed.
        mark_changed(meeting, publish=share.status != shown)
        return
    if share.status in (Status.STARTING, Status.PENDING):
        started_by = share.started_by or Share.StartedBy.HOST  # an admin's auto-start (do_auto_start) stays "auto"
    else:
        started_by = Share.StartedBy.AUTO  # no request behind it: Zoom auto-started it
    pending = ShareRequest.objects.filter(share=share, status=ShareRequest.Status.PENDING)
    approved = pending.update(status=ShareRequest.Status.APPROVED, decided_at=timezone.now(), decided_by="zoom")
    status = Status.SHARING if state == "active" else Status.STARTING
    shown_before = (share.status, share.started_by, share.start_path)
    share.set_status(status, rtms_stream_id=stream_id, started_by=started_by, stop_intent="", stop_reason=None,
                     start_path=share.start_path or "")
    audit.record_in_meeting("stream_started", meeting, ZOOM, share=share, outcome=status,
                            detail={"started_by": started_by})
    # Zoom confirming a start we asked for by REST, which every panel already shows as starting, adds only the
    # stream's id, which no panel renders while it starts over REST (the requester's panel starts it itself only
    # on the in-client path): the version moves, so that it names this state, and the push waits for "active".
    confirms_only = (not approved and shown_before == (share.status, share.started_by, share.start_path)
                     and share.start_path == Share.StartPath.REST)
    mark_changed(meeting, publish=not confirms_only)


def _stream_stopped(meeting, share, stop_reason):
    if share.status in CHOSEN_STOPS and share.stop_intent:
        outcome = share.status  # the host's or the user's choice stands; Zoom's reason is recorded
    else:
        outcome = STOP_REASON_OUTCOMES.get(stop_reason, Status.STOPPED)
    # Only Zoom's reason 9 says its own "share with apps" is off (a chosen outcome may be from an "off" the host
    # has since turned on again): the meeting's toggle follows it, as when the host turns it off in the panel.
    toggled = stop_reason == StopReason.ALL_APPS_DISABLED and meeting.share_with_apps
    if share.status == outcome and share.stop_reason == stop_reason and not toggled:
        return
    panels_change = share.status != outcome or toggled  # panels do not show Zoom's stop reason
    share.set_status(outcome, stop_reason=stop_reason)
    audit.record_in_meeting("stream_stopped", meeting, ZOOM, share=share, outcome=outcome,
                            reason=stop_reason_name(stop_reason))
    if toggled:
        Meeting.objects.filter(pk=meeting.pk).update(share_with_apps=False)
        meeting.share_with_apps = False
        audit.record_in_meeting("set_toggles", meeting, ZOOM, reason="Zoom's host settings",
                                detail={"share_with_apps": False})
        sharing_turned(meeting, ZOOM)
    if panels_change:  # else a person's stop already showed it: no push to every panel of the meeting for nothing
        mark_changed(meeting)


def do_restart_after_error_stop(stream):
    """Case 4: after the share took Zoom's error stop, start it again through Zoom (REST with the host's token,
    else the user's panel) when the meeting still wants it; at most MAX_RESTARTS per meeting and app within
    RESTART_WINDOW, so an error that comes back every time (an entitlement, reason 18) ends after a few tries.
    Each decision is in the audit log with Zoom's reason: stream_restart, or stream_not_restarted."""
    if stream.state != "stopped" or stream.stop_reason not in ERROR_STOP_REASONS:
        return None  # every other change: no transaction (two round trips) opened for it
    return _restart_after_error_stop(stream)


@transaction.atomic
def _restart_after_error_stop(stream):
    app = ZoomApp.by_client_id(stream.client_id)
    if app is None:
        return None
    meeting = meetings.lock(meetings.get_meeting(app, stream.meeting_uuid))
    share = Share.objects.select_for_update().filter(meeting=meeting, rtms_stream_id=stream.rtms_stream_id).first()
    if share is None or meeting.ended_at is not None or not meeting.share_with_apps or share.stop_intent \
            or share.status != Status.STOPPED:
        return None  # the meeting no longer wants it: someone chose to stop it, or sharing went off
    reason = f"{stop_reason_name(stream.stop_reason)} ({stream.stop_reason})"
    restarts = AuditEntry.objects.filter(kind="stream_restart", app=app, meeting_uuid=meeting.uuid,
                                         created__gte=timezone.now() - RESTART_WINDOW).count()
    if restarts >= MAX_RESTARTS:
        audit.record_in_meeting("stream_not_restarted", meeting, RESTARTER, share=share, outcome=share.status,
                                reason=f"{reason}: already restarted {restarts} times in "
                                       f"{int(RESTART_WINDOW.total_seconds() // 60)} minutes")
        return None
    audit.record_in_meeting("stream_restart", meeting, RESTARTER, share=share, outcome=Status.STARTING,
                            reason=f"{reason}: restart {restarts + 1} of {MAX_RESTARTS}",
                            detail={"stopped_stream": stream.rtms_stream_id, "stop_reason": stream.stop_reason})
    begin_start(meeting, share, meeting.host_user_id)
    return share
