"""Short Celery tasks (early ack, short time limits): streams live in the session host, never in a task.

- `reconcile()` (the reconciler thread of beat's process, every RTMS_RECONCILE_INTERVAL; not a task): place
  again running streams with no lease (a process with room claims them: rtms/placement.py), repeat the stop for
  streams that should not run but still have one. As a task it waited for a free pool slot, which the purges
  below may hold for minutes, and expired meanwhile: a dead worker's streams were not placed again within Zoom's
  60 s (docs/ARCHITECTURE.md, "The reconciler").
- `rtms.delete_stream_media(stream_id)`: STREAM_REVOKED — the stream's stored content goes at once (its time limit
  outlasts S3 not answering).
- `rtms.export_stream_text(stream_id)`: after a stream stopped, its transcript and chat go to storage beside its
  media (`rtms/<stream id>/transcript.jsonl`, `chat.jsonl`).
- `rtms.purge_expired_media()` (beat, every 10 minutes): retention (MEDIA_RETENTION_DAYS), 5 minutes of work at
  most per run.
"""

import logging
import time
from datetime import timedelta

from celery import shared_task
from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.db import close_old_connections, connection
from django.db.models import Q
from django.utils import timezone

from rtms import holder_messages, leases, placement, stream_content
from rtms.models import DesiredState, StreamSession, StreamState
from rtms.redis_connection import key, redis_client
from rtms.storage import StorageError

log = logging.getLogger("rtms.tasks")

_SHORT = {"acks_late": False, "ignore_result": True, "time_limit": 30, "soft_time_limit": 20}


RECONCILER_STATEMENT_TIMEOUT_MS = 10_000  # its queries take milliseconds; one waiting longer is stuck, not slow


def run_reconciler():
    """Beat's reconciler thread (zoomapp/celery.py): `reconcile()` every RTMS_RECONCILE_INTERVAL for as long as
    beat runs, on a connection of its own (kept, checked before each run as a task's is, its statements cut after
    RECONCILER_STATEMENT_TIMEOUT_MS). Each run that completes records its time in Redis, which /healthz?deep=1
    reports (zoomapp/health.py): a reconciler stuck or failing stops failover and must be seen."""
    while True:
        time.sleep(settings.RTMS_RECONCILE_INTERVAL)
        try:
            close_old_connections()
            if connection.vendor == "postgresql":
                with connection.cursor() as cursor:
                    cursor.execute(f"SET statement_timeout = {RECONCILER_STATEMENT_TIMEOUT_MS}")
            reconcile()
            redis_client().set(key("reconciler"), time.time(), ex=86400)
        except Exception:  # PostgreSQL or Redis away: the next run repeats it
            log.exception("reconcile failed, retried at the next run")


def reconciler_last_run():
    """When the reconciler last completed a run (time.time()), or None when none is recorded."""
    ran = redis_client().get(key("reconciler"))
    return None if ran is None else float(ran)


def reconcile():
    recently = timezone.now() - timedelta(hours=1)
    running = list(
        StreamSession.objects.filter(desired_state=DesiredState.RUNNING).exclude(state=StreamState.STOPPED)
        .values_list("rtms_stream_id", flat=True)
    )
    ending = list(
        StreamSession.objects.filter(Q(desired_state=DesiredState.STOPPED) | Q(state=StreamState.STOPPED))
        .filter(updated__gte=recently).values_list("rtms_stream_id", flat=True)
    )
    held = leases.holders(running + ending)
    orphans = [s for s in running if held.get(s) is None]
    placement.place_many(orphans)
    placement.stop_waiting(set(placement.waiting_streams()) - set(running))
    lingering = [s for s in ending if held.get(s)]
    for stream_id in lingering:
        holder_messages.send_stop(stream_id)
    if orphans or lingering:
        log.info("reconciled", extra={"reclaimed": len(orphans), "stops_repeated": len(lingering)})
    return {"reclaimed": len(orphans), "stops_repeated": len(lingering)}


# Storage refusing or not answering (an S3 outage) is tried again, backing off up to an hour: the stream's content
# must go. One S3 call that gets no answer gives up after about 5 minutes (rtms/storage.py: 6 tries of a 5 s connect
# and a 30 s read, up to 20 s apart), so the soft limit lets it end and the hard limit, which kills the pool process
# with every stream it holds, stays well beyond; a soft limit reached anyway is retried like a refusal.
@shared_task(name="rtms.delete_stream_media", autoretry_for=(StorageError, SoftTimeLimitExceeded), max_retries=None,
             retry_backoff=5, retry_backoff_max=3600, acks_late=False, ignore_result=True, soft_time_limit=420,
             time_limit=600)
def delete_stream_media(stream_id):
    stream = StreamSession.objects.filter(rtms_stream_id=stream_id).first()
    if stream is not None:
        stream_content.erase_stream_content(stream, why="stream_revoked")


@shared_task(name="rtms.export_stream_text", **_SHORT)
def export_stream_text(stream_id):
    """A stopped stream's transcript and chat, exported to storage beside its media (rtms/stream_content.py)."""
    stream = StreamSession.objects.filter(rtms_stream_id=stream_id, media_deleted=False).first()
    return stream_content.export_text(stream) if stream is not None else None


@shared_task(name="rtms.purge_expired_media", acks_late=False, ignore_result=True, soft_time_limit=540,
             time_limit=600)
def purge_expired_media(seconds=stream_content.PURGE_SECONDS):
    """Erase what is older than MEDIA_RETENTION_DAYS for `seconds` at most; what is left waits for the next run."""
    cutoff = timezone.now() - timedelta(days=settings.MEDIA_RETENTION_DAYS)
    expired = StreamSession.objects.filter(state=StreamState.STOPPED, stopped_at__lt=cutoff, media_deleted=False)
    erased, finished = stream_content.erase_until(expired.iterator(), "retention", time.monotonic() + seconds)
    if not finished:
        log.info("retention purge continues at its next run", extra={"erased": erased})
    return erased
