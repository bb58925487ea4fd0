"""The host's effective admin policy for sharing meeting content with apps (docs/CONSENT.md rule 1).

Most specific level first: the user's row, else the first of the user's groups that has a row,
else the account's row; with no row at all, sharing is allowed (Zoom's default).
The admin console (zoomapp/console) edits SharingPolicy rows; everything else asks here.
"""

from dataclasses import dataclass

from rtms.compiled_read import CompiledModelRead
from zoomapp.consent.models import SharingPolicy
from zoomapp.marketplace.models import UserAuthorization

DEFAULT_SHARE_WITH_APPS = True


@dataclass(frozen=True)
class EffectivePolicy:
    share_with_apps: bool
    level: str  # "user", "group", "account" or "default": where the value comes from
    target_id: str


def effective_sharing_policy(account_id, user_id, group_ids=()):
    rows = {
        (row.level, row.target_id): row.share_with_apps
        for row in SharingPolicy.objects.filter(account_id=account_id)
    }
    if ("user", user_id) in rows:
        return EffectivePolicy(rows[("user", user_id)], "user", user_id)
    for group_id in group_ids:
        if ("group", group_id) in rows:
            return EffectivePolicy(rows[("group", group_id)], "group", group_id)
    if ("account", account_id) in rows:
        return EffectivePolicy(rows[("account", account_id)], "account", account_id)
    return EffectivePolicy(DEFAULT_SHARE_WITH_APPS, "default", "")


# The user's grants to any of the deployment's apps that name an account, newest first: the console reads a user's
# account and groups from the same grants (zoomapp/console/account_data.account_users: the newest in the account).
_GRANTS = CompiledModelRead(lambda user_id: UserAuthorization.objects.filter(user_id=user_id).exclude(account_id="")
                            .only("account_id", "group_ids").order_by("-updated"), "user id stand-in")


def host_account_and_groups(host_user_id, account_id):
    """(account, groups) the meeting's host is judged by: the meeting's account (when Zoom has not named it, the
    account of the host's newest grant), and the groups /v2/users/me reported in the host's newest grant to any of
    our apps in that account, as the console shows them. Not only this app's grant: a host who authorized another
    of our apps is in the same groups, and the console shows her setting through them."""
    grants = _GRANTS.all(host_user_id)
    account_id = account_id or (grants[0].account_id if grants else "")
    groups = next((list(grant.group_ids) for grant in grants if grant.account_id == account_id), [])
    return account_id, groups


def sharing_allowed_for_host(app, host_user_id, account_id):
    """Rule 1: may anything in this host's meetings be shared with apps? (`app`, the meeting's app, decides
    nothing: the host's account and groups are the same whichever of our apps she authorized.)"""
    account_id, group_ids = host_account_and_groups(host_user_id, account_id)
    return effective_sharing_policy(account_id, host_user_id, group_ids).share_with_apps
