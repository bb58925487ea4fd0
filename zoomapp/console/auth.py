"""Who may use the admin console: account owners and admins, signed in with Zoom OAuth.

Sign-in runs Zoom's authorization-code flow with one of the registered apps (docs/ZOOM.md §8.1), then asks
`/v2/users/me` who the user is. Only `role_name` Owner or Admin gets a console session, and the session is
bound to that user's `account_id`: every page reads and writes that account's rows only.

The state we send to Zoom is a random nonce kept in the browser's session, so a callback can only complete a
sign-in this browser started (no login CSRF).
"""

import functools
import logging
import secrets
from dataclasses import asdict, dataclass
from urllib.parse import urlencode

from django.conf import settings
from django.shortcuts import redirect, render

log = logging.getLogger("zoomapp.console")

ADMIN_ROLES = ("Owner", "Admin")
SESSION_KEY = "console_admin"
PENDING_KEY = "console_signin"
SESSION_SECONDS = 8 * 3600


@dataclass(frozen=True)
class ConsoleAdmin:
    user_id: str
    account_id: str
    role: str  # Owner | Admin, as /v2/users/me says
    name: str
    client_id: str  # the app the admin signed in with

    @property
    def audit_role(self):
        return self.role.lower()


def console_redirect_uri(app):
    # Under the app's registered redirect URL, so Zoom's OAuth allow list (and the simulator) accept it.
    return f"{settings.SITE_URL}/zoom/oauth/callback/{app.client_id}/console"


def start_sign_in(request, app):
    """The URL of Zoom's authorize page for this browser's sign-in with `app`."""
    state = secrets.token_urlsafe(24)
    request.session[PENDING_KEY] = {"state": state, "client_id": app.client_id}
    query = {"response_type": "code", "client_id": app.client_id, "redirect_uri": console_redirect_uri(app),
             "state": state}
    return f"{settings.ZOOM_OAUTH_URL}/oauth/authorize?{urlencode(query)}"


def take_pending_sign_in(request, client_id, state):
    """True once for the state this browser was sent off with (single use)."""
    pending = request.session.pop(PENDING_KEY, None)
    return (
        isinstance(pending, dict)
        and isinstance(state, str)
        and pending.get("client_id") == client_id
        and secrets.compare_digest(str(pending.get("state", "")), state)
    )


def sign_in(request, admin):
    request.session.cycle_key()  # a fresh session id at privilege change
    request.session[SESSION_KEY] = asdict(admin)
    request.session.set_expiry(SESSION_SECONDS)


def sign_out(request):
    request.session.flush()


def admin_in_session(session):
    """The account owner or admin signed in on this session, or None: the one admin check, for the console's
    pages (`current_admin`) and its live-streams socket alike."""
    data = session.get(SESSION_KEY)
    if not isinstance(data, dict):
        return None
    try:
        admin = ConsoleAdmin(**data)
    except TypeError:
        return None
    return admin if admin.role in ADMIN_ROLES and admin.account_id else None


def current_admin(request):
    return admin_in_session(request.session)


def client_address(request):
    return request.META.get("REMOTE_ADDR", "")[:100]


def admin_required(view):
    """The view gets `request.admin`; anyone else goes to the sign-in page (or gets 403 for non-GET)."""

    @functools.wraps(view)
    def wrapper(request, *args, **kwargs):
        admin = current_admin(request)
        if admin is None:
            if request.method in ("GET", "HEAD"):
                return redirect("console:signin")
            return render(request, "console/refused.html", {"reason": "Sign in first."}, status=403)
        request.admin = admin
        return view(request, *args, **kwargs)

    return wrapper
