"""Application messages to the session hosts (never Celery revoke): published on one Redis channel that every
host subscribes to; the host holding the stream acts, the others ignore it.

- stop: end the stream (a lost one is repaired by the reconciler, which repeats the stop for every stream that
  should not run but still has a lease);
- move: Zoom re-sent rtms_started with new server_urls, its RTMS server failed: reconnect there at once
  (docs/STREAMS.md, case 1; a lost one costs Zoom's window, after which the reconciler claims with the new URLs);
- interrupted: Zoom sent rtms_interrupted: check the signaling socket still answers (docs/STREAMS.md, case 2);
- drain: a worker node got SIGTERM: each of its pool processes hands every stream over (a lost one waits for
  Celery's warm shutdown to reach the pool processes, which then hand over all the same).
"""

import json
import logging

from rtms.redis_connection import key, redis_client

log = logging.getLogger("rtms.holder_messages")


def control_channel():
    return key("rtms", "control")


def _publish(message):
    try:
        redis_client().publish(control_channel(), json.dumps(message))
    except Exception as exc:  # noqa: BLE001 - see the module docstring for what repairs each
        log.warning("control message not published", extra={"stream": message.get("stream_id"),
                                                             "action": message["action"], "error": repr(exc)})


def send_stop(stream_id):
    _publish({"action": "stop", "stream_id": stream_id})


def send_move(stream_id, server_urls):
    _publish({"action": "move", "stream_id": stream_id, "server_urls": server_urls})


def send_interrupted(stream_id):
    _publish({"action": "interrupted", "stream_id": stream_id})


def send_drain(node):
    _publish({"action": "drain", "node": node})
