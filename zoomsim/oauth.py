"""OAuth authorization server (docs/ZOOM.md §8): auto-consent authorize page, token endpoint, bearer checks."""

import base64
import hashlib
import hmac
import html
import json
import logging
import secrets
import time
from urllib.parse import urlencode

from aiohttp import web

log = logging.getLogger("zoomsim.oauth")

CODE_TTL_S = 300
SCOPES = "meeting:read:meeting meeting:update:participant_rtms_app_status rtms:read user:read:user zoomapp:inmeeting"


class TokenStore:
    def __init__(self, sim):
        self.sim = sim
        self.codes = {}
        self.access = {}
        self.refresh = {}

    def issue_code(self, app, user, redirect_uri, challenge, method):
        code = secrets.token_urlsafe(24)
        self.codes[code] = {"client_id": app.client_id, "user_id": user.user_id, "redirect_uri": redirect_uri,
                            "challenge": challenge, "method": method, "expires": time.time() + CODE_TTL_S}
        return code

    def issue_tokens(self, client_id, user_id):
        access = secrets.token_urlsafe(32)
        refresh = secrets.token_urlsafe(32)
        ttl = self.sim.config.token_ttl
        self.access[access] = {"client_id": client_id, "user_id": user_id, "expires": time.time() + ttl}
        self.refresh[refresh] = {"client_id": client_id, "user_id": user_id}
        return {"access_token": access, "token_type": "bearer", "refresh_token": refresh,
                "expires_in": int(ttl) if ttl == int(ttl) else ttl, "scope": SCOPES}

    def check_bearer(self, header):
        """Returns (app, user) or raises a 401 in Zoom's shape."""
        token = header[7:].strip() if header.lower().startswith("bearer ") else ""
        record = self.access.get(token)
        if record is None:
            raise ApiError(401, 124, "Invalid access token.")
        if record["expires"] < time.time():
            raise ApiError(401, 124, "Access token is expired.")
        return self.sim.apps.get(record["client_id"]), self.sim.users.get(record["user_id"])

    def revoke(self, client_id, user_id=None):
        """The tokens of one user of the app, or of all its users."""
        for table in (self.access, self.refresh):
            for token in [t for t, r in table.items()
                          if r["client_id"] == client_id and user_id in (None, r["user_id"])]:
                del table[token]


class ApiError(web.HTTPException):
    """A Zoom REST error: HTTP status plus `{"code", "message"}`."""

    def __init__(self, status, code, message):
        self.status_code = status
        super().__init__(text=json.dumps({"code": code, "message": message}), content_type="application/json")


def _oauth_error(status, error, reason):
    return web.json_response({"reason": reason, "error": error}, status=status)


def _injected_error(fault):
    """Fault `oauth_error`: Zoom's shape when `error` is given, else the bare status a proxy in front of Zoom
    answers with (a 503 page); `retry_after` adds the header."""
    status = fault.get("status", 503)
    headers = {"Retry-After": str(fault["retry_after"])} if "retry_after" in fault else None
    if "error" in fault:
        return web.json_response({"reason": fault.get("reason", "Injected failure"), "error": fault["error"]},
                                 status=status, headers=headers)
    return web.Response(status=status, text=f"<html><body>{status}</body></html>", content_type="text/html",
                        headers=headers)


async def authorize(request):
    sim = request.app["sim"]
    query = request.query
    app = sim.apps.get(query.get("client_id", ""))
    if app is None:
        return web.Response(status=400, content_type="text/html",
                            text="<h1>Invalid client_id</h1><p>No app with this client_id is registered.</p>")
    if query.get("response_type", "code") != "code":
        return web.Response(status=400, text="response_type must be code")
    redirect_uri = query.get("redirect_uri") or app.redirect_url
    if app.redirect_url and not redirect_uri.startswith(app.redirect_url):
        return web.Response(status=400, content_type="text/html",
                            text=f"<h1>Invalid redirect</h1><p>{html.escape(redirect_uri)} is not on the app's "
                                 "OAuth allow list.</p>")
    user = sim.users.get(query.get("user_id") or request.cookies.get("zoomsim_user") or "")
    if user is None and len(sim.users) == 1:
        user = next(iter(sim.users.values()))
    if user is None:
        links = "".join(
            f'<li><a href="?{html.escape(urlencode({**query, "user_id": u.user_id}))}">{html.escape(u.name)} '
            f"({html.escape(u.email)}, {u.role})</a></li>" for u in sim.users.values())
        return web.Response(content_type="text/html",
                            text=f"<!doctype html><title>Sign in - zoomsim</title><h1>Add {html.escape(app.name)}"
                                 f"</h1><p>Sign in as:</p><ul>{links or '<li>no users yet</li>'}</ul>")
    challenge = query.get("code_challenge")
    method = query.get("code_challenge_method", "plain" if challenge else None)
    code = sim.tokens.issue_code(app, user, redirect_uri, challenge, method)
    params = {"code": code}
    if "state" in query:
        params["state"] = query["state"]
    separator = "&" if "?" in redirect_uri else "?"
    log.info("event=oauth_authorized client_id=%s user_id=%s", app.client_id, user.user_id)
    raise web.HTTPFound(redirect_uri + separator + urlencode(params))


def _client_credentials(request, form):
    header = request.headers.get("Authorization", "")
    if header.lower().startswith("basic "):
        try:
            decoded = base64.b64decode(header[6:].strip()).decode()
            client_id, _, secret = decoded.partition(":")
            return client_id, secret
        except (ValueError, UnicodeDecodeError):
            return None, None
    return form.get("client_id"), form.get("client_secret")


async def token(request):
    sim = request.app["sim"]
    form = await request.post()
    client_id, secret = _client_credentials(request, form)
    app = sim.apps.get(client_id or "")
    if app is None or not hmac.compare_digest(app.client_secret.encode(), (secret or "").encode()):
        return _oauth_error(401, "invalid_client", "Invalid client_id or client_secret")
    grant = form.get("grant_type")
    fault = sim.faults.take_oauth_error(app.client_id, grant)
    if fault is not None:
        return _injected_error(fault)
    store = sim.tokens
    if grant == "authorization_code":
        record = store.codes.pop(form.get("code", ""), None)
        if record is None or record["client_id"] != app.client_id:
            return _oauth_error(400, "invalid_grant", "Invalid authorization code")
        if record["expires"] < time.time():
            return _oauth_error(400, "invalid_grant", "Authorization code is expired")
        if form.get("redirect_uri") and form["redirect_uri"] != record["redirect_uri"]:
            return _oauth_error(400, "invalid_grant", "Redirect URI mismatch.")
        if record["challenge"]:
            verifier = form.get("code_verifier", "")
            if record["method"] == "S256":
                computed = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
            else:
                computed = verifier
            if not verifier or not hmac.compare_digest(computed, record["challenge"]):
                return _oauth_error(400, "invalid_grant", "Invalid code_verifier")
        result = store.issue_tokens(app.client_id, record["user_id"])
        log.info("event=oauth_token grant=authorization_code client_id=%s user_id=%s", app.client_id,
                 record["user_id"])
        return web.json_response(result)
    if grant == "refresh_token":
        record = store.refresh.pop(form.get("refresh_token", ""), None)
        if record is None or record["client_id"] != app.client_id:
            return _oauth_error(400, "invalid_grant", "Invalid Token!")
        log.info("event=oauth_token grant=refresh_token client_id=%s user_id=%s", app.client_id, record["user_id"])
        return web.json_response(store.issue_tokens(app.client_id, record["user_id"]))
    return _oauth_error(400, "unsupported_grant_type", "Unsupported grant type")


def add_routes(app):
    app.router.add_get("/oauth/authorize", authorize)
    app.router.add_post("/oauth/token", token)
