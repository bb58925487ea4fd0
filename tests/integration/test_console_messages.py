"""What the console says when it refuses a setting, and what a screen reader hears of its On / Off / Clear buttons.

Against daphne and the simulator's Zoom OAuth: each refusal is one message in plain words saying what to do (no
field name from the code, no second message contradicting the first), and nothing is saved; each row's buttons
name whose setting they change and say whether they are the one in force.
"""

import html
import re

import pytest
from django.conf import settings
from django.template.loader import render_to_string
from django.test import RequestFactory

from tests.console_support import post_form
from tests.integration.test_console_security import admins, apps  # noqa: F401 - fixtures
from zoomapp import texts
from zoomapp.consent.models import AuditEntry, SharingPolicy
from zoomapp.console import changes
from zoomapp.console.auth import ConsoleAdmin
from zoomapp.console.models import AppRetention, AutoStartSetting

pytestmark = pytest.mark.django_db(transaction=True)

ID_AS_ZOOM_SHOWS_IT = ("Enter the {} id as Zoom shows it: letters, digits and - _ . @ only, at most 100 characters. "
                       "Start typing a name or an id to choose one from the list.")


def error_messages(page):
    return [" ".join(html.unescape(text).split()) for text in re.findall(r'<li class="error">(.*?)</li>', page, re.S)]


def buttons(page, row_start):
    """{visible text: attributes} of the buttons in the table row (or section) that starts with `row_start`."""
    start = page.index(row_start)
    chunk = page[start:page.index("</form>", start)]
    return {text: {name: html.unescape(value) for name, value in re.findall(r'([\w-]+)="([^"]*)"', attributes)}
            for attributes, text in re.findall(r"<button ([^>]*)>([^<]*)</button>", chunk)}


@pytest.mark.parametrize(("page", "form", "message"), [
    ("sharing", {"level": "user", "target_id": "pat smith!", "value": "off"}, ID_AS_ZOOM_SHOWS_IT.format("user")),
    ("sharing", {"level": "group", "target_id": "g" * 101, "value": "off"}, ID_AS_ZOOM_SHOWS_IT.format("group")),
    ("sharing", {"level": "user", "target_id": " ", "value": "off"}, "Enter the id of the user this setting is for."),
    ("sharing", {"level": "everyone", "value": "off"},
     "Choose who the setting is for: the whole account, a group or a user."),
    ("sharing", {"level": "account", "value": "maybe"}, "Choose On, Off or Clear."),
    ("auto-start", {"level": "account", "value": "on"}, "Choose an app your account installed."),
    ("auto-start", {"app": "NOTETAKER", "level": "user", "target_id": "mia/../x", "value": "on"},
     ID_AS_ZOOM_SHOWS_IT.format("user")),
    ("auto-start", {"app": "NOTETAKER", "level": "group", "target_id": "", "value": "on"},
     "Enter the id of the group this setting is for."),
])
def test_a_refused_setting_gets_one_message_saying_what_to_do(daphne, apps, admins, page, form, message):  # noqa: F811
    notetaker, _ = apps
    olive, _, _ = admins
    if form.get("app") == "NOTETAKER":
        form = {**form, "app": notetaker.client_id}
    refused = post_form(olive, f"{daphne.url}/console/{page}", form)
    assert refused.status_code == 400
    assert error_messages(refused.text) == [message]
    assert not SharingPolicy.objects.exists() and not AutoStartSetting.objects.exists()
    assert not AuditEntry.objects.filter(kind__in=("auto_start_changed", "sharing_policy_changed")).exists()


@pytest.mark.parametrize("days", ["0", "-3", "seven", str(settings.MEDIA_RETENTION_DAYS + 1)])
def test_a_refused_retention_says_which_days_are_allowed(daphne, apps, admins, days):  # noqa: F811
    notetaker, _ = apps
    olive, _, _ = admins
    refused = post_form(olive, f"{daphne.url}/console/apps/retention", {"app": notetaker.client_id, "days": days})
    assert refused.status_code == 302
    told = error_messages(olive.get(f"{daphne.url}/console/apps", timeout=10).text)
    assert told == [f"Enter how many days to keep media, from 1 to {settings.MEDIA_RETENTION_DAYS} (this deployment "
                    "deletes it after that), or leave it empty to keep it as long as the deployment does."]
    assert not AppRetention.objects.exists()


def test_each_setting_button_names_whose_setting_it_changes_and_says_whether_it_is_pressed(
        daphne, apps, admins):  # noqa: F811
    notetaker, _ = apps
    olive, _, people = admins
    admin = ConsoleAdmin(people["olive"], "acctA", "Owner", "Olive Owner", notetaker.client_id)
    changes.set_sharing_policy(admin, "user", people["mia"], False)
    changes.set_sharing_policy(admin, "group", "gA", True)
    changes.set_auto_start(admin, notetaker, "user", people["mia"], True)

    sharing = olive.get(f"{daphne.url}/console/sharing", timeout=10).text
    assert buttons(sharing, 'data-testid="account-setting"') == {
        "On": {"type": "submit", "name": "value", "value": "on", "class": "small", "aria-pressed": "false",
               "aria-label": "On for the whole account"},
        "Off": {"type": "submit", "name": "value", "value": "off", "class": "small", "aria-pressed": "false",
                "aria-label": "Off for the whole account"}}
    group = buttons(sharing, 'data-group="gA"')
    assert {text: (b["aria-label"], b.get("aria-pressed")) for text, b in group.items()} == {
        "On": ("On for group gA", "true"), "Off": ("Off for group gA", "false"),
        "Clear": ("Clear the setting for group gA", None)}
    mia = buttons(sharing, f'<tr data-user="{people["mia"]}"')
    assert {text: (b["aria-label"], b.get("aria-pressed")) for text, b in mia.items()} == {
        "On": ("On for Mia Member", "false"), "Off": ("Off for Mia Member", "true"),
        "Clear": ("Clear the setting for Mia Member", None)}
    adding = buttons(sharing, '<datalist id="known-users">')
    assert [b["aria-label"] for b in adding.values()] == ["On for the user id entered", "Off for the user id entered"]

    auto_start = olive.get(f"{daphne.url}/console/auto-start", timeout=10).text
    account_row = buttons(auto_start, f'<tr data-app="{notetaker.client_id}"')
    assert [b["aria-label"] for b in account_row.values()] == ["On for the whole account (Notetaker)",
                                                              "Off for the whole account (Notetaker)"]
    override = buttons(auto_start, f'<tr data-target="{people["mia"]}"')
    assert {text: (b["aria-label"], b.get("aria-pressed")) for text, b in override.items()} == {
        "On": ("On for Mia Member (Notetaker)", "true"), "Off": ("Off for Mia Member (Notetaker)", "false"),
        "Clear": ("Clear the setting for Mia Member (Notetaker)", None)}


def test_auto_start_with_no_installed_app_says_how_an_app_gets_there():
    """A signed-in admin's own grant installs the app they signed in with, so the page is rendered as the view
    renders it for an account without one (a grant removed between two requests)."""
    request = RequestFactory().get("/console/auto-start")
    admin = ConsoleAdmin("olive", "acctA", "Owner", "Olive Owner", "cid")
    users = type("NoUsers", (list,), {"search": "", "refusal": ""})()
    page = render_to_string("console/auto_start.html", {
        "admin": admin, "section": "auto_start", "texts": texts, "apps": [], "users": users, "overrides": [],
        "app_rows": [], "groups": []}, request=request)
    said = " ".join(re.search(r'<p class="muted" data-testid="no-apps">(.*?)</p>', page, re.S).group(1).split())
    assert html.unescape(said) == ("No user of your account has installed one of this deployment's apps yet. Once a "
                                   "user adds one from Zoom's App Marketplace, you can choose it here.")
