import gc
import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "zoomapp.settings")
django_asgi_app = get_asgi_application()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402 - needs Django set up first
from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler  # noqa: E402

from zoomapp.routing import websocket_urlpatterns  # noqa: E402

application = ProtocolTypeRouter(
    {
        # Serves /static/ (the panel's script, styles and pinned Zoom Apps SDK) from the app directories.
        "http": ASGIStaticFilesHandler(django_asgi_app),
        "websocket": URLRouter(websocket_urlpatterns),
    }
)

# Everything loaded by now (Django, the app, the consumers: ~120,000 objects) lives as long as the process. Frozen,
# the collector's full collections no longer walk it: in daphne under approvals one came about every 40 s and
# stopped every socket and request for 94–101 ms on a 2-core machine; frozen, for 11–12 ms (docs/PERFORMANCE.md
# "2026-12-02 (session 22)"; bench/gc_pauses.py). The session host does the same for its process
# (rtms/client/pacing.py quiet_garbage_collector).
gc.freeze()
