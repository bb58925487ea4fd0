from django.apps import AppConfig


def _client_secret(client_id):
    from zoomapp.marketplace.models import ZoomApp

    app = ZoomApp.objects.filter(client_id=client_id).only("client_secret").first()
    return app.client_secret if app else None


class MarketplaceConfig(AppConfig):
    name = "zoomapp.marketplace"
    label = "marketplace"
    verbose_name = "Registered Zoom apps"

    def ready(self):
        from rtms.credentials import register_credentials_lookup

        # rtms never imports zoomapp: it asks for an app's client secret through this lookup.
        register_credentials_lookup(_client_secret)
