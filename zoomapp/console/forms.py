"""Console forms: every value an admin posts is checked here before it reaches zoomapp.console.changes."""

from django import forms
from django.conf import settings
from django.core.validators import RegexValidator

from zoomapp.console import account_data
from zoomapp.console.models import Level
from zoomapp.marketplace.models import ZoomApp

ZOOM_ID = RegexValidator(r"^[A-Za-z0-9_\-.@]{1,100}$", "Use the id as Zoom shows it (letters, digits, - _ . @).")
VALUES = {"on": True, "off": False, "unset": None}


class ConsoleForm(forms.Form):
    def error_text(self):
        return " ".join(f"{'' if name == '__all__' else (self.fields[name].label or name) + ': '}{' '.join(errs)}"
                        for name, errs in self.errors.items())


class LevelSettingForm(ConsoleForm):
    """A setting at account, group or user level, in the signed-in admin's account.

    Turning something on or off for a user or a group requires that user or group to be known to belong to the
    account (account_data.user_in_account, group_in_account): an admin must never set what happens to another
    account's users (docs/SECURITY.md "Operators and account admins"). Clearing a row is always allowed, so rows
    written before this rule can be removed."""

    level = forms.ChoiceField(choices=Level.choices)
    target_id = forms.CharField(required=False, max_length=100, validators=[ZOOM_ID])
    value = forms.ChoiceField(choices=[(k, k) for k in VALUES])

    def __init__(self, *args, account_id, **kwargs):
        super().__init__(*args, **kwargs)
        self.account_id = account_id

    def clean(self):
        data = super().clean()
        level, target_id = data.get("level"), data.get("target_id")
        if level in (Level.GROUP, Level.USER) and not target_id:
            raise forms.ValidationError(f"A {level} setting needs the {level} id.")
        if "value" not in data:
            return data
        data["value"] = VALUES[data["value"]]
        if data["value"] is not None and level == Level.USER and not account_data.user_in_account(
                self.account_id, target_id):
            raise forms.ValidationError(
                f"{target_id} is not a user of your account that we know of. Settings may name users of your "
                "account who installed one of its apps or hosted one of its meetings.")
        if data["value"] is not None and level == Level.GROUP and not account_data.group_in_account(
                self.account_id, target_id):
            raise forms.ValidationError(
                f"{target_id} is not a group of your account that we know of. Zoom tells us a user's groups when "
                "they install one of the account's apps.")
        return data


class AutoStartForm(LevelSettingForm):
    app = forms.CharField(max_length=100)

    def __init__(self, *args, apps, **kwargs):
        super().__init__(*args, **kwargs)
        self.apps = {app.client_id: app for app in apps}

    def clean_app(self):
        app = self.apps.get(self.cleaned_data["app"])
        if app is None:
            raise forms.ValidationError("Choose an app your account installed.")
        return app


DATE = {"input_formats": ["%Y-%m-%d"], "error_messages": {"invalid": "Enter a date as YYYY-MM-DD."}}
PAGE = {"min_value": 1, "error_messages": {"invalid": "This page link is not valid: start from the newest.",
                                           "min_value": "This page link is not valid: start from the newest."}}
# No control characters: what an admin types into a search box, not what a script forges.
PRINTABLE = RegexValidator(r"^[^\x00-\x1f\x7f]*$", "Use printable characters only.")


class AuditFilterForm(ConsoleForm):
    """The audit log's filters (the page and its CSV export), and the page: `before`, the last entry shown."""

    meeting = forms.CharField(required=False, max_length=100, validators=[PRINTABLE])
    user = forms.CharField(required=False, max_length=100, validators=[PRINTABLE])
    client_id = forms.CharField(required=False, max_length=100, validators=[PRINTABLE])
    kind = forms.CharField(required=False, max_length=50, validators=[PRINTABLE])
    date_from = forms.DateField(required=False, label="from", **DATE)
    date_to = forms.DateField(required=False, label="to", **DATE)
    before = forms.IntegerField(required=False, **PAGE)

    def clean(self):
        data = super().clean()
        if data.get("date_from") and data.get("date_to") and data["date_from"] > data["date_to"]:
            raise forms.ValidationError("The “from” date is after the “to” date.")
        return data

    def filters(self):
        """The cleaned filters that are set, without the page (what an export or the audit entry of one names)."""
        return {name: value for name, value in self.cleaned_data.items() if value and name != "before"}


class MeetingSearchForm(ConsoleForm):
    """The meetings page's search (a word of the topic, a meeting UUID, a host's user id) and page."""

    q = forms.CharField(required=False, max_length=300, validators=[PRINTABLE], label="search")
    before = forms.IntegerField(required=False, **PAGE)


class RetentionForm(ConsoleForm):
    app = forms.ModelChoiceField(queryset=ZoomApp.objects.none(), to_field_name="client_id",
                                 error_messages={"invalid_choice": "Choose an app your account installed."})
    days = forms.IntegerField(required=False, min_value=1)

    def __init__(self, *args, apps, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["app"].queryset = apps

    def clean_days(self):
        days = self.cleaned_data.get("days")
        # The deployment's MEDIA_RETENTION_DAYS is the longest anything is kept: accounts may only shorten it.
        if days is not None and days > settings.MEDIA_RETENTION_DAYS:
            raise forms.ValidationError(f"At most {settings.MEDIA_RETENTION_DAYS} days in this deployment.")
        return days
