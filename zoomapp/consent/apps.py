from django.apps import AppConfig


class ConsentConfig(AppConfig):
    name = "zoomapp.consent"
    label = "consent"
    verbose_name = "In-meeting consent"

    def ready(self):
        from zoomapp.consent import receivers  # noqa: F401 - connects the webhook and stream signal receivers
