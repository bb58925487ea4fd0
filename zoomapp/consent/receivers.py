"""Zoom's events and our streams' changes, mapped onto the consent actions (zoomapp.consent.actions).

- `zoom_event` (zoomapp.webhooks.signals): meeting started/ended, participants joined/left, role changes.
- `stream_state_changed` (rtms.signals): every stream transition, whether it came from a webhook
  (rtms_started/stopped/interrupted) or from the worker holding the stream (active once data flows, paused).
- `transcript_received` (rtms.signals): pushed to the app user's panel.

Receivers are called with send_robust after commit: they log and swallow their own errors.
"""

from django.dispatch import receiver

from rtms.signals import stream_state_changed, transcript_received
from zoomapp.consent.actions import presence, sharing_requests, streams
from zoomapp.consent.meetings import get_meeting
from zoomapp.consent.models import Share
from zoomapp.consent.push import push_to_user
from zoomapp.webhooks import meeting_events, request_status
from zoomapp.webhooks.signals import zoom_event


@receiver(zoom_event, dispatch_uid="consent.meeting_events")
def on_zoom_event(sender, meeting_event=None, delivery=None, **kwargs):
    """Meeting events, typed once by zoomapp.webhooks.meeting_events. Participants are keyed by their Zoom user id
    (what app contexts carry as `uid`); a guest has none, so no panel or share of theirs can be bound. Each is
    taken at its delivery's event_ts (Zoom's time): deliveries come out of order (presence.py)."""
    if not isinstance(meeting_event, meeting_events.MEETING_EVENT_TYPES):
        return
    event_ts = delivery.event_ts if delivery is not None else None
    facts = meeting_event.meeting
    meeting = get_meeting(
        sender, facts.uuid, zoom_meeting_id=facts.meeting_id, host_user_id=facts.host_id,
        account_id=facts.account_id, topic=facts.topic,
    )
    if isinstance(meeting_event, meeting_events.MeetingStarted):
        presence.do_host_joined(meeting, meeting.host_user_id, event_ts=event_ts)
        return
    if isinstance(meeting_event, meeting_events.MeetingEnded):
        presence.do_meeting_ended(meeting)
        return
    person = meeting_event.participant
    if person.is_guest:
        return
    user_id = person.zoom_user_id
    if isinstance(meeting_event, meeting_events.ParticipantJoined):
        if meeting_event.is_host:
            presence.do_host_joined(meeting, user_id, person.name, event_ts=event_ts)
        else:
            presence.do_participant_joined(meeting, user_id, person.name, event_ts=event_ts)
    elif isinstance(meeting_event, meeting_events.ParticipantLeft):
        # Host or not is decided on the row under the meeting's lock: a role change may be holding it.
        presence.do_person_left(meeting, user_id, is_host=meeting_event.is_host, event_ts=event_ts)
    else:
        presence.do_role_changed(meeting, user_id, person.name, meeting_event.new_role, event_ts=event_ts)


@receiver(zoom_event, dispatch_uid="consent.request_status")
def on_request_status(sender, meeting_event=None, **kwargs):
    """Zoom's answer to a participant's in-client request (zoomapp.webhooks.request_status)."""
    if isinstance(meeting_event, request_status.RequestStatus):
        meeting = get_meeting(sender, meeting_event.meeting_uuid)
        sharing_requests.do_zoom_request_status(meeting, meeting_event.requester_id, meeting_event.status)


@receiver(stream_state_changed, dispatch_uid="consent.stream_state")
def on_stream_state(sender, stream, previous, reason, **kwargs):
    streams.do_follow_stream(stream)


@receiver(transcript_received, dispatch_uid="consent.transcript")
def on_transcript(sender, lines, **kwargs):
    """One query for every stream of the batch (a worker stores a thousand streams' lines at once)."""
    segments_by_stream = dict(lines)
    shares = Share.objects.filter(rtms_stream_id__in=[stream_id for _, stream_id in segments_by_stream])
    for share in shares.select_related("meeting", "app").order_by("id"):
        # Only the app that holds the stream shows its lines (docs/SECURITY.md "Tenancy").
        segments = segments_by_stream.pop((share.app.client_id, share.rtms_stream_id), None)
        if segments is None:  # another app's share, or a later share of the same stream
            continue
        lines = [{"user_name": s.user_name, "text": s.text, "start_time": s.start_time} for s in segments]
        push_to_user(share, {"type": "panel.transcript", "share": share.pk, "lines": lines})
