from django.apps import AppConfig


def _start_session_host(**kwargs):
    from rtms.host import start_host

    start_host()


def _stop_session_host(**kwargs):
    from rtms.host import stop_host

    stop_host()


class RtmsConfig(AppConfig):
    name = "rtms"
    verbose_name = "Realtime media streams"

    def ready(self):
        from celery.signals import worker_process_init, worker_process_shutdown

        # Each Celery pool process runs one session host (rtms/host.py); SIGTERM hands its streams over.
        worker_process_init.connect(_start_session_host, weak=False)
        worker_process_shutdown.connect(_stop_session_host, weak=False)
