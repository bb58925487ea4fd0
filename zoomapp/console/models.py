"""Account admins' settings kept by the console: auto-start per app and data retention per app.

Both are per Zoom account; an admin only ever reads or writes their own account's rows (see views.py).
The sharing setting ("Share real-time meeting content with apps") lives in zoomapp.consent.SharingPolicy.
"""

from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

from zoomapp.marketplace.models import ZoomApp


class Level(models.TextChoices):
    ACCOUNT = "account"
    GROUP = "group"
    USER = "user"


class AutoStartSetting(models.Model):
    """"Auto-start apps that access shared real-time meeting content": one app On or Off at one level.

    The effective value for a user is the most specific row for that app: user, else group, else account;
    no row at all means Off (see zoomapp.consent.autostart.effective_auto_start).
    """

    account_id = models.CharField(max_length=100)
    level = models.CharField(max_length=10, choices=Level.choices)
    # The account id again for account rows, the group id or the user id otherwise.
    target_id = models.CharField(max_length=100)
    app = models.ForeignKey(ZoomApp, on_delete=models.CASCADE, related_name="auto_start_settings")
    auto_start = models.BooleanField()
    updated = models.DateTimeField(auto_now=True)
    updated_by = models.CharField(max_length=100, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["account_id", "level", "target_id", "app"], name="one_auto_start_per_target_app"
            )
        ]
        ordering = ["account_id", "level", "target_id", "app_id"]


DEFAULT_RETENTION_DAYS_HELP = "days stored media is kept; MEDIA_RETENTION_DAYS when the account set nothing"


class AppRetention(models.Model):
    """How long one account keeps the media one app stored from that account's meetings."""

    account_id = models.CharField(max_length=100)
    app = models.ForeignKey(ZoomApp, on_delete=models.CASCADE, related_name="retention_settings")
    days = models.PositiveIntegerField(
        validators=[MinValueValidator(1), MaxValueValidator(3650)], help_text=DEFAULT_RETENTION_DAYS_HELP
    )
    updated = models.DateTimeField(auto_now=True)
    updated_by = models.CharField(max_length=100, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["account_id", "app"], name="one_retention_per_account_app")]
