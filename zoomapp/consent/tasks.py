"""Consent work that runs on the workers (short tasks only)."""

import logging
from datetime import timedelta

from celery import shared_task
from django.utils import timezone

from rtms.models import StreamSession, StreamState
from zoomapp.consent.actions.starting import do_start_failed
from zoomapp.consent.actions.streams import do_follow_stream
from zoomapp.consent.models import Share

log = logging.getLogger("zoomapp.consent")

# A stream's change is announced to consent after it commits; an announcement lost on the way (the database
# restarting between the two) leaves the share behind its stream until this long has passed.
ANNOUNCEMENT_GRACE = timedelta(seconds=30)
# An approved share whose stream Zoom never started (no webhook after a REST 204, or the requester's panel
# closed before zoomSdk.startRTMS() answered) stops waiting after this long.
STARTING_TIMEOUT = timedelta(minutes=2)


@shared_task(name="consent.fail_stuck_starts", ignore_result=True, soft_time_limit=25, time_limit=30)
def fail_stuck_starts():
    cutoff = timezone.now() - STARTING_TIMEOUT
    stuck = Share.objects.filter(status=Share.Status.STARTING, rtms_stream_id="", updated__lt=cutoff)
    failed = 0
    for share_id, attempt in stuck.values_list("id", "start_attempt"):
        do_start_failed(share_id, attempt, Share.Status.HOST_CANNOT_APPROVE, reason="Zoom never started the stream")
        failed += 1
    if failed:
        log.info("stuck starts failed", extra={"count": failed})
    return failed


@shared_task(name="consent.catch_up_with_streams", ignore_result=True, soft_time_limit=25, time_limit=30)
def catch_up_with_streams():
    """Shares left behind by a lost announcement of their stream's change, made to follow it: a stream that stopped
    while its share still shows it running ("Sharing", and no restart after Zoom's error stop), or one that runs
    while its share still says "Starting…". Only changes older than ANNOUNCEMENT_GRACE, so an announcement on its
    way is not raced."""
    settled = StreamSession.objects.filter(updated__lt=timezone.now() - ANNOUNCEMENT_GRACE)
    running = Share.objects.filter(status__in=Share.ACTIVE).exclude(rtms_stream_id="")
    # Two reads, each from the few running shares to their streams (one with both conditions OR-ed read every
    # stream: docs/PERFORMANCE.md).
    stopped = settled.filter(state=StreamState.STOPPED, rtms_stream_id__in=running.values("rtms_stream_id"))
    flowing = settled.filter(state=StreamState.ACTIVE, rtms_stream_id__in=running.filter(
        status=Share.Status.STARTING).values("rtms_stream_id"))
    caught_up = 0
    for stream in [*stopped, *flowing]:
        log.warning("share behind its stream, caught up", extra={
            "stream": stream.rtms_stream_id, "meeting": stream.meeting_uuid, "state": stream.state})
        do_follow_stream(stream)
        caught_up += 1
    return caught_up
