"""Helpers for the panel and consent tests: an app row, Zoom-encrypted app contexts, a meeting with people.

App contexts are encrypted with the simulator's encoder (zoomsim.window.appcontext), which was written from
the reference alone, so our decoder is checked against an independent implementation.
"""

import secrets
import time

from tests.zoomsim_client import register_app
from zoomsim.window.appcontext import build_app_context, encrypt_app_context


def make_app(name="Notes Bot"):
    from zoomapp.marketplace.models import ZoomApp

    return ZoomApp.objects.create(
        name=name, client_id=f"cid{secrets.token_hex(5)}", client_secret=secrets.token_hex(16),
        webhook_secret_token=secrets.token_hex(16), account_id="acctOwner",
    )


def meeting_uuid():
    return secrets.token_urlsafe(16)[:22] + "=="


def context_for(app, meeting, user_id, role="participant", now_ms=None, **overrides):
    """The encrypted value Zoom would send for this person (user_id None = Guest Mode)."""
    now_ms = int(time.time() * 1000) if now_ms is None else now_ms
    fields = build_app_context(client_id=app.client_id, meeting_uuid=meeting, role=role, now_ms=now_ms,
                               user_id=user_id)
    fields.update(overrides)
    return encrypt_app_context(fields, app.client_secret)


def open_panel(client, app, meeting, user_id, role="participant", name=""):
    """Bind a browser the way the panel does (POST the context); returns (token, state)."""
    response = client.post(
        f"/panel/{app.client_id}/api/context",
        data={"context": context_for(app, meeting, user_id, role), "name": name or user_id},
        content_type="application/json",
    )
    assert response.status_code == 200, response.content
    body = response.json()
    return body["token"], body["state"]


def panel_action(client, app, token, **body):
    return client.post(f"/panel/{app.client_id}/api/action", data=body, content_type="application/json",
                       HTTP_AUTHORIZATION=f"Bearer {token}")


def panel_snapshot(token):
    """The state the panel holding `token` is sent when its socket connects (zoomapp/consent/panel_state.py)."""
    from zoomapp.consent import tokens
    from zoomapp.consent.panel_state import snapshot_for

    return snapshot_for(tokens.read(token))


def register_with_sim(sim, web_url, app, account_id="acctOwner", redirect_url=None):
    """Register our app row with the simulator: its webhook endpoint on the daphne at `web_url` (validated by
    Zoom's challenge, so the row must be committed), its panel as Home URL and our OAuth callback (by default
    SITE_URL-based, as the console's and the install's redirects are; Zoom prefix-matches it)."""
    from django.conf import settings

    return register_app(
        sim, name=app.name, client_id=app.client_id, client_secret=app.client_secret,
        webhook_secret_token=app.webhook_secret_token, event_url=web_url + app.webhook_path,
        home_url=f"{web_url}/panel/{app.client_id}/",
        redirect_url=redirect_url or f"{settings.SITE_URL}/zoom/oauth/callback/{app.client_id}", account_id=account_id)


def add_sim_user(sim, user_id, name, account_id="acct1", role="member", group_id=None):
    body = {"user_id": user_id, "name": name, "account_id": account_id, "role": role}
    if group_id:
        body["group_id"] = group_id
    response = sim.post("/_sim/users", json=body)
    assert response.status_code in (200, 201), response.text
    return response.json()


async def connect_panel(token):
    """A panel's socket through our ASGI application (Channels' test communicator), connected. The 10 s bound is
    for the full suite on a loaded 2-core machine (a connect once took over Channels' default 1 s there)."""
    from channels.testing import WebsocketCommunicator

    from zoomapp.asgi import application

    communicator = WebsocketCommunicator(application, f"/ws/panel/?token={token}")
    connected, _ = await communicator.connect(timeout=10)
    assert connected
    return communicator
