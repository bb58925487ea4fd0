from channels.security.websocket import AllowedHostsOriginValidator
from channels.sessions import SessionMiddlewareStack
from django.urls import path

from zoomapp.consent.consumers import PanelConsumer
from zoomapp.console.consumers import LiveStreamsConsumer

websocket_urlpatterns = [
    path("ws/panel/", PanelConsumer.as_asgi()),
    # The console is an ordinary web page: its session cookie, and only from our own origin.
    path("ws/console/streams", AllowedHostsOriginValidator(SessionMiddlewareStack(LiveStreamsConsumer.as_asgi()))),
]
