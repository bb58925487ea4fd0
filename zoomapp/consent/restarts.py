"""Zoom's reconnection case 4 (docs/STREAMS.md): Zoom ended a stream with an error (stop_reason 10–19 or 24) while
the meeting still wants it, so the app starts it again through Zoom, as a host's start would be (REST
rtms_app/status action start with the host's token, falling back to the user's panel when REST cannot).

Bounded: at most MAX_RESTARTS per meeting and app within RESTART_WINDOW, so an error that comes back every time
(an entitlement, reason 18) ends after a few tries. Every decision is in the audit log with Zoom's reason:
`stream_restart` (a restart asked for) or `stream_not_restarted` (the bound was reached).
"""

import logging
from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from zoomapp.consent import services
from zoomapp.consent.models import AuditEntry, Share
from zoomapp.marketplace.models import ZoomApp

log = logging.getLogger("zoomapp.consent.restarts")

ERROR_STOP_REASONS = frozenset((*range(10, 20), 24))
MAX_RESTARTS = 3
RESTART_WINDOW = timedelta(minutes=10)
RESTARTER = services.Actor("app", "Stream restart", "stream")


def restart_after_error_stop(stream):
    """From the stream_state_changed receiver, after the share took Zoom's stop: restart when it is wanted."""
    if stream.state != "stopped" or stream.stop_reason not in ERROR_STOP_REASONS:
        return None
    app = ZoomApp.objects.filter(client_id=stream.client_id).first()
    if app is None:
        return None
    with transaction.atomic():
        meeting = services._lock(services.get_meeting(app, stream.meeting_uuid))
        share = Share.objects.select_for_update().filter(meeting=meeting, rtms_stream_id=stream.rtms_stream_id).first()
        if share is None or meeting.ended_at is not None or not meeting.share_with_apps or share.stop_intent \
                or share.status != Share.Status.STOPPED:
            return None  # the meeting no longer wants it: someone chose to stop it, or sharing went off
        reason = f"{services.STOP_REASON_NAMES.get(stream.stop_reason, stream.stop_reason)} ({stream.stop_reason})"
        restarts = AuditEntry.objects.filter(kind="stream_restart", app=app, meeting_uuid=meeting.uuid,
                                             created__gte=timezone.now() - RESTART_WINDOW).count()
        if restarts >= MAX_RESTARTS:
            services._audit("stream_not_restarted", meeting, RESTARTER, share=share, outcome=share.status,
                            reason=f"{reason}: already restarted {restarts} times in "
                                   f"{int(RESTART_WINDOW.total_seconds() // 60)} minutes")
            return None
        services._audit("stream_restart", meeting, RESTARTER, share=share, outcome=Share.Status.STARTING,
                        reason=f"{reason}: restart {restarts + 1} of {MAX_RESTARTS}",
                        detail={"stopped_stream": stream.rtms_stream_id, "stop_reason": stream.stop_reason})
        services._begin_start(meeting, share, meeting.host_user_id)
    return share
