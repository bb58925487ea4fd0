import gc
import os

import django
from asgiref.sync import sync_to_async

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "zoomapp.settings")
django.setup(set_prefix=False)

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402 - needs Django set up first
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
