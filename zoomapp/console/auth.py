"""Who may use the admin console: account owners and admins, signed in with Zoom OAuth.

Sign-in runs Zoom's authorization-code flow with one of the registered apps (docs/ZOOM.md §8.1), then asks
`/v2/users/me` who the user is. Only `role_name` Owner or Admin gets a console session, and the session is
bound to that user's `account_id`: every page reads and writes that account's rows only.

The state we send to Zoom is a random nonce kept in the browser's session, so a callback can only complete a
sign-in this browser started (no login CSRF).

A session is checked again on every page request and every push of the live-streams socket (`confirmed_admin`,
docs/SECURITY.md "Operators and account admins"): it ends CONSOLE_SESSION_SECONDS after sign-in, or after
CONSOLE_IDLE_SECONDS without a page request; it ends once the admin's grant to the app they signed in with is gone
(they removed the app: app_deauthorized) or refused by Zoom; and Zoom is asked for their role again when it last
confirmed it over CONSOLE_ROLE_RECHECK_SECONDS ago, and before every change and download, so an admin Zoom demoted
keeps nothing. When Zoom could not answer, a read asks again ROLE_RETRY_SECONDS later, not on every request or push.
The checks that need no Zoom call (`session_holds`) are what the live-streams socket and the audit export run before
each push or chunk; the socket asks Zoom only when `role_due` says so (consumers.py).
"""

import functools
import logging
import secrets
import time
from dataclasses import asdict, dataclass, replace
from urllib.parse import urlencode

from django.conf import settings
from django.contrib import messages
from django.shortcuts import redirect, render

from zoomapp.marketplace import oauth
from zoomapp.marketplace.models import UserAuthorization, ZoomApp

log = logging.getLogger("zoomapp.console")

ADMIN_ROLES = ("Owner", "Admin")
SESSION_KEY = "console_admin"
PENDING_KEY = "console_signin"
TIMES_KEY = "console_times"  # {"signed_in", "last_seen", "role_confirmed", "role_unanswered"}: Unix seconds
# Views answered only after Zoom confirms the role again, besides every POST (a change): downloads of stored media
# and of the audit log.
DOWNLOADS = {"console:stream_media", "console:audit_csv"}
# After Zoom could not confirm a role for a read, how long until it is asked again (every request or socket push
# would otherwise wait on Zoom's timeout while it is down).
ROLE_RETRY_SECONDS = 60

SIGN_IN_FIRST = "Sign in first."
NOT_AN_ADMIN = "The admin console is for account owners and admins. Zoom says your role is {role}."
SESSION_TOO_OLD = "Your console session ended: sessions last {hours} hours. Sign in again."
SESSION_IDLE = "You were signed out after {minutes} minutes without activity. Sign in again."
GRANT_GONE = "Your authorization of the app you signed in with was removed. Sign in again to continue."
GRANT_REFUSED = "Zoom no longer accepts your sign-in. Sign in again to continue."
OTHER_ACCOUNT = "Zoom says you no longer belong to the account you signed in to. Sign in again."
ROLE_UNCONFIRMED = ("Nothing was changed: Zoom could not confirm your role just now, and the console confirms it "
                    "before every change or download. Try again in a minute.")


class SessionEnded(Exception):
    """The console session is over; the message says why, for the admin."""


class RoleUnconfirmed(Exception):
    """Zoom could not be asked for the admin's role before a change or download: nothing was done."""


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
    now = time.time()
    request.session[TIMES_KEY] = {"signed_in": now, "last_seen": now, "role_confirmed": now}
    request.session.set_expiry(settings.CONSOLE_SESSION_SECONDS)


def sign_out(request):
    request.session.flush()


def admin_in_session(session):
    """The account owner or admin this session was signed in as, or None; `confirmed_admin` says whether the
    session still holds."""
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


def session_holds(session, now):
    """The admin signed in on this session while it holds without asking Zoom: not expired nor idle, and the grant
    they signed in with still there and accepted. Raises SessionEnded."""
    admin = admin_in_session(session)
    times = session.get(TIMES_KEY)
    if admin is None or not isinstance(times, dict):
        raise SessionEnded(SIGN_IN_FIRST)
    if now - times.get("signed_in", 0) > settings.CONSOLE_SESSION_SECONDS:
        raise SessionEnded(SESSION_TOO_OLD.format(hours=round(settings.CONSOLE_SESSION_SECONDS / 3600)))
    if now - times.get("last_seen", 0) > settings.CONSOLE_IDLE_SECONDS:
        raise SessionEnded(SESSION_IDLE.format(minutes=round(settings.CONSOLE_IDLE_SECONDS / 60)))
    needs_reauthorization = (UserAuthorization.objects.filter(app__client_id=admin.client_id, user_id=admin.user_id)
                             .values_list("needs_reauthorization", flat=True).first())
    if needs_reauthorization is None:
        raise SessionEnded(GRANT_GONE)
    if needs_reauthorization:
        raise SessionEnded(GRANT_REFUSED)
    return admin


def role_due(session, now):
    """Whether a read asks Zoom for the role again: confirmed over CONSOLE_ROLE_RECHECK_SECONDS ago, and Zoom not
    found unavailable within ROLE_RETRY_SECONDS. Only for a session `session_holds` accepted."""
    times = session[TIMES_KEY]
    return (now - times.get("role_confirmed", 0) > settings.CONSOLE_ROLE_RECHECK_SECONDS
            and now - times.get("role_unanswered", 0) > ROLE_RETRY_SECONDS)


def confirmed_admin(session, now, *, before_a_change=False):
    """The admin signed in on this session, checked as the module says, for the console's pages and its socket
    alike. Raises SessionEnded, or RoleUnconfirmed when `before_a_change` and Zoom cannot answer. A role Zoom
    confirmed, or the time Zoom could not answer, is written into the session, which the caller saves."""
    admin = session_holds(session, now)
    if before_a_change or role_due(session, now):
        admin = _role_confirmed_by_zoom(session, admin, now, before_a_change)
    return admin


def _role_confirmed_by_zoom(session, admin, now, before_a_change):
    who = {"user": admin.user_id, "account": admin.account_id, "client_id": admin.client_id}
    try:
        me = oauth.current_user(ZoomApp.by_client_id(admin.client_id), admin.user_id)
    except oauth.ZoomUnavailable as exc:
        if before_a_change:
            log.warning("console change refused: Zoom could not confirm the role", extra={**who, "error": str(exc)})
            raise RoleUnconfirmed(ROLE_UNCONFIRMED) from None
        # A read keeps the session on the role Zoom last confirmed; Zoom is asked again ROLE_RETRY_SECONDS later.
        log.warning("console role not confirmed again, Zoom unavailable: the session is kept for reading",
                    extra={**who, "error": str(exc)})
        session[TIMES_KEY] = {**session[TIMES_KEY], "role_unanswered": now}
        return admin
    except oauth.OAuthError as exc:
        log.warning("console role not confirmed: Zoom refused the grant", extra={**who, "error": str(exc)})
        raise SessionEnded(GRANT_REFUSED) from None
    role = str(me.get("role_name") or "")
    if str(me.get("id") or "") != admin.user_id or str(me.get("account_id") or "") != admin.account_id:
        raise SessionEnded(OTHER_ACCOUNT)
    if role not in ADMIN_ROLES:
        raise SessionEnded(NOT_AN_ADMIN.format(role=role or "unknown"))
    admin = replace(admin, role=role)
    session[SESSION_KEY] = asdict(admin)
    session[TIMES_KEY] = {**session[TIMES_KEY], "role_confirmed": now}
    return admin


def client_address(request):
    return request.META.get("REMOTE_ADDR", "")[:100]


def _is_a_change_or_download(request):
    return request.method not in ("GET", "HEAD") or (
        request.resolver_match is not None and request.resolver_match.view_name in DOWNLOADS)


def admin_required(view):
    """The view gets `request.admin`, confirmed (`confirmed_admin`); anyone else goes to the sign-in page, told why
    a session ended (a POST gets 403 with the reason); a change Zoom could not confirm the role for gets 503."""

    @functools.wraps(view)
    def wrapper(request, *args, **kwargs):
        now = time.time()
        try:
            admin = confirmed_admin(request.session, now, before_a_change=_is_a_change_or_download(request))
        except SessionEnded as ended:
            signed_in_as = current_admin(request)
            if signed_in_as is not None:
                log.info("console session ended", extra={"user": signed_in_as.user_id,
                                                          "account": signed_in_as.account_id, "why": str(ended)})
                sign_out(request)
            if request.method in ("GET", "HEAD"):
                if signed_in_as is not None:
                    messages.error(request, str(ended))
                return redirect("console:signin")
            return render(request, "console/refused.html", {"reason": str(ended)}, status=403)
        except RoleUnconfirmed as unconfirmed:
            return render(request, "console/refused.html", {"reason": str(unconfirmed), "admin": current_admin(
                request), "heading": "Not done"}, status=503)
        request.session[TIMES_KEY] = {**request.session[TIMES_KEY], "last_seen": now}
        request.admin = admin
        return view(request, *args, **kwargs)

    return wrapper
