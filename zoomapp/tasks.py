# Celery discovers tasks here; each task lives with the feature it belongs to.
from zoomapp.consent.autostart import auto_start_on_join  # noqa: F401
from zoomapp.consent.tasks import catch_up_with_streams, fail_stuck_starts  # noqa: F401
from zoomapp.console.tasks import delete_user_data, purge_by_app_retention  # noqa: F401
from zoomapp.health import ping  # noqa: F401
from zoomapp.webhooks.tasks import purge_old_deliveries  # noqa: F401
