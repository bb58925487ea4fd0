from django.contrib import admin
from django.urls import path

import rtms.views
from zoomapp.views import health
from zoomapp.webhooks.views import zoom_webhook

urlpatterns = [
    path("healthz", health.healthz, name="healthz"),
    path("django-admin/", admin.site.urls),
    path("zoom/webhooks/<str:client_id>", zoom_webhook, name="zoom-webhook"),
    path("metrics", rtms.views.metrics, name="metrics"),
]
