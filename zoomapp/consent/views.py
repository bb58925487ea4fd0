"""The Home URL (the panel page) and the JSON API the panel calls.

The page is served for /panel/<client_id>/. When Zoom sends `X-Zoom-App-Context` the page arrives with a panel
token already minted; otherwise (Zoom's PWA client, the simulated web client) the panel posts the value of
zoomSdk.getAppContext() to /panel/<client_id>/api/context. Either way the context is decrypted and verified
before anything is bound. The API authenticates with `Authorization: Bearer <panel token>` (no cookies, so
no CSRF exposure).
"""

import logging

from django.http import Http404, JsonResponse
from django.shortcuts import render
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

from zoomapp import inbound, texts
from zoomapp.consent import panel_dispatch, tokens
from zoomapp.consent.actions import presence
from zoomapp.consent.meetings import get_meeting
from zoomapp.consent.panel_state import snapshot_for
from zoomapp.consent.permissions import Actor, Refused
from zoomapp.marketplace import oauth
from zoomapp.marketplace.app_context import AppContextRefused, verify_app_context
from zoomapp.marketplace.models import ZoomApp
from zoomapp.marketplace.security_headers import zoom_page_headers

log = logging.getLogger("zoomapp.consent.views")

SDK_VERSION = "0.16.41"
MAX_BODY_BYTES = 16 * 1024
REFUSAL_STATUS = {
    "not_host": 403, "not_your_app": 403, "guest": 403, "token": 401,
    "bad_request": 400, "unknown_action": 400, "unknown_meeting": 404, "unknown_app": 404,
}


def _app_or_404(client_id):
    app = ZoomApp.by_client_id(client_id)
    if app is None:
        raise Http404(texts.REFUSED_UNKNOWN_APP)
    return app


def _address(request):
    return request.META.get("REMOTE_ADDR", "")


def _refusal(code, message, status=None):
    return JsonResponse({"error": code, "message": message}, status=status or REFUSAL_STATUS.get(code, 409))


def _bind(app, context_value, name, request):
    """Verify the context and bind this browser: returns (token, identity)."""
    context = verify_app_context(context_value, app)
    presence.do_panel_opened(
        get_meeting(app, context.meeting_uuid), context.user_id, context.role, name,
        actor=Actor(context.user_id or "guest", name, "panel_http", _address(request)), made_ms=context.made_ms,
    )
    token = tokens.mint(app.client_id, context.meeting_uuid, context.user_id)
    log.info("panel bound", extra={"meeting": context.meeting_uuid, "client_id": app.client_id,
                                   "user": context.user_id or "guest", "role": context.role})
    return token, context


@require_GET
@zoom_page_headers
def home(request, client_id):
    app = _app_or_404(client_id)
    page = {"client_id": app.client_id, "app_name": app.name, "token": "", "theme": "", "refused": ""}
    header = request.headers.get("X-Zoom-App-Context")
    status = 200
    if header:
        try:
            page["token"], context = _bind(app, header, "", request)
            page["theme"] = context.theme
        except AppContextRefused as exc:
            page["refused"] = texts.CONTEXT_REFUSED.format(reason=exc.reason)
            status = 403
            log.warning("app context refused", extra={"client_id": app.client_id, "reason": exc.reason})
    return render(
        request,
        "panel/panel.html",
        {"app": app, "page": page, "texts": texts.panel_texts(), "sdk_version": SDK_VERSION,
         "refused": page["refused"]},
        status=status,
    )


def _json_body(request):
    if len(request.body) > MAX_BODY_BYTES:
        raise Refused("bad_request", texts.REFUSED_BODY_TOO_LARGE)
    try:
        body = inbound.parse_json(request.body or b"{}")
    except inbound.NotJSON:
        raise Refused("bad_request", texts.REFUSED_BODY_NOT_JSON) from None
    if not isinstance(body, dict):
        raise Refused("bad_request", texts.REFUSED_BODY_NOT_OBJECT)
    return body


def _identity(request, client_id):
    header = request.headers.get("Authorization", "")
    token = header[7:] if header.startswith("Bearer ") else ""
    try:
        identity = tokens.read(token)
    except tokens.TokenRefused as exc:
        raise Refused("token", exc.reason) from None
    if identity.client_id != client_id:
        raise Refused("token", texts.REFUSED_TOKEN_OTHER_APP)
    return identity


def panel_api(view):
    """JSON in, JSON out; every refusal a clear {"error", "message"} with a 4xx, never a 500 for bad input."""

    def wrapped(request, client_id):
        try:
            return view(request, client_id)
        except Refused as exc:
            log.info("panel request refused", extra={"client_id": client_id, "code": exc.code,
                                                      "path": request.path})
            return _refusal(exc.code, exc.message)

    wrapped.__name__ = view.__name__
    return csrf_exempt(wrapped)


@require_POST
@panel_api
def api_context(request, client_id):
    app = _app_or_404(client_id)
    body = _json_body(request)
    name = body.get("name") if isinstance(body.get("name"), str) else ""
    # Refused as a webhook's name is: PostgreSQL could not store it (docs/SECURITY.md "JSON and text from outside").
    if not inbound.is_storable_text(name):
        raise Refused("bad_request", texts.REFUSED_NAME_NOT_STORABLE)
    try:
        token, context = _bind(app, body.get("context"), name[:200], request)
    except AppContextRefused as exc:
        log.warning("app context refused", extra={"client_id": app.client_id, "reason": exc.reason})
        return _refusal("app_context", texts.CONTEXT_REFUSED.format(reason=exc.reason), 403)
    identity = tokens.read(token)
    return JsonResponse({"token": token, "theme": context.theme, "state": snapshot_for(identity)})


@require_POST
@panel_api
def api_action(request, client_id):
    identity = _identity(request, client_id)
    name = panel_dispatch.perform(identity, _json_body(request), "panel_http", _address(request))
    return JsonResponse({"done": name, "state": snapshot_for(identity)})


@require_POST
@panel_api
def api_authorize_start(request, client_id):
    """In-client OAuth, step 1: a PKCE challenge for zoomSdk.authorize()."""
    identity = _identity(request, client_id)
    if identity.is_guest:
        raise Refused("guest", texts.REFUSED_GUEST_AUTHORIZE)
    app = _app_or_404(client_id)
    state, challenge = oauth.start_pkce(app, identity.user_id)
    return JsonResponse({"state": state, "codeChallenge": challenge})


@require_POST
@panel_api
def api_authorize_finish(request, client_id):
    """In-client OAuth, step 2: the code from onAuthorized, exchanged with the verifier we kept."""
    identity = _identity(request, client_id)
    if identity.is_guest:
        raise Refused("guest", texts.REFUSED_GUEST_AUTHORIZE)
    body = _json_body(request)
    code, state, redirect_to = body.get("code"), body.get("state"), body.get("redirectUri")
    if not all(isinstance(v, str) and 0 < len(v) < 2048 for v in (code, state, redirect_to)):
        raise Refused("bad_request", texts.REFUSED_AUTHORIZED_FIELDS)
    app = _app_or_404(client_id)
    try:
        oauth.finish_pkce(app, identity.user_id, state, code, redirect_to)
    except oauth.OAuthError as exc:
        return _refusal("oauth", str(exc), 400)
    return JsonResponse({"authorization": oauth.authorization_status(app.pk, identity.user_id),
                         "state": snapshot_for(identity)})
