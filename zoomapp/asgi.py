import gc
import os

import django
from asgiref.sync import sync_to_async

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "zoomapp.settings")
django.setup(set_prefix=False)

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402 - needs Django set up first
from daphne.http_protocol import WebRequest  # noqa: E402
from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler  # noqa: E402
from django.core.handlers.asgi import ASGIHandler  # noqa: E402

from zoomapp.routing import websocket_urlpatterns  # noqa: E402


class OneHopASGIHandler(ASGIHandler):
    """Django's ASGI handler, with a request's middleware and view entered in one thread hop.

    Every view and middleware here is synchronous. Django's own handler runs each middleware's request and response
    step in a hop of its own from the event loop to the request's thread and back: sixteen hops for the panel's
    page, costing daphne more CPU than the view (docs/PERFORMANCE.md "2026-12-02 (session 23)"). Built in sync
    mode, the chain is what a WSGI server runs, entered once.
    """

    def load_middleware(self, is_async=False):
        super().load_middleware(is_async=False)
        self._middleware_chain = sync_to_async(self._middleware_chain, thread_sensitive=True)


def _close_a_started_response_unfinished(request, exception, answer_500=WebRequest.handle_exception):
    """Daphne answers an application's exception with a 500 page. Once the response has started it cannot: its
    page raised ValueError in daphne's application checker, which stopped checking every connection of the
    process, and the response stayed open. A started response is closed unfinished instead, without chunked
    encoding's last chunk, so the client knows it failed (the audit export: docs/CONSENT.md "The audit log")."""
    if getattr(request, "_response_started", False) and not request.finished:  # daphne 4's own flag
        request.loseConnection()  # what was written is sent first
    else:
        answer_500(request, exception)


WebRequest.handle_exception = _close_a_started_response_unfinished


application = ProtocolTypeRouter(
    {
        # Serves /static/ (the panel's script, styles and pinned Zoom Apps SDK) from the app directories.
        "http": ASGIStaticFilesHandler(OneHopASGIHandler()),
        "websocket": URLRouter(websocket_urlpatterns),
    }
)

# Everything loaded by now (Django, the app, the consumers: ~120,000 objects) lives as long as the process. Frozen,
# the collector's full collections no longer walk it: in daphne under approvals one came about every 40 s and
# stopped every socket and request for 94–101 ms on a 2-core machine; frozen, for 11–12 ms (docs/PERFORMANCE.md
# "2026-12-02 (session 22)"; bench/gc_pauses.py). The session host does the same for its process
# (rtms/client/pacing.py quiet_garbage_collector).
gc.freeze()
