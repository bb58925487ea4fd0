"""Application messages to the session hosts (never Celery revoke): published on one Redis channel that every
host subscribes to; the host holding the stream acts, the others ignore it. A lost message is repaired by the
reconciler, which repeats the stop for every stream that should not run but still has a lease.
"""

import json
import logging

from rtms.redis_connection import key, redis_client

log = logging.getLogger("rtms.control")


def control_channel():
    return key("rtms", "control")


def send_stop(stream_id):
    try:
        redis_client().publish(control_channel(), json.dumps({"action": "stop", "stream_id": stream_id}))
    except Exception as exc:  # noqa: BLE001 - the reconciler repeats stops
        log.warning("stop message not published, the reconciler will repeat it",
                    extra={"stream": stream_id, "error": repr(exc)})

