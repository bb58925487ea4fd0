"""The data lifecycle: what is deleted, when, and the audit entry that says so (deletions are never silent).

- `app_deauthorized` (a user removed the app, docs/ZOOM.md §8.5): that user's tokens for that app go at once, in
  the webhook's request (console/receivers.py); the media of every stream the user started with that app goes in a task
  (`console.delete_user_data`), and live ones are asked to stop (Zoom stops them with STREAM_REVOKED too).
- STREAM_REVOKED (rtms deletes that stream's media at once) and retention: rtms erases, announces
  `stream_content_erased`, and console/receivers.py records it.
- An admin deletes one meeting's stored data from the console (`delete_meeting_data`).
- Per-app retention chosen by each account (`console.purge_by_app_retention`, on beat): shorter than the
  deployment's MEDIA_RETENTION_DAYS, which rtms applies to everything.
- Zoom's webhook deliveries as received go after WEBHOOK_DELIVERY_RETENTION_DAYS (`webhooks.purge_old_deliveries`),
  and a meeting's with its data.
"""

import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.db import transaction
from django.db.models import Count, Sum
from django.utils import timezone

from rtms import services, stream_content
from rtms.models import StreamSession, StreamState
from rtms.storage import StorageError
from zoomapp.consent.audit import record
from zoomapp.consent.models import Meeting
from zoomapp.console.models import AppRetention
from zoomapp.marketplace.app_context import CLOCK_SKEW_MS
from zoomapp.marketplace.models import PendingAuthorization, UserAuthorization, ZoomApp
from zoomapp.webhooks.models import WebhookDelivery

log = logging.getLogger("zoomapp.lifecycle")

DEAUTHORIZED = "app_deauthorized"


class StillStreaming(Exception):
    """A meeting's data cannot be deleted while one of its streams still runs (it would keep writing)."""


# --- deauthorization ----------------------------------------------------------------------------------------------


@transaction.atomic
def delete_user_tokens(app, user_id, account_id, deauthorized_ms=None):
    """The user's grant and pending authorizations to `app`, made before Zoom's deauthorization at
    `deauthorized_ms` (its event_ts; all of them without one): a grant made after it is a reinstall the late
    delivery is not about (docs/SECURITY.md "A late deauthorization"). Our clock and Zoom's may be CLOCK_SKEW_MS
    apart: a grant made within that of the deauthorization is taken as older, and goes."""
    grants = UserAuthorization.objects.filter(app=app, user_id=user_id)
    pending = PendingAuthorization.objects.filter(app=app, user_id=user_id)
    kept = 0
    if deauthorized_ms is not None:
        made_since = {"created__gt": datetime.fromtimestamp((deauthorized_ms + CLOCK_SKEW_MS) / 1000, tz=UTC)}
        kept = grants.filter(**made_since).count()
        grants, pending = grants.exclude(**made_since), pending.exclude(**made_since)
    tokens = grants.delete()[0]
    pending = pending.delete()[0]
    detail = {"account_id": account_id, "authorizations": tokens, "pending_authorizations": pending}
    if kept:
        detail["kept_made_after_deauthorization"] = kept
    record(
        "tokens_deleted", app=app, actor_user_id=user_id, actor_role="user", subject_user_id=user_id,
        outcome="deleted", reason="the user removed the app (app_deauthorized)", source="webhook", detail=detail,
    )
    log.info("tokens deleted on deauthorization", extra={"client_id": app.client_id, "user": user_id,
                                                         "authorizations": tokens})
    return tokens


def delete_user_data(client_id, user_id, account_id):
    """Every stream this user started with this app loses its stored content; running ones are stopped first.
    A grant the user holds now was made after the deauthorization (delete_user_tokens left only such a one): the
    streams started since it was made are the reinstalled app's, and stay (docs/SECURITY.md "A late
    deauthorization")."""
    app = ZoomApp.by_client_id(client_id)
    streams = StreamSession.objects.filter(client_id=client_id, operator_id=user_id)
    reinstalled = (UserAuthorization.objects.filter(app__client_id=client_id, user_id=user_id)
                   .values_list("created", flat=True).first())
    if reinstalled is not None:
        streams = streams.filter(created__lt=reinstalled)
    streams = list(streams)
    for stream in streams:
        if stream.state != StreamState.STOPPED:
            # Zoom stops them itself (STREAM_REVOKED); asking too means nothing more is written meanwhile.
            services.request_stop(stream.rtms_stream_id, reason="app deauthorized")
        if not stream.media_deleted:  # erased by an earlier try of this task (console/tasks.py) or otherwise
            stream_content.erase_stream_content(stream, why=DEAUTHORIZED)
    record(
        "user_data_deleted", app=app, actor_user_id=user_id, actor_role="user", subject_user_id=user_id,
        outcome="deleted", reason="the user removed the app (app_deauthorized)", source="task",
        detail={"account_id": account_id, "streams": [s.rtms_stream_id for s in streams]},
    )
    log.info("user data deleted on deauthorization", extra={"client_id": client_id, "user": user_id,
                                                            "streams": len(streams)})
    return len(streams)


# --- an admin deletes a meeting's data ----------------------------------------------------------------------------


@dataclass
class MeetingDataDeletion:
    """What deleting a meeting's data did: the streams erased now, and those whose storage refused (id -> why)."""

    erased: list
    failed: dict

    @property
    def outcome(self):
        if not self.failed:
            return "deleted"
        return "partial" if self.erased else "failed"


def delete_meeting_data(admin, meeting, address=""):
    """Erase what one app stored from one meeting (its streams of that meeting: meetings are per app), then record
    what was done. A stream whose storage refuses keeps its content and is reported (the entry's outcome "partial"
    or "failed", with why); asking again erases what is left: streams erased before are not touched again."""
    streams = list(StreamSession.objects.filter(meeting_uuid=meeting.uuid, client_id=meeting.app.client_id))
    if any(s.state != StreamState.STOPPED for s in streams):
        raise StillStreaming(meeting.uuid)
    result = MeetingDataDeletion(erased=[], failed={})
    for stream in streams:
        if stream.media_deleted:
            continue
        try:
            stream_content.erase_stream_content(stream, why="admin_deleted_meeting_data")
        except StorageError as exc:
            result.failed[stream.rtms_stream_id] = str(exc)
        else:
            result.erased.append(stream.rtms_stream_id)
    # Zoom's deliveries about the meeting, as received: participants' names and emails among them.
    WebhookDelivery.objects.filter(app=meeting.app, meeting_uuid=meeting.uuid).delete()
    reason = "an admin deleted this meeting's data"
    if result.failed:
        reason += "; storage refused: " + "; ".join(f"stream {stream_id}: {why}"
                                                    for stream_id, why in result.failed.items())
    record(
        "meeting_data_deleted", app=meeting.app, meeting_uuid=meeting.uuid, actor_user_id=admin.user_id,
        actor_role=admin.audit_role, outcome=result.outcome, reason=reason, source="console", address=address,
        detail={"account_id": admin.account_id, "streams": [s.rtms_stream_id for s in streams],
                "erased": result.erased, "failed": result.failed},
    )
    (log.error if result.failed else log.info)("meeting data deleted", extra={
        "meeting": meeting.uuid, "admin": admin.user_id, "outcome": result.outcome, "erased": len(result.erased),
        "failed": len(result.failed)})
    return result


def meeting_data_summary(meetings):
    """Per meeting row (one app's view of a meeting): that app's streams of it and what they still store."""
    meetings = list(meetings)
    streams = StreamSession.objects.filter(meeting_uuid__in=[m.uuid for m in meetings])
    stats = {
        (row["client_id"], row["meeting_uuid"]): row
        for row in streams.values("client_id", "meeting_uuid")
        .annotate(streams=Count("id"), transcript=Sum("transcript_count"), chat=Sum("chat_count"),
                  audio_bytes=Sum("audio_bytes"), video_frames=Sum("video_frames"))
    }
    live = set(streams.exclude(state=StreamState.STOPPED).values_list("client_id", "meeting_uuid"))
    kept = set(streams.filter(media_deleted=False).values_list("client_id", "meeting_uuid"))
    keys = [(m, (m.app.client_id, m.uuid)) for m in meetings]
    return [(m, stats.get(key, {}), key in live, key in kept) for m, key in keys]


# --- per-app retention --------------------------------------------------------------------------------------------


def purge_by_app_retention(now=None, seconds=stream_content.PURGE_SECONDS):
    """Erase what each account's per-app retention says is too old, for `seconds` at most (the rest waits for the
    next run); returns how many streams were erased."""
    now = now or timezone.now()
    deadline = time.monotonic() + seconds
    erased = 0
    for setting in AppRetention.objects.select_related("app"):
        cutoff = now - timedelta(days=setting.days)
        expired = StreamSession.objects.filter(
            client_id=setting.app.client_id, state=StreamState.STOPPED, stopped_at__lt=cutoff, media_deleted=False,
            meeting_uuid__in=Meeting.objects.filter(account_id=setting.account_id, app=setting.app).values("uuid"),
        )
        count, finished = stream_content.erase_until(
            expired.iterator(), f"retention ({setting.days} days, set by the account)", deadline)
        erased += count
        if not finished:
            log.info("per-app retention purge continues at its next run", extra={"erased": erased})
            break
    return erased
