from django.db import models


class WebhookDelivery(models.Model):
    """One verified delivery from Zoom. Refused deliveries are not stored (they are logged and counted): a
    forged request must change nothing."""

    class Outcome(models.TextChoices):
        ACCEPTED = "accepted"
        UNKNOWN_EVENT = "unknown_event"

    app = models.ForeignKey("marketplace.ZoomApp", on_delete=models.CASCADE, related_name="webhook_deliveries")
    event = models.CharField(max_length=100)
    event_ts = models.BigIntegerField(null=True, blank=True)
    # sha256 of the raw body: Zoom's retries repeat the body byte for byte (only the signature headers change).
    body_sha256 = models.CharField(max_length=64)
    payload = models.JSONField()
    outcome = models.CharField(max_length=20, choices=Outcome.choices)
    rtms_stream_id = models.CharField(max_length=64, blank=True, db_index=True)
    meeting_uuid = models.CharField(max_length=128, blank=True)
    duplicates = models.PositiveIntegerField(default=0, help_text="retries received after this one")
    received_at = models.DateTimeField(auto_now_add=True)
    last_duplicate_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        constraints = [models.UniqueConstraint(fields=["app", "body_sha256"], name="delivery_once")]
        indexes = [
            # The retention purge (webhooks/tasks.py): the oldest rows, every 10 minutes.
            models.Index(fields=["received_at"], name="delivery_received"),
            # The console's live streams page: the last day's concurrency alerts (concurrency.recent_alerts). Partial:
            # only the rare alerts (concurrency.EVENTS), no cost to the other deliveries.
            models.Index(fields=["received_at"], name="delivery_concurrency_alert",
                         condition=models.Q(event__in=["rtms.concurrency_near_limit", "rtms.concurrency_limited"])),
        ]

    def __str__(self):
        return f"{self.event} for {self.app_id} ({self.outcome})"
