from django.apps import AppConfig


class RtmsConfig(AppConfig):
    name = "rtms"
    verbose_name = "Realtime media streams"
