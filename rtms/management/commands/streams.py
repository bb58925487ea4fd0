"""`python manage.py streams`: the live streams (meeting, app, user, state, owner worker, frames/s, lag).

`--all` includes stopped streams of the last hour; `--json` prints one JSON object per line.
"""

import json
from datetime import timedelta

from django.core.management.base import BaseCommand
from django.db.models import Q
from django.utils import timezone

from rtms.models import StreamSession, StreamState
from rtms.stats import live_stream_stats

COLUMNS = ("stream", "meeting", "app", "user", "state", "owner worker", "frames/s", "lag ms", "transcript", "since")


class Command(BaseCommand):
    help = "List live RTMS streams with their holder and data rates."

    def add_arguments(self, parser):
        parser.add_argument("--all", action="store_true", help="also streams stopped in the last hour")
        parser.add_argument("--json", action="store_true", help="one JSON object per stream")

    def handle(self, *args, **options):
        streams = StreamSession.objects.exclude(state=StreamState.STOPPED)
        if options["all"]:
            streams = StreamSession.objects.filter(
                ~Q(state=StreamState.STOPPED) | Q(stopped_at__gte=timezone.now() - timedelta(hours=1)))
        streams = list(streams.order_by("created"))
        try:
            stats = live_stream_stats([s.rtms_stream_id for s in streams])
        except Exception as exc:  # noqa: BLE001 - the list is still useful without live figures
            self.stderr.write(f"live figures unavailable (Redis: {exc})")
            stats = {}
        rows = []
        for stream in streams:
            live = stats.get(stream.rtms_stream_id, {})
            rows.append({
                "stream": stream.rtms_stream_id, "meeting": stream.meeting_uuid, "app": stream.client_id,
                "user": stream.operator_id,
                "state": stream.state + (f" ({stream.stop_reason_name})" if stream.stop_reason_name else ""),
                "owner worker": live.get("worker") or (stream.owner_worker if stream.is_live else ""),
                "frames/s": live.get("frames_per_s", ""), "lag ms": live.get("lag_ms", ""),
                "transcript": stream.transcript_count, "since": stream.created.strftime("%Y-%m-%d %H:%M:%S"),
            })
        if options["json"]:
            for row in rows:
                self.stdout.write(json.dumps(row))
            return
        if not rows:
            self.stdout.write("no live streams")
            return
        widths = [max(len(column), *(len(str(row[column])) for row in rows)) for column in COLUMNS]
        self.stdout.write("  ".join(c.ljust(w) for c, w in zip(COLUMNS, widths)))
        for row in rows:
            self.stdout.write("  ".join(str(row[c]).ljust(w) for c, w in zip(COLUMNS, widths)))
