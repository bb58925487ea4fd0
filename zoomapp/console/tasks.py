"""Console tasks: the slow half of a deauthorization, and each account's per-app retention (beat)."""

from celery import shared_task
from celery.exceptions import SoftTimeLimitExceeded

from rtms.storage import StorageError
from zoomapp.console import lifecycle


# Late ack, and a worker process lost mid-task puts the message back: a deletion is never lost to a crash, and
# erasing twice is harmless. One that runs out of time, or that storage refused, is tried again (backing off up to
# an hour while storage refuses), from where it stopped (erased streams are skipped); the soft limit is below the
# hard one, which would end the worker process and every stream it holds.
@shared_task(name="console.delete_user_data", acks_late=True, reject_on_worker_lost=True, ignore_result=True,
             soft_time_limit=270, time_limit=300, autoretry_for=(SoftTimeLimitExceeded, StorageError),
             max_retries=None, retry_backoff=5, retry_backoff_max=3600)
def delete_user_data(client_id, user_id, account_id):
    return lifecycle.delete_user_data(client_id, user_id, account_id)


@shared_task(name="console.purge_by_app_retention", acks_late=False, ignore_result=True, soft_time_limit=540,
             time_limit=600)
def purge_by_app_retention():
    return lifecycle.purge_by_app_retention()
