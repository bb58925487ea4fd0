from django.db import models

from zoomapp.marketplace.encryption import EncryptedTextField


class ZoomApp(models.Model):
    """One Zoom Marketplace app served by this deployment (several may be registered)."""

    name = models.CharField(max_length=100)
    client_id = models.CharField(max_length=100, unique=True)
    client_secret = EncryptedTextField(help_text="OAuth client secret: RTMS handshake and app-context key")
    webhook_secret_token = EncryptedTextField(help_text="Signs Zoom's webhook deliveries; not the client secret")
    home_url = models.URLField(max_length=500, blank=True)
    # The Zoom account that owns the app in the Marketplace (used for 'same account' auto-start rules).
    account_id = models.CharField(max_length=100, blank=True)
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return f"{self.name} ({self.client_id})"

    @property
    def webhook_path(self):
        return f"/zoom/webhooks/{self.client_id}"
