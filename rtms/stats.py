"""Live per-stream figures (frames/s, bytes/s, send→store lag) published by the session host every couple of
seconds into one Redis hash, for the `streams` command and the admin console:

    live_stream_stats(["<stream id>", ...]) -> {stream_id: {"worker", "frames_per_s", "bytes_per_s",
                                                            "lag_ms", "reconnects", "at"}}

Entries older than STALE_SECONDS (a holder that died) are left out.
"""

import json
import time

from rtms.redis_connection import key, redis_client

STALE_SECONDS = 10


def stats_key():
    return key("rtms", "stats")


def live_stream_stats(stream_ids=None):
    client = redis_client()
    if stream_ids is None:
        raw = client.hgetall(stats_key())
    else:
        stream_ids = list(stream_ids)
        values = client.hmget(stats_key(), stream_ids) if stream_ids else []
        raw = {s: v for s, v in zip(stream_ids, values) if v}
    now = time.time()
    stats = {}
    for stream_id, value in raw.items():
        figures = json.loads(value)
        if now - figures.get("at", 0) <= STALE_SECONDS:
            stats[stream_id.decode() if isinstance(stream_id, bytes) else stream_id] = figures
    return stats
