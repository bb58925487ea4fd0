"""Zoom's account-level RTMS concurrency events: `rtms.concurrency_near_limit` (sent while more than 80 % of the
limit is in use) and `rtms.concurrency_limited` (the limit is reached: no new stream can start). The limit belongs
to the account that owns the Marketplace app (2,000 concurrent streams by default; docs/DEPLOY.md "Entitlements and
limits").

Each delivery is stored by the webhook view like any other (WebhookDelivery). Here they are counted as Prometheus
metrics when announced, and read back for the console: `recent_alerts(account_id)` lists those of the apps the
account owns, which is whose limit they are about.
"""

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.dispatch import receiver
from django.utils import timezone

from rtms import metrics
from zoomapp.webhooks.models import WebhookDelivery
from zoomapp.webhooks.signals import zoom_event

log = logging.getLogger("zoomapp.webhooks")

NEAR_LIMIT = "rtms.concurrency_near_limit"
LIMITED = "rtms.concurrency_limited"
EVENTS = (NEAR_LIMIT, LIMITED)
RECENT = timedelta(days=1)


@dataclass(frozen=True)
class ConcurrencyAlert:
    app_name: str
    client_id: str
    limited: bool  # True: rtms.concurrency_limited (no new stream can start); False: near the limit
    concurrency_number: int | None
    operator_id: str  # the user whose start hit the limit
    received_at: datetime


def _concurrency_number(payload):
    value = payload.get("concurrency_number") if isinstance(payload, dict) else None
    return value if type(value) is int and 0 <= value < 2**31 else None


@receiver(zoom_event, dispatch_uid="webhooks.concurrency")
def on_zoom_event(sender, app=None, event="", payload=None, **kwargs):
    if event not in EVENTS:
        return
    number = _concurrency_number(payload)
    metrics.rtms_concurrency_events.labels(event=event).inc()
    if number is not None:
        metrics.rtms_concurrency_number.labels(client_id=app.client_id, event=event).set(number)
    log.warning("rtms concurrency", extra={"client_id": app.client_id, "event": event, "concurrency_number": number})


def recent_alerts(account_id, since=RECENT, limit=20):
    """The latest concurrency events of the apps owned by `account_id`, newest first."""
    if not account_id:
        return []
    deliveries = WebhookDelivery.objects.filter(
        app__account_id=account_id, event__in=EVENTS, received_at__gte=timezone.now() - since
    ).select_related("app").order_by("-received_at")[:limit]
    return [
        ConcurrencyAlert(
            app_name=d.app.name, client_id=d.app.client_id, limited=d.event == LIMITED,
            concurrency_number=_concurrency_number(d.payload),
            operator_id=d.payload.get("operator_id", "") if isinstance(d.payload.get("operator_id"), str) else "",
            received_at=d.received_at,
        )
        for d in deliveries
    ]
