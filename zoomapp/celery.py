import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "zoomapp.settings")

app = Celery("zoomapp")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks(["zoomapp", "rtms"])
