from django.apps import AppConfig


class MarketplaceConfig(AppConfig):
    name = "zoomapp.marketplace"
    label = "marketplace"
    verbose_name = "Registered Zoom apps"
