"""Marketplace install (docs/ZOOM.md §8.1): /zoom/install/<client_id> → Zoom's authorize page → callback."""

import logging

from django.http import HttpResponseRedirect
from django.shortcuts import get_object_or_404, render
from django.views.decorators.http import require_GET

from zoomapp import texts
from zoomapp.marketplace import oauth
from zoomapp.marketplace.models import ZoomApp
from zoomapp.marketplace.security_headers import zoom_page_headers

log = logging.getLogger("zoomapp.oauth")


@require_GET
def install(request, client_id):
    app = get_object_or_404(ZoomApp, client_id=client_id)
    return HttpResponseRedirect(oauth.authorize_url(app, state=oauth.make_install_state(app)))


@require_GET
@zoom_page_headers
def callback(request, client_id):
    """Zoom's redirect after consent. `state` is ours when the install began here, absent when the user
    pressed "Add" in the Marketplace (§8.1 pitfall): then the code exchange alone proves the install. A state
    that is present but not ours is refused."""
    app = get_object_or_404(ZoomApp, client_id=client_id)
    code, state = request.GET.get("code", ""), request.GET.get("state")
    if not code or len(code) > 2048:
        return render(request, "panel/installed.html", {"app": app, "error": texts.INSTALL_NO_CODE}, status=400)
    if state is not None and not oauth.check_install_state(app, state):
        log.warning("install refused: bad state", extra={"client_id": app.client_id})
        return render(request, "panel/installed.html",
                      {"app": app, "error": texts.INSTALL_BAD_STATE},
                      status=400)
    try:
        grant = oauth.complete_authorization(app, code)
    except oauth.OAuthError as exc:
        return render(request, "panel/installed.html", {"app": app, "error": str(exc)}, status=400)
    log.info("install complete", extra={"client_id": app.client_id, "user": grant.user_id,
                                        "marketplace_add": state is None})
    message = texts.INSTALLED.format(app=app.name, user=grant.display_name or grant.user_id)
    return render(request, "panel/installed.html", {"app": app, "message": message})
