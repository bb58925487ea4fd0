import logging

from django.apps import AppConfig

log = logging.getLogger("rtms.apps")


def _start_session_host(sender=None, **kwargs):
    from rtms.host import start_host

    start_host(node=str(sender or ""))


def _drain_node(sender=None, **kwargs):
    """The worker's main process got SIGTERM: its pool processes hand their streams over now, not after Celery's
    warm shutdown reaches them (seconds later)."""
    from rtms.holder_messages import send_drain

    send_drain(str(sender or ""))
    log.info("drain published", extra={"node": str(sender or "")})


def _stop_session_host(**kwargs):
    from rtms.host import stop_host

    stop_host()


class RtmsConfig(AppConfig):
    name = "rtms"
    verbose_name = "Realtime media streams"

    def ready(self):
        from celery.signals import worker_process_init, worker_process_shutdown, worker_shutting_down

        # Each Celery pool process runs one session host (rtms/host.py); SIGTERM hands its streams over.
        worker_process_init.connect(_start_session_host, weak=False)
        worker_process_shutdown.connect(_stop_session_host, weak=False)
        worker_shutting_down.connect(_drain_node, weak=False)
