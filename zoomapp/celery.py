import os

from celery import Celery, signals

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "zoomapp.settings")

app = Celery("zoomapp")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks(["zoomapp", "rtms"])


@signals.task_prerun.connect
def _close_old_connections(**kwargs):
    """Django's rule for a kept connection, before each task: closed when older than DATABASE_CONN_MAX_AGE or
    broken, else checked on its first use (zoomapp/settings.py, "PostgreSQL connections")."""
    from django.db import close_old_connections

    close_old_connections()


@signals.beat_init.connect
def _start_reconciler(**kwargs):
    """Beat, the deployment's one scheduler, runs the reconciler itself on a thread: as a task it queued behind
    whatever held every pool slot (10-minute purges), expired, and streams whose worker died were not placed
    again (rtms/tasks.py)."""
    import threading

    from rtms.tasks import run_reconciler

    threading.Thread(target=run_reconciler, name="rtms-reconciler", daemon=True).start()
