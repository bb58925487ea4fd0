"""Consent work that runs on the workers (short tasks only)."""

import logging
from datetime import timedelta

from celery import shared_task
from django.utils import timezone

from zoomapp.consent.actions.starting import do_start_failed
from zoomapp.consent.models import Share

log = logging.getLogger("zoomapp.consent")

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
