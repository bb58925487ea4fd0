"""Pushes to Channels groups from synchronous code (views, Celery tasks, the session host's threads), and the one
way groups are named. The panels' and the console's consumers join these groups.

Messages carry full state and its version (never a bare delta): a push reaches only the sockets listening at that
moment (Redis pub/sub, zoomapp/settings.py CHANNEL_LAYERS), so the next message must repair a missed one
(docs/ARCHITECTURE.md "Pushing state").
"""

import asyncio
import atexit
import hashlib
import logging
import os
import re
import threading

from channels.layers import get_channel_layer
from django.conf import settings

log = logging.getLogger("rtms.pushes")

_UNSAFE = re.compile(r"[^a-zA-Z0-9\-_.]")


class _Publisher:
    """One event loop per process, in its own thread, sends every push made from synchronous code (views,
    Celery tasks, the session host's database threads), in the order they were made.

    `async_to_sync` from a plain thread would start a new thread, a new event loop and a new Redis connection
    (the channel layer keeps its pool per loop) for each push: dear when a thousand streams connect at once.
    A push here is a hand-off to the queue; it never waits for Redis. At exit, what is queued gets up to 2 s
    to go out (a management command that changed something).
    """

    def __init__(self):
        self._lock = threading.Lock()
        self._loop = None
        self._queue = None
        self._pid = None

    def push(self, group, message):
        loop, queue = self._running()
        loop.call_soon_threadsafe(queue.put_nowait, (group, message))

    def _running(self):
        with self._lock:
            if self._loop is None or self._pid != os.getpid():  # a forked worker child needs its own thread
                self._loop, self._queue, self._pid = asyncio.new_event_loop(), asyncio.Queue(), os.getpid()
                threading.Thread(target=self._loop.run_until_complete, args=(self._send_in_order(self._queue),),
                                 name="live-publisher", daemon=True).start()
                atexit.register(self._drain, self._loop, self._queue, self._pid)
            return self._loop, self._queue

    @staticmethod
    def _drain(loop, queue, pid, timeout=2.0):
        if pid != os.getpid():  # registered before a fork: that thread is not in this process
            return
        try:
            asyncio.run_coroutine_threadsafe(queue.join(), loop).result(timeout)
        except Exception as exc:  # noqa: BLE001 - exiting anyway
            log.warning("live pushes not sent before exit", extra={"error": repr(exc)})

    @staticmethod
    async def _send_in_order(queue):
        while True:
            group, message = await queue.get()
            layer = get_channel_layer()
            try:
                if layer is not None:
                    await layer.group_send(group, message)
            except Exception as exc:  # noqa: BLE001 - Redis down must not fail the change that was committed
                log.warning("live push failed", extra={"group": group, "error": repr(exc)})
            finally:
                queue.task_done()


_publisher = _Publisher()


def push(group, message):
    """Send `message` to a Channels group from synchronous code. Returns at once and never raises: the state
    change it announces is already committed, and a missed push is repaired by the next one (full state and
    version) or by the client re-fetching."""
    _publisher.push(group, message)


def group_name(kind, *parts):
    """The one way a Channels group is named: this deployment's namespace, what the group is for, and a digest of
    the ids it is for (group names allow only [a-zA-Z0-9-_.] and under 100 characters; ids such as meeting UUIDs
    hold '+', '/' and '='). E.g. group_name("meeting", client_id, meeting_uuid)."""
    digest = hashlib.sha256("\0".join(parts).encode()).hexdigest()[:40]
    return f"{_UNSAFE.sub('_', settings.REDIS_NAMESPACE)[:40]}.{kind}.{digest}"
