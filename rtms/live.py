"""Channels groups for the console's live view of a stream.

Messages carry the stream's full state and its version (never a bare delta): `group_send` silently drops
messages to a full channel, so the next message must repair a missed one.

Message types a consumer receives (`type` is the handler name Channels dispatches to):
- `{"type": "rtms.stream_state", "stream": <StreamSession.snapshot()>}`
- `{"type": "rtms.transcript", "stream_id": ..., "version": ..., "segments": [{user_id, user_name,
  start_time, end_time, language, text}, ...]}`
"""

import asyncio
import hashlib
import logging
import re

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.conf import settings

log = logging.getLogger("rtms.live")

_UNSAFE = re.compile(r"[^a-zA-Z0-9\-_.]")


def stream_group(stream_id):
    """Group name for one stream: only [a-zA-Z0-9-_.], under 100 characters, in this deployment's namespace."""
    name = f"{_UNSAFE.sub('_', settings.REDIS_NAMESPACE)}.rtms.stream.{_UNSAFE.sub('_', str(stream_id))}"
    if len(name) >= 100:
        digest = hashlib.sha256(str(stream_id).encode()).hexdigest()[:32]
        name = f"{_UNSAFE.sub('_', settings.REDIS_NAMESPACE)[:40]}.rtms.stream.{digest}"
    return name


def transcript_message(stream, segments):
    return {
        "type": "rtms.transcript",
        "stream_id": stream.rtms_stream_id,
        "version": stream.version,
        "segments": [
            {
                "user_id": s.user_id,
                "user_name": s.user_name,
                "start_time": s.start_time,
                "end_time": s.end_time,
                "language": s.language,
                "text": s.text,
            }
            for s in segments
        ],
    }


def publish(stream_id, message):
    """Send from synchronous code (views, tasks, the host's database thread). Never raises: a live view is
    repaired by the next message or by re-fetching the snapshot."""
    publish_many([(stream_id, message)])


def publish_many(messages, loop=None):
    """`publish` for many (stream_id, message) pairs. With `loop` (a running event loop in another thread: the
    session host's) the sends are scheduled there and this returns at once; without, one `async_to_sync` call,
    which starts an event loop in a new thread and a new Redis connection: too dear to do per stream."""
    layer = get_channel_layer()
    if layer is None or not messages:
        return

    async def send_all():
        for stream_id, message in messages:
            try:
                await layer.group_send(stream_group(stream_id), message)
            except Exception as exc:  # noqa: BLE001 - Redis down must not fail the change that was committed
                log.warning("live publish failed", extra={"error": repr(exc), "group": stream_group(stream_id)})

    if loop is not None:
        asyncio.run_coroutine_threadsafe(send_all(), loop)
    else:
        async_to_sync(send_all)()


def publish_state(stream):
    publish(stream.rtms_stream_id, {"type": "rtms.stream_state", "stream": stream.snapshot()})
