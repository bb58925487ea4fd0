"""Auto-start (PRODUCT.md rule 9): apps an admin set to start by themselves for a user.

The setting ("Auto-start apps that access shared real-time meeting content", per app, at account, group or
user level; zoomapp.console.models.AutoStartSetting) belongs to the *user's* account: the admin of the account
the user belongs to chose it. When that user hosts or joins a meeting (Zoom's `meeting.participant_joined`
webhook, the host included), for each app set to auto-start for them:

- the host's effective policy disables sharing with apps, or the meeting's "Share real-time meeting content with
  apps" toggle is off → nothing starts (recorded in the audit log);
- the user is in the host's account, or the host does not require approval → the app starts with no request,
  and the host's panel shows "RTMS set to auto start";
- otherwise (an admin of another account set it, and the host requires approval) → a request for the host's
  modal, exactly like a participant's request, grouped with the others.
"""

import logging
from dataclasses import dataclass

from zoomapp.console.models import AutoStartSetting, Level

log = logging.getLogger("zoomapp.autostart")


@dataclass(frozen=True)
class EffectiveAutoStart:
    on: bool
    level: str  # "user", "group", "account", or "default" (nothing set: Off)
    target_id: str


def effective_auto_start(account_id, user_id, group_ids, app):
    """Most specific first: the user's row for this app, else the first of the user's groups with one, else the
    account's; no row means Off."""
    rows = {
        (row.level, row.target_id): row.auto_start
        for row in AutoStartSetting.objects.filter(account_id=account_id, app=app)
    }
    if (Level.USER, user_id) in rows:
        return EffectiveAutoStart(rows[(Level.USER, user_id)], Level.USER, user_id)
    for group_id in group_ids:
        if (Level.GROUP, group_id) in rows:
            return EffectiveAutoStart(rows[(Level.GROUP, group_id)], Level.GROUP, group_id)
    if (Level.ACCOUNT, account_id) in rows:
        return EffectiveAutoStart(rows[(Level.ACCOUNT, account_id)], Level.ACCOUNT, account_id)
    return EffectiveAutoStart(False, "default", "")
