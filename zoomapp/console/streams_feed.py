"""Live streams in the console: one Channels group per account; a stream's state change pokes it.

The poke carries nothing: each console socket then reads the account's streams again and sends the full table
(never a delta), so a dropped message is repaired by the next one. Sockets also refresh every few seconds
while open, which is what turns the streams' counters into data rates.
"""

import hashlib
from datetime import timedelta

from django.conf import settings
from django.dispatch import receiver
from django.utils import timezone
from redis.exceptions import RedisError

from rtms import placement, pushes
from rtms.models import stop_reason_label
from rtms.signals import stream_state_changed
from zoomapp.console import account_data, display

RECENTLY_STOPPED = timedelta(minutes=30)


def account_group(account_id):
    """Group names allow only [a-zA-Z0-9-_.] and < 100 characters: hash the account id."""
    digest = hashlib.sha256(account_id.encode()).hexdigest()[:32]
    namespace = "".join(c if c.isalnum() or c in "-_." else "_" for c in settings.REDIS_NAMESPACE)[:40]
    return f"{namespace}.console.{digest}"


def streams_snapshot(account_id):
    """Every live (and recently stopped) stream of the account's meetings, with the counters rates come from."""
    streams = list(account_data.account_streams(account_id, recent=timezone.now() - RECENTLY_STOPPED)[:200])
    meetings = {
        (m.app.client_id, m.uuid): m
        for m in account_data.account_meetings(account_id).filter(uuid__in={s.meeting_uuid for s in streams})
    }
    names = account_data.user_names(account_id, {s.operator_id for s in streams})
    apps = account_data.apps_by_client_id()
    waiting = _waiting_for_capacity()
    rows = []
    for stream in streams:
        meeting = meetings.get((stream.client_id, stream.meeting_uuid))
        app = apps.get(stream.client_id)
        since = stream.started_at or stream.created
        rows.append({
            "stream_id": stream.rtms_stream_id,
            "meeting": (meeting.topic if meeting and meeting.topic else stream.meeting_uuid),
            "meeting_uuid": stream.meeting_uuid,
            "app": app.name if app else stream.client_id,
            "app_user": names.get(stream.operator_id) or stream.operator_id,
            "state": stream.state,
            "stop_reason": stream.stop_reason_name,
            "stop_reason_label": stop_reason_label(stream.stop_reason_name or stream.stop_reason),
            "owner_worker": stream.owner_worker,
            # Every worker process full (rtms/placement.py): the stream waits for room, shown where its holder is.
            "worker": ("Waiting for a worker with room" if stream.rtms_stream_id in waiting
                       else display.worker_label(stream.owner_worker)),
            "since": since.isoformat(),
            "version": stream.version,
            "counters": {
                "audio_bytes": stream.audio_bytes,
                "video_frames": stream.video_frames + stream.deskshare_frames,
                "transcript": stream.transcript_count,
                "chat": stream.chat_count,
            },
        })
    return {"at": timezone.now().isoformat(), "streams": rows}


def _waiting_for_capacity():
    try:
        return placement.waiting_streams()
    except RedisError:  # the table shows without it; the metric rtms_streams_waiting_for_capacity says NaN
        return {}


RATE_WINDOW_SECONDS = 10.0
MIN_RATE_SECONDS = 6.0


def with_rates(snapshot, history, now):
    """Rates from the counters' growth over the last RATE_WINDOW_SECONDS of this socket's snapshots (`history`, a
    deque it keeps). The sinks update the counters in batches every 2 s, so a shorter window would alias into
    spikes; under MIN_RATE_SECONDS of history a stream shows no rate yet."""
    history.append((now, {row["stream_id"]: row["counters"] for row in snapshot["streams"]}))
    while len(history) > 2 and now - history[1][0] >= RATE_WINDOW_SECONDS:
        history.popleft()
    for row in snapshot["streams"]:
        first = next(((at, counters[row["stream_id"]]) for at, counters in history if row["stream_id"] in counters),
                     None)
        elapsed = now - first[0]
        if elapsed < MIN_RATE_SECONDS or row["state"] == "stopped":
            row["rates"] = None
            continue
        grow = {k: max(row["counters"][k] - first[1].get(k, 0), 0) for k in row["counters"]}
        row["rates"] = {
            "audio_kbps": round(grow["audio_bytes"] * 8 / 1000 / elapsed, 1),
            "video_fps": round(grow["video_frames"] / elapsed, 1),
            "transcript_per_min": round(grow["transcript"] * 60 / elapsed, 1),
            "chat_per_min": round(grow["chat"] * 60 / elapsed, 1),
        }
    return snapshot


@receiver(stream_state_changed, dispatch_uid="console.streams_feed.stream_state")
def on_stream_state_changed(sender, stream=None, **kwargs):
    account_id = account_data.meeting_account(stream.client_id, stream.meeting_uuid)
    if not account_id:
        return
    pushes.push(account_group(account_id), {"type": "console.streams_changed"})
