"""Registered Zoom apps in the Django admin, for the deployment's staff (docs/SECURITY.md "Operators and account
admins"): registering or changing an app is an operator action, never a console one.

The two secrets are write-only: the form never renders them (not even masked), an empty field keeps the stored
value, and they stay encrypted at rest (zoomapp.marketplace.encryption).
"""

import logging

from django import forms
from django.contrib import admin

from zoomapp.marketplace.models import ZoomApp
from zoomapp.marketplace.registration import app_urls

log = logging.getLogger(__name__)

SECRETS = ("client_secret", "webhook_secret_token")


class ZoomAppForm(forms.ModelForm):
    home_url = forms.URLField(required=False, max_length=500, assume_scheme="https", label="Home URL",
                              help_text="Empty: this deployment's panel, /panel/<client id>/.")
    client_secret = forms.CharField(
        required=False, max_length=200, widget=forms.PasswordInput(render_value=False),
        help_text="The app's OAuth client secret from its Marketplace page. Never shown; leave empty to keep it.")
    webhook_secret_token = forms.CharField(
        required=False, max_length=200, widget=forms.PasswordInput(render_value=False),
        help_text="The Secret Token of the app's event subscription (not the client secret). Never shown; leave "
                  "empty to keep it.")

    class Meta:
        model = ZoomApp
        fields = ["name", "client_id", "home_url", "account_id", *SECRETS]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for name in SECRETS:  # a ModelForm fills fields from the instance: never hand a secret to the page
            self.initial[name] = ""

    def _secret(self, name):
        value = self.cleaned_data.get(name, "")
        if value:
            return value
        if self.instance.pk:
            return getattr(self.instance, name)
        raise forms.ValidationError("Required for a new app: copy it from the app's Zoom Marketplace page.")

    def clean_client_secret(self):
        return self._secret("client_secret")

    def clean_webhook_secret_token(self):
        return self._secret("webhook_secret_token")


@admin.register(ZoomApp)
class ZoomAppAdmin(admin.ModelAdmin):
    form = ZoomAppForm
    list_display = ["name", "client_id", "account_id", "event_url", "created"]
    search_fields = ["name", "client_id", "account_id"]
    readonly_fields = ["event_url", "created"]

    def get_readonly_fields(self, request, obj=None):
        # Another client id is another app: register it as a new one.
        return [*self.readonly_fields, "client_id"] if obj else self.readonly_fields

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        # Which fields changed, never their values.
        log.info("zoom app saved", extra={"client_id": obj.client_id, "app_name": obj.name,
                                          "staff": request.user.get_username(), "changed": form.changed_data})

    @admin.display(description="Event notification URL")
    def event_url(self, app):
        return app_urls(app)["event_url"] if app.pk else ""
