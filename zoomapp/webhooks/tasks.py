"""Webhook deliveries as Zoom sent them are kept WEBHOOK_DELIVERY_RETENTION_DAYS (beat, every 10 minutes)."""

import logging
import time
from datetime import timedelta

from celery import shared_task
from django.conf import settings
from django.utils import timezone

from rtms.stream_content import PURGE_SECONDS
from zoomapp.webhooks.models import WebhookDelivery

log = logging.getLogger("zoomapp.webhooks")

BATCH = 5000


@shared_task(name="webhooks.purge_old_deliveries", acks_late=False, ignore_result=True, soft_time_limit=540,
             time_limit=600)
def purge_old_deliveries(seconds=PURGE_SECONDS):
    """Delete the deliveries older than the retention, BATCH rows per statement, for `seconds` at most (the rest
    waits for the next run); returns how many were deleted."""
    cutoff = timezone.now() - timedelta(days=settings.WEBHOOK_DELIVERY_RETENTION_DAYS)
    deadline = time.monotonic() + seconds
    deleted = 0
    while True:
        ids = list(WebhookDelivery.objects.filter(received_at__lt=cutoff).values_list("id", flat=True)[:BATCH])
        if ids:
            deleted += WebhookDelivery.objects.filter(id__in=ids).delete()[0]
        if len(ids) < BATCH:
            break
        if time.monotonic() >= deadline:
            log.info("webhook deliveries purge continues at its next run", extra={"deleted": deleted})
            break
    return deleted
