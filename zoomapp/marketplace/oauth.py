"""OAuth with Zoom (docs/ZOOM.md §8): Marketplace install, in-client PKCE, and tokens kept fresh.

- Install: /zoom/install/<client_id> sends the user to Zoom's authorize page with a signed `state`; the
  callback accepts a missing `state` too, because Zoom's Marketplace "Add" flow does not carry ours (§8.1
  pitfall): the code exchange itself proves the install.
- In-client: the panel asks for a PKCE challenge (S256), calls zoomSdk.authorize(), and posts the code from
  onAuthorized; the verifier never leaves the server.
- Tokens are stored encrypted (UserAuthorization), refreshed a few minutes before expiry; Zoom rotates the
  refresh token on every refresh, so refreshes are serialised per grant (row lock) and the new pair saved
  before anyone uses it. Only a refresh Zoom refuses as a dead grant marks the grant for re-authorization; Zoom
  unreachable, busy or failing (5xx, 429) leaves it usable for the next call (docs/ZOOM.md §8.1, "When a refresh
  fails").
"""

import base64
import hashlib
import logging
import secrets
from datetime import timedelta
from urllib.parse import urlencode

import requests
from django.conf import settings
from django.core import signing
from django.db import transaction
from django.utils import timezone

from rtms.compiled_read import CompiledModelRead, CompiledRead
from zoomapp.marketplace.models import PendingAuthorization, UserAuthorization

log = logging.getLogger("zoomapp.oauth")

REFRESH_MARGIN = timedelta(minutes=5)  # refresh this long before the access token expires
INSTALL_STATE_MAX_AGE = 600  # seconds a signed install state stays valid
PKCE_MAX_AGE = timedelta(minutes=10)
_STATE_SALT = "zoomapp.oauth.install"


class OAuthError(Exception):
    """Zoom refused or could not be reached; `message` is safe to show."""


class ZoomUnavailable(OAuthError):
    """Zoom could not be reached, or answered 5xx or 429: says nothing about the grant, which stays usable; the
    caller falls back or tries later, never asks the user to re-authorize."""


class GrantRefused(OAuthError):
    """Zoom refused the code or refresh token itself (invalid_grant, "Invalid Token!"): only a new authorization
    gives a usable grant again."""


class NotAuthorized(OAuthError):
    """The user has never authorized the app."""


class ReauthorizationRequired(OAuthError):
    """The user's grant can no longer be refreshed; they must authorize the app again."""


class AccessTokenRefused(OAuthError):
    """Zoom refused the access token we sent (401): a refreshed one may be accepted."""


def redirect_uri(app):
    return f"{settings.SITE_URL}/zoom/oauth/callback/{app.client_id}"


def make_install_state(app):
    return signing.dumps({"app": app.client_id, "nonce": secrets.token_urlsafe(8)}, salt=_STATE_SALT)


def check_install_state(app, state):
    """True for our own signed state for this app; False for a forged, stale or other app's state."""
    try:
        data = signing.loads(state, salt=_STATE_SALT, max_age=INSTALL_STATE_MAX_AGE)
    except signing.BadSignature:
        return False
    return isinstance(data, dict) and data.get("app") == app.client_id


def authorize_url(app, state=None, code_challenge=None):
    query = {"response_type": "code", "client_id": app.client_id, "redirect_uri": redirect_uri(app)}
    if state:
        query["state"] = state
    if code_challenge:
        query.update(code_challenge=code_challenge, code_challenge_method="S256")
    return f"{settings.ZOOM_OAUTH_URL}/oauth/authorize?{urlencode(query)}"


def _token_request(app, form):
    try:
        response = requests.post(
            f"{settings.ZOOM_OAUTH_URL}/oauth/token",
            data=form,
            auth=(app.client_id, app.client_secret),
            timeout=settings.ZOOM_HTTP_TIMEOUT,
        )
    except requests.RequestException as exc:
        raise ZoomUnavailable(f"Zoom could not be reached: {exc.__class__.__name__}") from None
    try:
        body = response.json()
    except ValueError:
        body = {}
    if not isinstance(body, dict):
        body = {}
    if response.status_code == 200 and "access_token" in body:
        return body
    if response.status_code >= 500 or response.status_code == 429:
        raise ZoomUnavailable(f"Zoom is unavailable: HTTP {response.status_code}")
    reason = str(body.get("reason") or body.get("error") or f"HTTP {response.status_code}")[:200]
    if response.status_code in (400, 401) and (
            body.get("error") == "invalid_grant" or body.get("reason") == "Invalid Token!"):
        # "Invalid Token!" is also reported with error invalid_request: the same dead token (docs/ZOOM.md §8.1).
        raise GrantRefused(f"Zoom refused the token request: {reason}")
    # invalid_client and the like: our app's credentials or request, which no user's re-authorization fixes.
    raise OAuthError(f"Zoom refused the token request: {reason}")


def _users_me(access_token):
    try:
        response = requests.get(
            f"{settings.ZOOM_API_URL}/users/me",
            headers={"Authorization": f"Bearer {access_token}"},
            timeout=settings.ZOOM_HTTP_TIMEOUT,
        )
    except requests.RequestException as exc:
        raise ZoomUnavailable(f"Zoom could not be reached: {exc.__class__.__name__}") from None
    if response.status_code >= 500 or response.status_code == 429:
        raise ZoomUnavailable(f"Zoom is unavailable: HTTP {response.status_code}")
    if response.status_code == 401:
        raise AccessTokenRefused("Zoom refused /users/me: HTTP 401")
    if response.status_code != 200:
        raise OAuthError(f"Zoom refused /users/me: HTTP {response.status_code}")
    return response.json()


def _expiry(tokens):
    try:
        seconds = int(tokens.get("expires_in", 3600))
    except (TypeError, ValueError):
        seconds = 3600
    return timezone.now() + timedelta(seconds=max(seconds, 0))


def complete_authorization(app, code, redirect_to=None, code_verifier=None):
    """Exchange an authorization code, learn who the user is, store the grant. Returns the UserAuthorization."""
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_to or redirect_uri(app)}
    if code_verifier:
        form["code_verifier"] = code_verifier
    tokens = _token_request(app, form)
    me = _users_me(tokens["access_token"])
    user_id = str(me.get("id") or "")
    if not user_id:
        raise OAuthError("Zoom did not say who the user is")
    group_ids = me.get("group_ids") if isinstance(me.get("group_ids"), list) else []
    grant, _ = UserAuthorization.objects.update_or_create(
        app=app,
        user_id=user_id,
        defaults={
            "account_id": str(me.get("account_id") or ""),
            "group_ids": [str(g) for g in group_ids],
            "role_name": str(me.get("role_name") or ""),
            "display_name": str(me.get("display_name") or ""),
            "access_token": tokens["access_token"],
            "refresh_token": tokens.get("refresh_token", ""),
            "expires_at": _expiry(tokens),
            "scope": str(tokens.get("scope", "")),
            "needs_reauthorization": False,
        },
    )
    log.info("app authorized", extra={"client_id": app.client_id, "user": user_id, "pkce": bool(code_verifier)})
    return grant


def start_pkce(app, user_id):
    """A fresh verifier kept server-side; returns (state, S256 code challenge) for zoomSdk.authorize()."""
    PendingAuthorization.objects.filter(created__lt=timezone.now() - PKCE_MAX_AGE).delete()
    verifier = secrets.token_urlsafe(64)[:96]
    state = secrets.token_urlsafe(24)
    PendingAuthorization.objects.create(app=app, state=state, code_verifier=verifier, user_id=user_id)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return state, challenge


def finish_pkce(app, user_id, state, code, redirect_to):
    """onAuthorized's code, exchanged with the verifier we kept for this user's `state` (single use)."""
    with transaction.atomic():
        pending = (
            PendingAuthorization.objects.select_for_update()
            .filter(app=app, state=state, user_id=user_id, created__gte=timezone.now() - PKCE_MAX_AGE)
            .first()
        )
        if pending is None:
            raise OAuthError("This authorization was not started here or has expired. Try again.")
        verifier = pending.code_verifier
        pending.delete()
    grant = complete_authorization(app, code, redirect_to=redirect_to, code_verifier=verifier)
    if grant.user_id != user_id:
        # The code belongs to another Zoom user than the one the panel's context names: keep nothing.
        grant.delete()
        raise OAuthError("The authorization belongs to another Zoom user.")
    return grant


def _refresh(grant):
    """Rotate the pair under a row lock, so two processes never spend one refresh token."""
    with transaction.atomic():
        locked = UserAuthorization.objects.select_for_update(of=("self",)).select_related("app").get(pk=grant.pk)
        if locked.needs_reauthorization:
            raise ReauthorizationRequired("authorization must be renewed")
        if locked.expires_at - timezone.now() > REFRESH_MARGIN:
            return locked  # another process refreshed it while we waited for the lock
        try:
            tokens = _token_request(
                locked.app, {"grant_type": "refresh_token", "refresh_token": locked.refresh_token}
            )
        except ZoomUnavailable as exc:
            log.warning("token refresh failed, Zoom unavailable; the grant stays usable",
                        extra={"client_id": locked.app.client_id, "user": locked.user_id, "error": str(exc)})
            raise
        except GrantRefused as exc:
            # Only the user can fix that, by authorizing again. Flagged under the row's lock: a re-authorization
            # waiting for it comes after, and clears the flag.
            refused = exc
            locked.needs_reauthorization = True
            locked.save(update_fields=["needs_reauthorization", "updated"])
        else:
            locked.access_token = tokens["access_token"]
            locked.refresh_token = tokens.get("refresh_token") or locked.refresh_token
            locked.expires_at = _expiry(tokens)
            locked.save(update_fields=["access_token", "refresh_token", "expires_at", "updated"])
            log.info("token refreshed", extra={"client_id": locked.app.client_id, "user": locked.user_id})
            return locked
    log.warning("token refresh refused; re-authorization needed",
                extra={"client_id": grant.app.client_id, "user": grant.user_id, "error": str(refused)})
    raise ReauthorizationRequired(str(refused))


_GRANT = CompiledModelRead(
    lambda app_pk, user_id: UserAuthorization.objects.filter(app_id=app_pk, user_id=user_id).select_related("app"),
    -1, "user id stand-in")


def access_token_for(app, user_id, force_refresh=False):
    """A valid access token for this user, refreshed first when it expires within REFRESH_MARGIN. When Zoom cannot
    refresh it now (ZoomUnavailable), the token held is returned while it has not expired; ReauthorizationRequired
    only once Zoom refused the grant."""
    grant = _GRANT.one(app.pk, user_id)
    if grant is None:
        raise NotAuthorized(f"user {user_id} has not authorized {app.client_id}")
    if grant.needs_reauthorization:
        raise ReauthorizationRequired("authorization must be renewed")
    if force_refresh:
        # Zoom refused the token we hold: make the refresh unconditional.
        UserAuthorization.objects.filter(pk=grant.pk).update(expires_at=timezone.now())
        grant.expires_at = timezone.now()
    if grant.expires_at - timezone.now() <= REFRESH_MARGIN:
        try:
            grant = _refresh(grant)
        except ZoomUnavailable:
            if grant.expires_at <= timezone.now():
                raise
            # The token we hold still works for a few minutes; a later call refreshes it.
    return grant.access_token


def current_user(app, user_id):
    """What Zoom's /v2/users/me says of this user now, asked with their stored grant: its token refreshed first as
    access_token_for does, and once more when Zoom refuses it. ZoomUnavailable when Zoom cannot answer now; any
    other OAuthError means the grant no longer works (the admin console's role checks, zoomapp/console/auth.py)."""
    try:
        return _users_me(access_token_for(app, user_id))
    except AccessTokenRefused:
        return _users_me(access_token_for(app, user_id, force_refresh=True))


# Read on every signed-in panel's opening (rtms/compiled_read.py).
_GRANT_NEEDS_REAUTHORIZATION = CompiledRead(
    lambda app_pk, user_id: UserAuthorization.objects.filter(app_id=app_pk, user_id=user_id).values_list(
        "needs_reauthorization"),
    -1, "user id stand-in")


def authorization_status(app_pk, user_id):
    """"authorized", "reauthorize" or "unauthorized" (what the host panel shows next to Authorize)."""
    grant = _GRANT_NEEDS_REAUTHORIZATION.one(app_pk, user_id)
    if grant is None:
        return "unauthorized"
    return "reauthorize" if grant[0] else "authorized"
