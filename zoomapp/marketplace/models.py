from django.db import models

from rtms.compiled_read import CompiledModelRead
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

    @staticmethod
    def by_client_id(client_id):
        """The app with this client id, or None. Read on every webhook and every panel's page: its SQL is compiled
        once (rtms/compiled_read.py)."""
        return _BY_CLIENT_ID.one(client_id)

    @staticmethod
    def secrets_of(relation):
        """The secret fields of the app reached through `relation` ("app", "share__app"), for a query's defer():
        each is decrypted when a row is read (~10 µs), and a panel's state reads the app of every share and request
        in the meeting for its name only."""
        return [f"{relation}__{field.name}" for field in ZoomApp._meta.fields
                if isinstance(field, EncryptedTextField)]


_BY_CLIENT_ID = CompiledModelRead(lambda client_id: ZoomApp.objects.filter(client_id=client_id), "client id stand-in")


class UserAuthorization(models.Model):
    """A Zoom user's OAuth grant to one of our apps: encrypted tokens and who the user is (/v2/users/me)."""

    app = models.ForeignKey(ZoomApp, on_delete=models.CASCADE, related_name="authorizations")
    user_id = models.CharField(max_length=100)
    account_id = models.CharField(max_length=100, blank=True)
    group_ids = models.JSONField(default=list, blank=True)
    role_name = models.CharField(max_length=50, blank=True)  # Owner | Admin | Member
    display_name = models.CharField(max_length=200, blank=True)
    access_token = EncryptedTextField()
    refresh_token = EncryptedTextField()
    expires_at = models.DateTimeField()
    scope = models.TextField(blank=True)
    # Set when a refresh was refused: the user must authorize the app again.
    needs_reauthorization = models.BooleanField(default=False)
    created = models.DateTimeField(auto_now_add=True)
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        # User first: its index also finds a user's grant to any app (each join's auto-start, autostart.user_account);
        # the app's own index comes with its key.
        constraints = [models.UniqueConstraint(fields=["user_id", "app"], name="one_authorization_per_app_user")]
        # Every console page: the account's installed apps and users.
        indexes = [models.Index(fields=["account_id"], name="authorization_by_account")]

    def __str__(self):
        return f"{self.user_id} -> {self.app.client_id}"


class PendingAuthorization(models.Model):
    """The PKCE verifier of an in-client authorize() the panel started, until Zoom answers onAuthorized."""

    app = models.ForeignKey(ZoomApp, on_delete=models.CASCADE, related_name="+")
    state = models.CharField(max_length=100, unique=True)
    code_verifier = EncryptedTextField()
    user_id = models.CharField(max_length=100)
    created = models.DateTimeField(auto_now_add=True)
