from django.apps import AppConfig


class ConsoleConfig(AppConfig):
    name = "zoomapp.console"
    label = "console"
    verbose_name = "Admin console"

    def ready(self):
        # Auto-start decisions, the data lifecycle and the live-streams push react to Zoom's webhooks and to
        # stream state changes; connected here so the consent and rtms apps need not know about them.
        from zoomapp.consent import autostart  # noqa: F401
        from zoomapp.console import receivers, streams_feed  # noqa: F401
