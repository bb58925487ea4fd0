"""The account/group/user precedence table, as an admin sets it in the console, and the host outcomes it drives.

"Share real-time meeting content with apps": user overrides group overrides account; nothing set = allowed.
"Auto-start" (per app): the same precedence; nothing set = Off. Rule 1: a participant's request in a meeting
whose host's effective setting is Off ends as "Host cannot approve your app's access to meeting content.".
"""

from datetime import timedelta

import pytest
from django.utils import timezone

from tests.consent_support import make_app, meeting_uuid
from zoomapp import texts
from zoomapp.consent import autostart, meetings, policy
from zoomapp.consent.actions import presence, sharing_requests
from zoomapp.consent.models import AuditEntry, Share
from zoomapp.consent.permissions import Actor
from zoomapp.console import changes, paging
from zoomapp.console.auth import ConsoleAdmin
from zoomapp.marketplace.models import UserAuthorization

pytestmark = pytest.mark.django_db

ADMIN = ConsoleAdmin("adm1", "acctP", "Admin", "Ada Admin", "cid")
HOST_ID, GROUP = "hostP", "groupP"

#  account  group  user    ->  effective  source
SHARING_TABLE = [
    (None, None, None, True, "default"),
    (True, None, None, True, "account"),
    (False, None, None, False, "account"),
    (False, True, None, True, "group"),
    (True, False, None, False, "group"),
    (False, True, False, False, "user"),
    (True, False, True, True, "user"),
    (None, None, False, False, "user"),
    (None, False, True, True, "user"),
]


def set_levels(setter, account, group, user):
    for level, target, value in (("account", "", account), ("group", GROUP, group), ("user", HOST_ID, user)):
        if value is not None:
            setter(level, target, value)


@pytest.mark.parametrize("account,group,user,effective,source", SHARING_TABLE)
def test_sharing_precedence(account, group, user, effective, source):
    set_levels(lambda level, target, value: changes.set_sharing_policy(ADMIN, level, target, value),
               account, group, user)
    result = policy.effective_sharing_policy(ADMIN.account_id, HOST_ID, [GROUP])
    assert (result.share_with_apps, result.level) == (effective, source)


@pytest.mark.parametrize("account,group,user,effective,source", SHARING_TABLE)
def test_host_outcome_follows_the_hosts_effective_setting(account, group, user, effective, source):
    """The host's effective value decides what a participant's request becomes (rule 1, else rule 5)."""
    app = make_app()
    UserAuthorization.objects.create(app=app, user_id=HOST_ID, account_id=ADMIN.account_id, group_ids=[GROUP],
                                      role_name="Member", access_token="a", refresh_token="r",
                                      expires_at=timezone.now() + timedelta(hours=1))
    set_levels(lambda level, target, value: changes.set_sharing_policy(ADMIN, level, target, value),
               account, group, user)
    meeting = meetings.get_meeting(app, meeting_uuid(), host_user_id=HOST_ID, account_id=ADMIN.account_id)
    presence.do_host_joined(meeting, HOST_ID, "Hana")
    presence.do_participant_joined(meeting, "partP", "Pat")
    sharing_requests.do_request(meeting, actor=Actor("partP", "Pat", "test"))
    outcome = Share.objects.get(meeting=meeting, app=app, user_id="partP").status
    assert outcome == ("pending" if effective else "host_cannot_approve")
    assert texts.OUTCOME_TEXTS[outcome] == (
        "Request sent to the host." if effective else "Host cannot approve your app's access to meeting content.")


def authorized(app, account_id, groups):
    UserAuthorization.objects.create(app=app, user_id=HOST_ID, account_id=account_id, group_ids=groups,
                                      role_name="Member", access_token="a", refresh_token="r",
                                      expires_at=timezone.now() + timedelta(hours=1))


def pats_outcome(app):
    meeting = meetings.get_meeting(app, meeting_uuid(), host_user_id=HOST_ID, account_id=ADMIN.account_id)
    presence.do_host_joined(meeting, HOST_ID, "Hana")
    presence.do_participant_joined(meeting, "partP", "Pat")
    return sharing_requests.do_request(meeting, actor=Actor("partP", "Pat", "test")).status


def test_the_hosts_groups_are_those_the_console_shows_whichever_of_our_apps_she_authorized():
    """The console reads a user's groups from her grant to any of the deployment's apps: a meeting of an app she
    never authorized is judged by the same group setting, not by the account's."""
    notetaker, recorder = make_app("Notetaker"), make_app("Recorder")
    authorized(recorder, ADMIN.account_id, [GROUP])
    changes.set_sharing_policy(ADMIN, "group", GROUP, False)
    [hana] = [user for user in paging.users_with_effective_settings(ADMIN.account_id, [notetaker, recorder], {})
              if user.user_id == HOST_ID]
    assert (hana.sharing.share_with_apps, hana.sharing.level) == (False, "group")
    assert pats_outcome(notetaker) == "host_cannot_approve"


def test_groups_from_a_grant_in_another_account_never_apply():
    """Groups belong to an account: those /v2/users/me reported while the host was in another account are not
    the meeting's account's groups (the console does not show them there either)."""
    notetaker = make_app("Notetaker")
    authorized(notetaker, "acctFormer", [GROUP])
    changes.set_sharing_policy(ADMIN, "group", GROUP, False)
    assert pats_outcome(notetaker) == "pending"


def test_the_hosts_newest_grant_in_the_account_names_her_groups_for_the_console_and_for_rule_1():
    """She moved from a group whose sharing is off to one left at the account's On: her newest grant says so, and
    the console shows her On where her meetings share."""
    notetaker, recorder = make_app("Notetaker"), make_app("Recorder")
    authorized(recorder, ADMIN.account_id, ["groupOff"])
    authorized(notetaker, ADMIN.account_id, ["groupOn"])
    changes.set_sharing_policy(ADMIN, "group", "groupOff", False)
    [hana] = [user for user in paging.users_page(ADMIN.account_id, {}) if user.user_id == HOST_ID]
    assert hana.group_ids == ["groupOn"]
    assert policy.user_account_and_groups(HOST_ID, ADMIN.account_id) == (ADMIN.account_id, ["groupOn"])
    assert pats_outcome(recorder) == "pending"


def test_a_host_whose_account_zoom_has_not_named_is_judged_in_her_newest_grants_account():
    notetaker, recorder = make_app("Notetaker"), make_app("Recorder")
    authorized(recorder, "acctFormer", ["groupFormer"])
    authorized(notetaker, ADMIN.account_id, [GROUP])
    changes.set_sharing_policy(ADMIN, "group", GROUP, False)
    assert policy.user_account_and_groups(HOST_ID) == (ADMIN.account_id, [GROUP])
    assert policy.sharing_allowed_for_host(HOST_ID, "") is False


def test_first_group_with_a_setting_wins_and_clearing_falls_back():
    changes.set_sharing_policy(ADMIN, "account", "", True)
    changes.set_sharing_policy(ADMIN, "group", "g2", False)
    assert policy.effective_sharing_policy(ADMIN.account_id, "u1", ["g1", "g2"]).level == "group"
    changes.set_sharing_policy(ADMIN, "group", "g2", None)  # "Clear"
    result = policy.effective_sharing_policy(ADMIN.account_id, "u1", ["g1", "g2"])
    assert (result.share_with_apps, result.level) == (True, "account")


def test_another_accounts_rows_never_apply():
    other = ConsoleAdmin("adm2", "acctOther", "Owner", "Otto", "cid")
    changes.set_sharing_policy(other, "user", HOST_ID, False)
    changes.set_sharing_policy(other, "account", "", False)
    assert policy.effective_sharing_policy(ADMIN.account_id, HOST_ID, []).share_with_apps is True


#  account  group  user    ->  auto-start  source
AUTO_START_TABLE = [
    (None, None, None, False, "default"),
    (True, None, None, True, "account"),
    (True, False, None, False, "group"),
    (False, True, None, True, "group"),
    (True, True, False, False, "user"),
    (False, False, True, True, "user"),
]


@pytest.mark.parametrize("account,group,user,effective,source", AUTO_START_TABLE)
def test_auto_start_precedence_per_app(account, group, user, effective, source):
    app, other_app = make_app("Notetaker"), make_app("Recorder")
    set_levels(lambda level, target, value: changes.set_auto_start(ADMIN, app, level, target, value),
               account, group, user)
    result = autostart.effective_auto_start(ADMIN.account_id, HOST_ID, [GROUP], app)
    assert (result.on, result.level) == (effective, source)
    # Settings are per app: the other app is untouched.
    assert autostart.effective_auto_start(ADMIN.account_id, HOST_ID, [GROUP], other_app).on is False


def console_row(app):
    [hana] = [user for user in paging.users_with_effective_settings(ADMIN.account_id, [app], {})
              if user.user_id == HOST_ID]
    return hana


@pytest.mark.parametrize("account,group,user,effective,source", SHARING_TABLE)
def test_the_console_shows_each_user_the_sharing_setting_rule_1_applies(account, group, user, effective, source):
    app = make_app()
    authorized(app, ADMIN.account_id, [GROUP])
    set_levels(lambda level, target, value: changes.set_sharing_policy(ADMIN, level, target, value),
               account, group, user)
    hana = console_row(app)
    assert (hana.sharing.share_with_apps, hana.sharing.level) == (effective, source)


@pytest.mark.parametrize("account,group,user,effective,source", AUTO_START_TABLE)
def test_the_console_shows_each_user_the_auto_start_that_applies_to_them(account, group, user, effective, source):
    app = make_app()
    authorized(app, ADMIN.account_id, [GROUP])
    set_levels(lambda level, target, value: changes.set_auto_start(ADMIN, app, level, target, value),
               account, group, user)
    setting = console_row(app).auto_start[app.client_id]
    assert (setting.on, setting.level) == (effective, source)


def test_every_console_change_is_audited_with_who_and_what():
    app = make_app()
    changes.set_sharing_policy(ADMIN, "group", GROUP, False, address="10.0.0.7")
    changes.set_auto_start(ADMIN, app, "user", HOST_ID, True, address="10.0.0.7")
    sharing, auto = AuditEntry.objects.filter(actor_user_id=ADMIN.user_id).order_by("id")
    assert (sharing.kind, sharing.actor_user_id, sharing.actor_role, sharing.source, sharing.source_address) == (
        "sharing_policy_changed", "adm1", "admin", "console", "10.0.0.7")
    assert sharing.detail == {"account_id": "acctP", "level": "group", "target_id": GROUP, "previous": None,
                              "value": False}
    assert (auto.kind, auto.app, auto.subject_user_id, auto.reason) == (
        "auto_start_changed", app, HOST_ID, "user setting not set -> on")
