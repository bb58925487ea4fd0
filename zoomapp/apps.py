from django.apps import AppConfig


class ZoomAppConfig(AppConfig):
    name = "zoomapp"
    verbose_name = "Zoom apps"
