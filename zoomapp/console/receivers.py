"""What the console reacts to: a user removing an app (Zoom's app_deauthorized), and every erasure of stored media
(rtms's stream_content_erased), each recorded in the audit log. Connected in ConsoleConfig.ready()."""

import logging

from django.dispatch import receiver

from rtms.signals import stream_content_erased
from zoomapp.consent.audit import record
from zoomapp.console import lifecycle, tasks
from zoomapp.console.account_data import meeting_account
from zoomapp.marketplace.models import UserAuthorization, ZoomApp
from zoomapp.webhooks.signals import zoom_event

log = logging.getLogger("zoomapp.lifecycle")


@receiver(zoom_event, dispatch_uid="console.lifecycle.deauthorized")
def on_zoom_event(sender, app=None, event="", payload=None, delivery=None, **kwargs):
    """The user's tokens go in the webhook's request; their streams' media in a task (late ack, redelivered).
    The view checked user_id and account_id before storing the delivery (zoomapp/webhooks/views.py)."""
    if event != lifecycle.DEAUTHORIZED:
        return
    user_id = payload["user_id"]
    # The audit names the account of the user's grant to this app (Zoom's /v2/users/me said it), not the payload's:
    # a signed event may name any account, and an account no grant ties the user to never sees the entries
    # (docs/SECURITY.md "Operators and account admins"). No grant, no account.
    account_id = (UserAuthorization.objects.filter(app=app, user_id=user_id)
                  .values_list("account_id", flat=True).first() or "")
    if payload.get("account_id", account_id) != account_id:
        log.warning("app_deauthorized names another account than the user's grant; recorded for the grant's",
                    extra={"client_id": app.client_id, "user": user_id, "named": payload["account_id"],
                           "grant_account": account_id or None})
    # Taken at its event_ts (Zoom's time): a late delivery (Zoom retries one answered after 3 s) leaves a grant
    # the user made since alone, and the task spares that grant's streams (lifecycle.delete_user_data).
    deauthorized_ms = delivery.event_ts if delivery is not None else None
    lifecycle.delete_user_tokens(app, user_id, account_id, deauthorized_ms=deauthorized_ms)
    tasks.delete_user_data.delay(app.client_id, user_id, account_id)


@receiver(stream_content_erased, dispatch_uid="console.lifecycle.erased")
def on_stream_content_erased(sender, stream=None, why="", counts=None, **kwargs):
    record(
        "media_deleted", app=ZoomApp.by_client_id(stream.client_id),
        meeting_uuid=stream.meeting_uuid, actor_user_id="system", subject_user_id=stream.operator_id,
        outcome="deleted", reason=why, source="stream", rtms_stream_id=stream.rtms_stream_id,
        detail={"account_id": meeting_account(stream.client_id, stream.meeting_uuid), "counts": counts or {}},
    )
