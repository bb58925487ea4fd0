"""The host's effective admin policy for sharing meeting content with apps (docs/CONSENT.md rule 1).

Most specific level first: the user's row, else the first of the user's groups that has a row,
else the account's row; with no row at all, sharing is allowed (Zoom's default). Auto-start (autostart.py)
follows the same precedence, per app: both read their rows into `LevelRows`, which holds the rule.
The admin console (zoomapp/console) edits SharingPolicy rows; everything else asks here.
"""

from dataclasses import dataclass

from django.db.models import Q

from rtms.compiled_read import CompiledModelRead
from zoomapp.consent.models import SharingPolicy
from zoomapp.console.models import Level
from zoomapp.marketplace.models import UserAuthorization

DEFAULT_SHARE_WITH_APPS = True


@dataclass(frozen=True)
class EffectivePolicy:
    share_with_apps: bool
    level: str  # "user", "group", "account" or "default": where the value comes from
    target_id: str


class LevelRows:
    """One setting's rows in one account, (level, target id) -> value, read once; `effective` is the precedence
    rule, the only copy of it: rule 1 and auto-start ask it for one user, the console for each user of a page."""

    def __init__(self, account_id, rows):
        self.account_id = account_id
        self.values = {(level, target_id): value for level, target_id, value in rows}

    def effective(self, user_id, group_ids, default):
        """(value, level, target id) of the most specific row for the user; (default, "default", "") when none."""
        if (Level.USER, user_id) in self.values:
            return self.values[(Level.USER, user_id)], Level.USER, user_id
        for group_id in group_ids:
            if (Level.GROUP, group_id) in self.values:
                return self.values[(Level.GROUP, group_id)], Level.GROUP, group_id
        if (Level.ACCOUNT, self.account_id) in self.values:
            return self.values[(Level.ACCOUNT, self.account_id)], Level.ACCOUNT, self.account_id
        return default, "default", ""


def rows_that_apply(rows, account_id, user_ids, group_ids):
    """Of an account's setting rows, only those that can apply to these users (in these groups): a decision for
    one user, or the console's page of users, reads these few, not the rows of every user of the account."""
    return rows.filter(Q(level=Level.USER, target_id__in=list(user_ids))
                       | Q(level=Level.GROUP, target_id__in=list(group_ids))
                       | Q(level=Level.ACCOUNT, target_id=account_id))


class SharingRows(LevelRows):
    @classmethod
    def read(cls, account_id, user_ids, group_ids):
        """The account's sharing rows that can apply to these users, in these groups."""
        rows = rows_that_apply(SharingPolicy.objects.filter(account_id=account_id), account_id, user_ids, group_ids)
        return cls(account_id, rows.values_list("level", "target_id", "share_with_apps"))

    def for_user(self, user_id, group_ids):
        return EffectivePolicy(*self.effective(user_id, group_ids, DEFAULT_SHARE_WITH_APPS))


def effective_sharing_policy(account_id, user_id, group_ids=()):
    return SharingRows.read(account_id, [user_id], group_ids).for_user(user_id, group_ids)


def newest_grant_in_account(account_id, user_id):
    """The user's newest grant in the account to any of the deployment's apps, or None: what /v2/users/me last said
    of them there, their groups above all. Rule 1 judges a host by it and the console shows each user by the same
    rule (zoomapp/console/paging.py, in SQL), so the console shows the setting rule 1 applies, whichever of the apps
    the host authorized."""
    return (UserAuthorization.objects.filter(account_id=account_id, user_id=user_id).only("group_ids")
            .order_by("-updated", "-id").first())


# The user's newest grant that names an account, for a user whose account Zoom has not told us otherwise.
_NEWEST_GRANT = CompiledModelRead(
    lambda user_id: UserAuthorization.objects.filter(user_id=user_id).exclude(account_id="")
    .only("account_id", "group_ids").order_by("-updated")[:1], "user id stand-in")


def user_account_and_groups(user_id, account_id=""):
    """(account, groups) a user is judged by: `account_id`, else the account of the user's newest grant; and the
    groups of their newest grant in that account (none without one)."""
    if not account_id:
        newest = _NEWEST_GRANT.one(user_id)  # the newest of all is the newest in its own account
        return (newest.account_id, list(newest.group_ids)) if newest else ("", [])
    grant = newest_grant_in_account(account_id, user_id)
    return account_id, list(grant.group_ids) if grant else []


def sharing_allowed_for_host(host_user_id, account_id):
    """Rule 1: may anything in this host's meetings be shared with apps? Judged in the meeting's account (`account_id`;
    when Zoom has not named it, the host's own), by her groups there."""
    account_id, group_ids = user_account_and_groups(host_user_id, account_id)
    return effective_sharing_policy(account_id, host_user_id, group_ids).share_with_apps
