# Celery discovers tasks here; each task lives with the feature it belongs to.
from zoomapp.health import ping  # noqa: F401
