from django.apps import AppConfig


class WebhooksConfig(AppConfig):
    name = "zoomapp.webhooks"
    label = "webhooks"
    verbose_name = "Zoom webhook deliveries"

    def ready(self):
        from zoomapp.webhooks import concurrency  # noqa: F401 - connects its zoom_event receiver
