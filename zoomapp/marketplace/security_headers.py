"""The four headers Zoom's client requires on every HTML page it renders (docs/ZOOM.md §11.1), plus framing.

The CSP allows scripts from our own origin only (no inline scripts): the panel loads our pinned copy of
@zoom/appssdk as a static file. Zoom hosts the panel in its client (and the simulated window in an iframe),
so frame-ancestors names Zoom's origins instead of X-Frame-Options.
"""

from functools import wraps
from urllib.parse import urlsplit

from django.conf import settings
from django.views.decorators.clickjacking import xframe_options_exempt


def _origin(url):
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def strict_transport_security():
    """The one Strict-Transport-Security value of this deployment, from the SECURE_HSTS_* settings.

    Sent by our views themselves rather than by Django's SecurityMiddleware alone, which adds it only to requests it
    sees as https: behind a TLS proxy without TRUST_X_FORWARDED_PROTO it would send nothing, and Zoom requires it."""
    value = f"max-age={settings.SECURE_HSTS_SECONDS}"
    if settings.SECURE_HSTS_INCLUDE_SUBDOMAINS:
        value += "; includeSubDomains"
    if settings.SECURE_HSTS_PRELOAD:
        value += "; preload"
    return value


def content_security_policy(request):
    zoom_origins = " ".join(dict.fromkeys([_origin(settings.ZOOM_OAUTH_URL), "https://zoom.us", "https://*.zoom.us"]))
    socket_origin = ("wss://" if request.is_secure() else "ws://") + request.get_host()
    return "; ".join(
        [
            "default-src 'self'",
            "script-src 'self'",
            "style-src 'self'",
            "img-src 'self' data:",
            f"connect-src 'self' {socket_origin}",
            f"frame-ancestors 'self' {zoom_origins}",
            "base-uri 'self'",
            "form-action 'self'",
            "object-src 'none'",
        ]
    )


def zoom_page_headers(view):
    """Decorate a view whose HTML Zoom renders: the four OWASP headers on every response, and no caching."""

    @xframe_options_exempt
    @wraps(view)
    def wrapped(request, *args, **kwargs):
        response = view(request, *args, **kwargs)
        response["Strict-Transport-Security"] = strict_transport_security()
        response["X-Content-Type-Options"] = "nosniff"
        response["Content-Security-Policy"] = content_security_policy(request)
        response["Referrer-Policy"] = "same-origin"
        # The page carries a panel token bound to the person's app context: never kept by a cache.
        response["Cache-Control"] = "no-store"
        return response

    return wrapped
