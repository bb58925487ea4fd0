"""Console forms: every value an admin posts is checked here before it reaches zoomapp.console.changes."""

from django import forms
from django.conf import settings
from django.core.validators import RegexValidator

from zoomapp.console.models import Level
from zoomapp.marketplace.models import ZoomApp

ZOOM_ID = RegexValidator(r"^[A-Za-z0-9_\-.@]{1,100}$", "Use the id as Zoom shows it (letters, digits, - _ . @).")
VALUES = {"on": True, "off": False, "unset": None}


class ConsoleForm(forms.Form):
    def error_text(self):
        return " ".join(f"{'' if name == '__all__' else name + ': '}{' '.join(errs)}" for name, errs in self.errors.items())


class LevelSettingForm(ConsoleForm):
    level = forms.ChoiceField(choices=Level.choices)
    target_id = forms.CharField(required=False, max_length=100, validators=[ZOOM_ID])
    value = forms.ChoiceField(choices=[(k, k) for k in VALUES])

    def clean(self):
        data = super().clean()
        if data.get("level") in (Level.GROUP, Level.USER) and not data.get("target_id"):
            raise forms.ValidationError(f"A {data['level']} setting needs the {data['level']} id.")
        if "value" in data:
            data["value"] = VALUES[data["value"]]
        return data


class AutoStartForm(LevelSettingForm):
    app = forms.CharField(max_length=100)

    def __init__(self, *args, apps=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.apps = {app.client_id: app for app in apps}

    def clean_app(self):
        app = self.apps.get(self.cleaned_data["app"])
        if app is None:
            raise forms.ValidationError("Choose an app to auto-start.")
        return app


class AuditFilterForm(ConsoleForm):
    meeting = forms.CharField(required=False, max_length=100)
    user = forms.CharField(required=False, max_length=100)
    client_id = forms.CharField(required=False, max_length=100)
    kind = forms.CharField(required=False, max_length=50)


class RegisterAppForm(ConsoleForm):
    name = forms.CharField(max_length=100)
    client_id = forms.CharField(max_length=100, validators=[ZOOM_ID])
    client_secret = forms.CharField(required=False, max_length=200, widget=forms.PasswordInput,
                                    help_text="Leave empty to keep the stored one (or generate one for a new app).")
    webhook_secret_token = forms.CharField(required=False, max_length=200, widget=forms.PasswordInput,
                                           help_text="Zoom's webhook Secret Token, not the client secret.")
    home_url = forms.URLField(required=False, max_length=500, assume_scheme="https", label="Home URL")
    with_simulator = forms.BooleanField(required=False, initial=True, label="Also register it with the Zoom simulator")


class RetentionForm(ConsoleForm):
    app = forms.ModelChoiceField(queryset=ZoomApp.objects.all(), to_field_name="client_id")
    days = forms.IntegerField(required=False, min_value=1)

    def clean_days(self):
        days = self.cleaned_data.get("days")
        # The deployment's MEDIA_RETENTION_DAYS is the longest anything is kept: accounts may only shorten it.
        if days is not None and days > settings.MEDIA_RETENTION_DAYS:
            raise forms.ValidationError(f"At most {settings.MEDIA_RETENTION_DAYS} days in this deployment.")
        return days
