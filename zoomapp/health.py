"""Health of the parts an operator cares about (docs/DEPLOY.md "Health checks").

Plain `/healthz` is this web process's readiness, what a load balancer asks: its database answers and the stored
secrets decrypt with its FIELD_ENCRYPTION_KEY. Redis and the workers are shared by every web process, and webhooks
are still accepted while they are down, so an outage of theirs must not take every web process out of rotation:
`/healthz?deep=1`, for operators and monitoring, checks them too. Workers prove they are alive by refreshing a
heartbeat key in Redis; the deep check also sends a task through the broker and waits for a worker to answer it,
and reads when beat's reconciler last completed a run (stale: failover is stopped).
"""

import logging
import os
import socket
import threading
import time

from celery import shared_task
from celery.signals import worker_ready, worker_shutdown
from django.conf import settings
from django.db import connection

from rtms.redis_connection import key, redis_client
from rtms.tasks import reconciler_last_run
from zoomapp.marketplace.models import ZoomApp

log = logging.getLogger(__name__)

HEARTBEAT_EVERY = 5
HEARTBEAT_TTL = 15
# A reconciler run waits at most a few statement timeouts, or a dead connection's detection (zoomapp/settings.py).
RECONCILER_LATE_AFTER = 60
_stop_heartbeat = threading.Event()


def check_database():
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return "ok"


def check_secrets():
    """One app's stored secret decrypts: a FIELD_ENCRYPTION_KEY that differs from the one the secrets were saved
    with fails every webhook, and says so here (zoomapp/marketplace/encryption.py)."""
    if ZoomApp.objects.order_by("pk").values_list("webhook_secret_token", flat=True).first() is None:
        return "ok (no app registered yet)"
    return "ok"


def check_redis():
    redis_client().ping()
    return "ok"


def check_worker():
    names = [k.decode().rsplit(":", 1)[-1] for k in redis_client().scan_iter(key("worker", "*"), count=100)]
    if not names:
        raise RuntimeError("no worker heartbeat in the last 15 s; start one with: celery -A zoomapp worker")
    answered_by = ping.apply_async().get(timeout=5)
    return f"ok ({len(names)} alive, task answered by {answered_by})"


def check_reconciler():
    """Beat's reconciler thread places a dead worker's streams again; it records each run it completes."""
    ran = reconciler_last_run()
    if ran is None:
        raise RuntimeError("the reconciler has never run; it runs in beat: celery -A zoomapp beat")
    age = time.time() - ran
    if age > settings.RTMS_RECONCILE_INTERVAL + RECONCILER_LATE_AFTER:
        raise RuntimeError(f"the reconciler last completed a run {age:.0f} s ago (one is due every "
                           f"{settings.RTMS_RECONCILE_INTERVAL:g} s): failover is stopped; see beat's log")
    return f"ok (ran {age:.0f} s ago)"


def report(deep=False):
    """{part: "ok …" | "error: …"} and whether every part is healthy: this process's own parts, and with `deep`
    the shared ones too."""
    checks = [("database", check_database), ("secrets", check_secrets)]
    if deep:
        checks += [("redis", check_redis), ("worker", check_worker), ("reconciler", check_reconciler)]
    parts = {}
    for name, check in checks:
        try:
            parts[name] = check()
        except Exception as exc:  # noqa: BLE001 - any failure is reported by name
            parts[name] = f"error: {exc.__class__.__name__}: {exc}"
    healthy = all(v.startswith("ok") for v in parts.values())
    return parts, healthy


@shared_task(name="zoomapp.ping")
def ping():
    """Which worker process answered: "<host> pid <pid>"."""
    return f"{socket.gethostname()} pid {os.getpid()}"


def _beat(hostname):
    while not _stop_heartbeat.is_set():
        try:
            redis_client().set(key("worker", hostname), int(time.time()), ex=HEARTBEAT_TTL)
        except Exception as exc:  # noqa: BLE001 - Redis down: keep trying, healthz reports it
            log.warning("worker heartbeat failed", extra={"error": str(exc)})
        _stop_heartbeat.wait(HEARTBEAT_EVERY)


@worker_ready.connect
def start_heartbeat(sender, **kwargs):
    threading.Thread(target=_beat, args=(sender.hostname,), name="heartbeat", daemon=True).start()


@worker_shutdown.connect
def stop_heartbeat(sender, **kwargs):
    _stop_heartbeat.set()
    try:
        redis_client().delete(key("worker", sender.hostname))
    except Exception:  # noqa: BLE001, S110 - best effort; the key expires anyway
        pass
