"""Zoom's events and our streams' changes, mapped onto the consent services.

- `zoom_event` (zoomapp.webhooks.signals): meeting started/ended, participants joined/left.
- `stream_state_changed` (rtms.signals): every stream transition, whether it came from a webhook
  (rtms_started/stopped/interrupted) or from the worker holding the stream (active once data flows, paused).
- `transcript_received` (rtms.signals): pushed to the app user's panel.

Receivers are called with send_robust after commit: they log and swallow their own errors.
"""

from django.dispatch import receiver

from rtms import live
from rtms.signals import stream_state_changed, transcript_received
from zoomapp.consent import services
from zoomapp.consent.models import Participant, Share
from zoomapp.webhooks.signals import zoom_event

ROLES = {"host": "host", "co-host": "co-host", "cohost": "co-host", "coHost": "co-host"}


def _text(fields, key):
    value = fields.get(key)
    return value[:200] if isinstance(value, str) else ""


def _number(fields, key):
    value = fields.get(key)
    if type(value) is int:
        return str(value)
    return value[:30] if isinstance(value, str) and value.isdigit() else ""


@receiver(zoom_event, dispatch_uid="consent.meeting_events")
def on_zoom_event(sender, event, payload, **kwargs):
    if not event.startswith("meeting.") or "rtms" in event or not isinstance(payload, dict):
        return
    meeting_uuid = _text(payload, "meeting_uuid") or _text(payload, "uuid")
    if not meeting_uuid:
        return
    meeting = services.get_meeting(
        meeting_uuid,
        zoom_meeting_id=_number(payload, "meeting_id") or _number(payload, "id"),
        host_user_id=_text(payload, "host_id"),
        account_id=_text(payload, "account_id"),
        topic=_text(payload, "topic"),
    )
    if event == "meeting.started":
        services.do_host_joined(meeting, meeting.host_user_id)
    elif event == "meeting.ended":
        services.do_meeting_ended(meeting)
    elif event in ("meeting.participant_joined", "meeting.participant_left"):
        person = payload.get("participant") if isinstance(payload.get("participant"), dict) else {}
        user_id = _text(person, "user_id") or _text(person, "id")
        if not user_id:
            return  # a guest: nothing to bind
        role = ROLES.get(person.get("role"), Participant.Role.PARTICIPANT)
        if user_id == meeting.host_user_id:
            role = Participant.Role.HOST if person.get("role") in (None, "", "host") else role
        if event == "meeting.participant_joined":
            if role == Participant.Role.HOST:
                services.do_host_joined(meeting, user_id, _text(person, "user_name"))
            else:
                services.do_participant_joined(meeting, user_id, _text(person, "user_name"), role)
        elif role == Participant.Role.HOST:
            services.do_host_left(meeting, user_id)
        else:
            services.do_participant_left(meeting, user_id)


@receiver(stream_state_changed, dispatch_uid="consent.stream_state")
def on_stream_state(sender, stream, previous, reason, **kwargs):
    services.do_stream_state(
        stream.client_id, stream.meeting_uuid, stream.rtms_stream_id, stream.operator_id, stream.state,
        stop_reason=stream.stop_reason,
    )


@receiver(transcript_received, dispatch_uid="consent.transcript")
def on_transcript(sender, streams, **kwargs):
    """One query for every stream of the batch (a worker stores a thousand streams' lines at once)."""
    segments_by_stream = {stream.rtms_stream_id: segments for stream, segments in streams}
    shares = Share.objects.filter(rtms_stream_id__in=list(segments_by_stream)).select_related("meeting")
    for share in shares.order_by("id"):
        segments = segments_by_stream.pop(share.rtms_stream_id, None)
        if segments is None:  # a later share of the same stream: the first one gets the lines, as before
            continue
        lines = [{"user_name": s.user_name, "text": s.text, "start_time": s.start_time} for s in segments]
        live.push(
            services.user_group(share.meeting.uuid, share.user_id),
            {"type": "panel.transcript", "share": share.pk, "lines": lines},
        )
