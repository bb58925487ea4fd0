"""Console forms: every value an admin posts is checked here before it reaches zoomapp.console.changes."""

import re
from datetime import date

from django import forms
from django.conf import settings
from django.core.validators import RegexValidator

from zoomapp.console import account_data
from zoomapp.console.models import Level
from zoomapp.marketplace.models import ZoomApp

ZOOM_ID = re.compile(r"[A-Za-z0-9_\-.@]{1,100}")
VALUES = {"on": True, "off": False, "unset": None}
CHOOSE_LEVEL = "Choose who the setting is for: the whole account, a group or a user."
CHOOSE_VALUE = "Choose On, Off or Clear."
CHOOSE_APP = "Choose an app your account installed."


class ConsoleForm(forms.Form):
    def error_text(self):
        """Every message, after its field's label (the word the page shows for the field) when it has one. A field
        without a label has messages that say what they are about: a name from the code never reaches the admin."""
        texts = []
        for name, errors in self.errors.items():
            label = self.fields[name].label if name in self.fields else None  # "__all__": the form's own
            texts.append(f"{label}: {' '.join(errors)}" if label else " ".join(errors))
        return " ".join(texts)


class LevelSettingForm(ConsoleForm):
    """A setting at account, group or user level, in the signed-in admin's account.

    Turning something on or off for a user or a group requires that user or group to be known to belong to the
    account (account_data.user_in_account, group_in_account): an admin must never set what happens to another
    account's users (docs/SECURITY.md "Operators and account admins"). Clearing a row is always allowed, so rows
    written before this rule can be removed."""

    level = forms.ChoiceField(choices=Level.choices,
                              error_messages={"required": CHOOSE_LEVEL, "invalid_choice": CHOOSE_LEVEL})
    target_id = forms.CharField(required=False)  # checked in clean(), whose messages name the level
    value = forms.ChoiceField(choices=[(k, k) for k in VALUES],
                              error_messages={"required": CHOOSE_VALUE, "invalid_choice": CHOOSE_VALUE})

    def __init__(self, *args, account_id, **kwargs):
        super().__init__(*args, **kwargs)
        self.account_id = account_id

    def clean(self):
        data = super().clean()
        level, target_id = data.get("level"), data.get("target_id")
        if level in (Level.GROUP, Level.USER):
            if not target_id:
                raise forms.ValidationError(f"Enter the id of the {level} this setting is for.")
            if not ZOOM_ID.fullmatch(target_id):
                raise forms.ValidationError(
                    f"Enter the {level} id as Zoom shows it: letters, digits and - _ . @ only, at most 100 "
                    "characters. Start typing a name or an id to choose one from the list.")
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
    app = forms.CharField(max_length=100, error_messages={"required": CHOOSE_APP, "max_length": CHOOSE_APP})

    def __init__(self, *args, apps, **kwargs):
        super().__init__(*args, **kwargs)
        self.apps = {app.client_id: app for app in apps}

    def clean_app(self):
        app = self.apps.get(self.cleaned_data["app"])
        if app is None:
            raise forms.ValidationError(CHOOSE_APP)
        return app


# The days an audit filter may name: the "to" day's end is the next midnight, which the last day Python can hold
# (9999-12-31) has not; no entry is older than the first.
FIRST_DAY, LAST_DAY = date(2000, 1, 1), date(2999, 12, 31)


def _a_day_in_range(day):
    if not FIRST_DAY <= day <= LAST_DAY:
        raise forms.ValidationError(f"Enter a date from {FIRST_DAY.isoformat()} to {LAST_DAY.isoformat()}.")


DATE = {"input_formats": ["%Y-%m-%d"], "error_messages": {"invalid": "Enter a date as YYYY-MM-DD."},
        "validators": [_a_day_in_range]}
PAGE = {"min_value": 1, "error_messages": {"invalid": "This page link is not valid: start from the newest.",
                                           "min_value": "This page link is not valid: start from the newest."}}
# No control characters: what an admin types into a search box, not what a script forges.
PRINTABLE = RegexValidator(r"^[^\x00-\x1f\x7f]*$", "Use printable characters only.")


class AuditFilterForm(ConsoleForm):
    """The audit log's filters (the page and its CSV export), and the page: `before`, the last entry shown."""

    meeting = forms.CharField(required=False, max_length=100, validators=[PRINTABLE], label="meeting")
    user = forms.CharField(required=False, max_length=100, validators=[PRINTABLE], label="user")
    client_id = forms.CharField(required=False, max_length=100, validators=[PRINTABLE], label="app")
    kind = forms.CharField(required=False, max_length=50, validators=[PRINTABLE], label="kind")
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


def _days_kept():
    return (f"Enter how many days to keep media, from 1 to {settings.MEDIA_RETENTION_DAYS} (this deployment "
            "deletes it after that), or leave it empty to keep it as long as the deployment does.")


class RetentionForm(ConsoleForm):
    app = forms.ModelChoiceField(queryset=ZoomApp.objects.none(), to_field_name="client_id",
                                 error_messages={"required": CHOOSE_APP, "invalid_choice": CHOOSE_APP})
    days = forms.IntegerField(required=False, min_value=1)

    def __init__(self, *args, apps, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["app"].queryset = apps
        # Read when the form is made: MEDIA_RETENTION_DAYS is the deployment's setting.
        self.fields["days"].error_messages.update(invalid=_days_kept(), min_value=_days_kept())

    def clean_days(self):
        days = self.cleaned_data.get("days")
        # The deployment's MEDIA_RETENTION_DAYS is the longest anything is kept: accounts may only shorten it.
        if days is not None and days > settings.MEDIA_RETENTION_DAYS:
            raise forms.ValidationError(_days_kept())
        return days
