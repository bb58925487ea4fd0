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


_GROUPS = CompiledModelRead(lambda app_pk, user_id: UserAuthorization.objects.filter(app_id=app_pk, user_id=user_id)
                            .only("group_ids"), -1, "user id stand-in")


def host_groups(app, host_user_id):
    """The host's groups as /v2/users/me reported them when the host authorized the app."""
    grant = _GROUPS.one(app.pk, host_user_id)
    return list(grant.group_ids) if grant else []


def sharing_allowed_for_host(app, host_user_id, account_id):
    """Rule 1: may anything in this host's meetings be shared with apps?"""
    if not account_id:
        grant = UserAuthorization.objects.filter(app=app, user_id=host_user_id).only("account_id").first()
        account_id = grant.account_id if grant else ""
    return effective_sharing_policy(account_id, host_user_id, host_groups(app, host_user_id)).share_with_apps
