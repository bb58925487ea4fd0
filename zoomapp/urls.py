from django.contrib import admin
from django.urls import include, path

import rtms.views
from zoomapp.consent import views as panel
from zoomapp.console import views as console
from zoomapp.marketplace import views as marketplace
from zoomapp.operator_access import operator_only
from zoomapp.views import health
from zoomapp.webhooks.views import zoom_webhook

urlpatterns = [
    path("healthz", health.healthz, name="healthz"),
    path("django-admin/", admin.site.urls),
    path("zoom/webhooks/<str:client_id>", zoom_webhook, name="zoom-webhook"),
    path("metrics", operator_only(rtms.views.metrics), name="metrics"),
    path("panel/<str:client_id>/", panel.home, name="panel-home"),
    path("panel/<str:client_id>/api/context", panel.api_context, name="panel-context"),
    path("panel/<str:client_id>/api/action", panel.api_action, name="panel-action"),
    path("panel/<str:client_id>/api/authorize", panel.api_authorize_start, name="panel-authorize"),
    path("panel/<str:client_id>/api/authorized", panel.api_authorize_finish, name="panel-authorized"),
    path("zoom/install/<str:client_id>", marketplace.install, name="zoom-install"),
    path("zoom/oauth/callback/<str:client_id>", marketplace.callback, name="zoom-oauth-callback"),
    path("console/", include("zoomapp.console.urls")),
    # The console's sign-in comes back under the app's registered OAuth redirect URL (Zoom's allow list).
    path("zoom/oauth/callback/<str:client_id>/console", console.oauth_callback, name="console-oauth-callback"),
]

# With DEBUG off: pages that say why and what to do next, JSON under the panel's API and the webhooks.
handler404 = "zoomapp.views.errors.page_not_found"
handler500 = "zoomapp.views.errors.server_error"
