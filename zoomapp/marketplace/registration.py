"""Registering a Zoom app with this deployment (and, in development, with the Zoom simulator).

With the real Zoom the same values are typed into the app's Marketplace page; the simulator
has no such page, so we hand them to its control API.
"""

import logging
import secrets

import requests
from django.conf import settings
from django.db import transaction

from zoomapp.marketplace import oauth
from zoomapp.marketplace.models import ZoomApp

log = logging.getLogger(__name__)

DEMO_APP = {"name": "Notetaker", "client_id": "demoNotetakerApp", "account_id": "demoDeveloperAcct"}


class SimulatorRegistrationError(Exception):
    pass


class MissingSecrets(Exception):
    """A new app without its Client Secret or Secret Token from Zoom: invented ones would fail Zoom's validation of
    the webhook endpoint and every token exchange."""


def app_urls(app):
    return {
        "event_url": settings.SITE_URL + app.webhook_path,
        "home_url": app.home_url or f"{settings.SITE_URL}/panel/{app.client_id}/",  # the panel is served per app
        "redirect_url": oauth.redirect_uri(app),
    }


@transaction.atomic
def save_app(*, name, client_id, client_secret=None, webhook_secret_token=None, home_url="", account_id="",
             generate_secrets=False):
    """Create or update an app; secrets not given are kept. A new app needs both, unless `generate_secrets` asks
    for invented ones (the demo, an app registered only with the simulator); otherwise MissingSecrets, nothing
    saved."""
    app = ZoomApp.objects.select_for_update().filter(client_id=client_id).first() or ZoomApp(client_id=client_id)
    missing = [field for field, given in (("client_secret", client_secret),
                                          ("webhook_secret_token", webhook_secret_token))
               if not given and not getattr(app, field, None)]
    if missing and not generate_secrets:
        raise MissingSecrets(missing)
    app.name = name
    app.home_url = home_url or app.home_url
    app.account_id = account_id or app.account_id
    app.client_secret = client_secret or getattr(app, "client_secret", None) or secrets.token_urlsafe(24)
    app.webhook_secret_token = (webhook_secret_token or getattr(app, "webhook_secret_token", None)
                                or secrets.token_urlsafe(24))
    app.save()
    log.info("zoom app saved", extra={"client_id": client_id, "app_name": name})
    return app


def register_with_simulator(app, simulator_url=None):
    """POST the app to the simulator's control API; it validates our webhook endpoint first."""
    simulator_url = (simulator_url or settings.ZOOM_OAUTH_URL).rstrip("/")
    body = {
        "name": app.name,
        "client_id": app.client_id,
        "client_secret": app.client_secret,
        "webhook_secret_token": app.webhook_secret_token,
        "account_id": app.account_id,
        **app_urls(app),
    }
    try:
        response = requests.post(f"{simulator_url}/_sim/apps", json=body, timeout=settings.ZOOM_HTTP_TIMEOUT)
    except requests.RequestException as exc:
        raise SimulatorRegistrationError(
            f"the simulator at {simulator_url} did not answer ({exc}); is it running?") from exc
    if response.status_code >= 400:
        raise SimulatorRegistrationError(
            f"the simulator refused the app: HTTP {response.status_code} {response.text[:300]}")
    return response.json()
