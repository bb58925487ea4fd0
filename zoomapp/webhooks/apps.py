from django.apps import AppConfig


class WebhooksConfig(AppConfig):
    name = "zoomapp.webhooks"
    label = "webhooks"
    verbose_name = "Zoom webhook deliveries"
