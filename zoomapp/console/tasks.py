"""Console tasks: the slow half of a deauthorization, and each account's per-app retention (beat)."""

from celery import shared_task

from zoomapp.console import lifecycle


@shared_task(name="console.delete_user_data", acks_late=True, ignore_result=True, time_limit=300)
def delete_user_data(client_id, user_id, account_id):
    # Late ack: a deletion lost in a worker crash is redelivered; erasing twice is harmless.
    return lifecycle.delete_user_data(client_id, user_id, account_id)


@shared_task(name="console.purge_by_app_retention", acks_late=False, ignore_result=True, time_limit=600)
def purge_by_app_retention():
    return lifecycle.purge_by_app_retention()
