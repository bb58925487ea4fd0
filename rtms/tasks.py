"""Short Celery tasks (early ack, short time limits): streams live in the session host, never in a task.

- `rtms.claim(stream_id)`: take the stream's lease and hand it to this process's session host; a loser does
  nothing, so duplicates are harmless. A stream claimed RTMS_MAX_CONNECT_CLAIMS times without connecting once
  ends FAILED_NOT_CONNECTED instead of another claim (the reconciler would re-claim it forever).
- `rtms.stop(stream_id, reason)`: desired state stopped + an application message to the holder.
- `rtms.reconcile()` (beat, every RTMS_RECONCILE_INTERVAL): re-claim running streams with no lease, repeat the
  stop for streams that should not run but still have one.
- `rtms.delete_stream_media(stream_id)`: STREAM_REVOKED — the stream's stored content goes at once.
- `rtms.purge_expired_media()` (beat, hourly): retention (MEDIA_RETENTION_DAYS).
"""

import logging
from datetime import timedelta

from celery import shared_task
from django.conf import settings
from django.db.models import F, Q
from django.utils import timezone

from rtms import control, leases, media, services
from rtms.models import DesiredState, StreamFailure, StreamSession, StreamState

log = logging.getLogger("rtms.tasks")

_SHORT = {"acks_late": False, "ignore_result": True, "time_limit": 30, "soft_time_limit": 20}


@shared_task(name="rtms.claim", **_SHORT)
def claim(stream_id):
    from rtms.host import current_host

    host = current_host()
    if host is None or not host.accepting:
        log.info("claim skipped: no session host accepting streams here", extra={"stream": stream_id})
        return "no_host"
    if host.holds(stream_id):
        return "already_held"
    stream = StreamSession.objects.filter(rtms_stream_id=stream_id).first()
    if stream is None or stream.desired_state != DesiredState.RUNNING or stream.state == StreamState.STOPPED:
        return "not_running"
    value = leases.new_lease_value(host.worker_id)
    if not leases.try_acquire(stream_id, value):
        return "held_elsewhere"
    if stream.connect_claims >= settings.RTMS_MAX_CONNECT_CLAIMS:
        leases.release(stream_id, value)
        services.stream_failed(stream_id, StreamFailure.NOT_CONNECTED,
                               f"not connected after {stream.connect_claims} claims", worker=host.worker_id)
        return "failed"
    try:
        StreamSession.objects.filter(pk=stream.pk).update(
            lease_generation=F("lease_generation") + 1, connect_claims=F("connect_claims") + 1,
            owner_worker=host.worker_id, updated=timezone.now()
        )
        stream.refresh_from_db()
        host.hand(stream, value)
    except Exception:
        leases.release(stream_id, value)
        raise
    log.info("stream claimed", extra={"stream": stream_id, "meeting": stream.meeting_uuid,
                                      "worker": host.worker_id, "generation": stream.lease_generation})
    return "claimed"


@shared_task(name="rtms.stop", **_SHORT)
def stop(stream_id, reason="stop requested"):
    return services.request_stop(stream_id, reason)


@shared_task(name="rtms.reconcile", **_SHORT)
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
    for stream_id in orphans:
        claim.delay(stream_id)
    lingering = [s for s in ending if held.get(s)]
    for stream_id in lingering:
        control.send_stop(stream_id)
    if orphans or lingering:
        log.info("reconciled", extra={"reclaimed": len(orphans), "stops_repeated": len(lingering)})
    return {"reclaimed": len(orphans), "stops_repeated": len(lingering)}


@shared_task(name="rtms.delete_stream_media", **_SHORT)
def delete_stream_media(stream_id):
    stream = StreamSession.objects.filter(rtms_stream_id=stream_id).first()
    if stream is not None:
        media.erase_stream_content(stream, why="stream_revoked")


@shared_task(name="rtms.purge_expired_media", acks_late=False, ignore_result=True, time_limit=600)
def purge_expired_media():
    cutoff = timezone.now() - timedelta(days=settings.MEDIA_RETENTION_DAYS)
    expired = StreamSession.objects.filter(state=StreamState.STOPPED, stopped_at__lt=cutoff, media_deleted=False)
    count = 0
    for stream in expired.iterator():
        media.erase_stream_content(stream, why="retention")
        count += 1
    return count
