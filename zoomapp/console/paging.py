"""The console's long lists a page at a time: the audit log and the meetings, newest first, each page read after
the last row of the one before (keyset paging on the account's own index), never by offset, so the thousandth page
costs what the first does; and the users of the sharing and auto-start pages, by name, numbered pages of them read
by offset in SQL: only a page's users, and the setting rows that can apply to them, reach Python.

Every query here filters by the signed-in admin's account (most start from account_data's reads).
"""

import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from urllib.parse import urlencode

from django.db import connection
from django.db.models import Q

from zoomapp.consent.autostart import AutoStartRows
from zoomapp.consent.models import Meeting, Participant, Share, SharingPolicy
from zoomapp.consent.policy import SharingRows
from zoomapp.console import account_data
from zoomapp.console.models import AutoStartSetting, Level
from zoomapp.marketplace.models import UserAuthorization

AUDIT_PAGE_SIZE = 200
MEETINGS_PAGE_SIZE = 100
# Rows the audit CSV reads per query: each query is short (no cursor held open for the whole export), and what is
# in memory at once is one chunk, whatever the export's size.
AUDIT_CSV_CHUNK = 2000


@dataclass
class Page:
    rows: list
    older: int | None  # the cursor of the next (older) page, None on the last one


def _day_start(day):
    """Midnight UTC of a date (the console shows times in UTC)."""
    return datetime.combine(day, time.min, tzinfo=UTC)


def audit_entries(account_id, filters):
    """The account's entries matching the audit filters (AuditFilterForm's cleaned data), newest first; a date
    range takes whole UTC days, `date_to` included."""
    entries = account_data.audit_entries(
        account_id, **{name: filters.get(name, "") for name in ("meeting", "user", "client_id", "kind")})
    if filters.get("date_from"):
        entries = entries.filter(created__gte=_day_start(filters["date_from"]))
    if filters.get("date_to"):
        entries = entries.filter(created__lt=_day_start(filters["date_to"] + timedelta(days=1)))
    return entries


def audit_page(account_id, filters, before=None, size=AUDIT_PAGE_SIZE):
    """One page of entries older than the entry `before` (the newest when None)."""
    entries = audit_entries(account_id, filters).select_related("app")
    if before:
        entries = entries.filter(id__lt=before)
    return _first(entries, size)


def meetings_matching(account_id, search=""):
    """The account's meetings (one row per app), newest first; `search` is a word of the topic, or the meeting's
    UUID or its host's user id exactly."""
    meetings = account_data.account_meetings(account_id).order_by("-created", "-id")
    if search:
        meetings = meetings.filter(Q(topic__icontains=search) | Q(uuid=search) | Q(host_user_id=search))
    return meetings


class NoSuchPage(Exception):
    """The page's cursor names no meeting of the account (a stale or edited link)."""


def meetings_page(account_id, search="", before=None, size=MEETINGS_PAGE_SIZE):
    """One page of meetings older than the meeting `before` (a meeting row's id; the newest when None)."""
    meetings = meetings_matching(account_id, search)
    if before:
        after = account_data.account_meetings(account_id).filter(pk=before).values_list("created", flat=True).first()
        if after is None:
            raise NoSuchPage(before)
        # (created, id) below the cursor's: rows created at the same instant are told apart by their id.
        meetings = meetings.filter(Q(created__lt=after) | Q(created=after, id__lt=before))
    return _first(meetings, size)


def _first(rows, size):
    """The first `size` rows, read with one more to tell whether an older page follows."""
    rows = list(rows[:size + 1])
    return Page(rows[:size], rows[size - 1].id if len(rows) > size else None)


# --- the users of the sharing and auto-start pages -----------------------------------------------------------------

USERS_PER_PAGE = 100
SEARCH_MAX_LENGTH = 100
_PAGE_NUMBER = re.compile(r"[1-9][0-9]{0,8}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")  # what a script forges, not what an admin types


@dataclass
class AccountUser:
    user_id: str
    name: str = ""
    role: str = ""
    group_ids: list = field(default_factory=list)
    sharing: object = None  # EffectivePolicy
    sharing_row: bool | None = None  # the user's own setting, when there is one
    auto_start: dict = field(default_factory=dict)  # client_id -> EffectiveAutoStart


# The users of an account we know of: those who authorized any of our apps (their newest grant in the account says
# their name, role and groups, as policy.newest_grant_in_account reads them for rule 1), then hosts of the
# account's meetings and users named in one of its user-level settings, without a grant there (named as a meeting of
# the account knows them: as a participant, else as a share's requester). `found`: those whose name or id contains
# the search, in any case (all of them for an empty one).
_ACCOUNT_USERS = f"""
    WITH granted AS (
        SELECT DISTINCT ON (user_id) user_id, display_name AS name, role_name AS role, group_ids
        FROM {UserAuthorization._meta.db_table} WHERE account_id = %(account)s
        ORDER BY user_id, updated DESC, id DESC
    ), named AS (
        SELECT host_user_id AS user_id FROM {Meeting._meta.db_table}
        WHERE account_id = %(account)s AND host_user_id <> ''
        UNION SELECT target_id FROM {SharingPolicy._meta.db_table}
        WHERE account_id = %(account)s AND level = '{Level.USER}'
        UNION SELECT target_id FROM {AutoStartSetting._meta.db_table}
        WHERE account_id = %(account)s AND level = '{Level.USER}'
    ), users AS (
        SELECT user_id, name, role, group_ids FROM granted
        UNION ALL
        SELECT named.user_id, COALESCE(
            (SELECT participant.name FROM {Participant._meta.db_table} participant
             JOIN {Meeting._meta.db_table} meeting ON meeting.id = participant.meeting_id
             WHERE meeting.account_id = %(account)s AND participant.user_id = named.user_id AND participant.name <> ''
             ORDER BY participant.id DESC LIMIT 1),
            (SELECT share.user_name FROM {Share._meta.db_table} share
             JOIN {Meeting._meta.db_table} meeting ON meeting.id = share.meeting_id
             WHERE meeting.account_id = %(account)s AND share.user_id = named.user_id AND share.user_name <> ''
             ORDER BY share.id DESC LIMIT 1), ''), '', '[]'::jsonb
        FROM named WHERE named.user_id NOT IN (SELECT user_id FROM granted)
    ), found AS (
        SELECT * FROM users
        WHERE strpos(lower(user_id), lower(%(search)s)) > 0 OR strpos(lower(name), lower(%(search)s)) > 0
    )"""

# By name (the id of a user without one), in any case, as code points compare whatever the database's locale; then
# by id, so that users of the same name keep their places from page to page.
_PAGE_OF_FOUND = _ACCOUNT_USERS + """
    SELECT user_id, name, role, group_ids::text FROM found
    ORDER BY lower(CASE WHEN name <> '' THEN name ELSE user_id END) COLLATE "C", user_id COLLATE "C"
    LIMIT %(size)s OFFSET %(offset)s"""

_NAMES = _ACCOUNT_USERS + """
    SELECT user_id, name FROM users WHERE user_id = ANY(%(ids)s) AND name <> ''"""

# The groups the pages offer: those of every user's newest grant in the account, and those a setting names.
_ACCOUNT_GROUPS = f"""
    WITH granted AS (
        SELECT DISTINCT ON (user_id) group_ids FROM {UserAuthorization._meta.db_table} WHERE account_id = %(account)s
        ORDER BY user_id, updated DESC, id DESC
    )
    SELECT group_id FROM (
        SELECT jsonb_array_elements_text(group_ids) FROM granted
        UNION SELECT target_id FROM {SharingPolicy._meta.db_table}
        WHERE account_id = %(account)s AND level = '{Level.GROUP}'
        UNION SELECT target_id FROM {AutoStartSetting._meta.db_table}
        WHERE account_id = %(account)s AND level = '{Level.GROUP}'
    ) groups (group_id) ORDER BY group_id COLLATE "C"
"""


def _rows(sql, **params):
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


@dataclass
class UserPage:
    """One page of the account's users (by name), those whose name or id contains `search`; iterating it gives the
    page's users. `refusal` says what was wrong with the query asked for (the page shown instead is the first, of
    the search when it was valid)."""
    users: list
    search: str
    number: int
    pages: int
    matching: int
    refusal: str = ""

    def __iter__(self):
        return iter(self.users)

    def __len__(self):
        return len(self.users)

    def _query(self, number):
        return "?" + urlencode({**({"q": self.search} if self.search else {}), "page": number})

    @property
    def previous_query(self):
        return self._query(self.number - 1) if self.number > 1 else ""

    @property
    def next_query(self):
        return self._query(self.number + 1) if self.number < self.pages else ""


def users_page(account_id, query):
    """The page of the account's users a console page's query string asks for: `q`, a part of a name or user id;
    `page`, a number from 1. Two queries, whatever the account's size: how many users match, and the page's."""
    search, number, refusals = query.get("q", "").strip(), query.get("page", "1"), []
    if len(search) > SEARCH_MAX_LENGTH or _CONTROL.search(search):
        refusals.append(f"Search for a name or a user id: at most {SEARCH_MAX_LENGTH} printable characters.")
        search = ""
    if _PAGE_NUMBER.fullmatch(number):
        number = int(number)
    else:
        refusals.append("This page link is not valid: pages are numbered from 1.")
        number = 1
    [(matching,)] = _rows(_ACCOUNT_USERS + " SELECT count(*) FROM found", account=account_id, search=search)
    pages = max(1, -(-matching // USERS_PER_PAGE))
    if number > pages:
        refusals.append(f"There is no page {number} of these users: the last is page {pages}.")
        number = 1
    rows = _rows(_PAGE_OF_FOUND, account=account_id, search=search, size=USERS_PER_PAGE,
                 offset=(number - 1) * USERS_PER_PAGE)
    users = [AccountUser(user_id, name, role, list(json.loads(groups))) for user_id, name, role, groups in rows]
    return UserPage(users, search, number, pages, matching, " ".join(refusals))


def users_with_effective_settings(account_id, apps, query):
    """The page of the account's users `query` asks for (users_page), each with their own sharing setting, their
    effective one and auto-start per app, from the rows that can apply to the page's users: theirs, their groups',
    the account's, read once for the page."""
    page = users_page(account_id, query)
    user_ids, group_ids = [user.user_id for user in page], {group for user in page for group in user.group_ids}
    sharing = SharingRows.read(account_id, user_ids, group_ids)
    auto_start = AutoStartRows.read(account_id, apps, user_ids, group_ids)
    for user in page:
        user.sharing = sharing.for_user(user.user_id, user.group_ids)
        user.sharing_row = sharing.values.get((Level.USER, user.user_id))
        user.auto_start = {app.client_id: auto_start.for_user(user.user_id, user.group_ids, app) for app in apps}
    return page


def listed_names(account_id, user_ids):
    """{user id: name} of these users of the account, named as the pages list them (one without a name is left
    out)."""
    return dict(_rows(_NAMES, account=account_id, search="", ids=list(user_ids)))


def account_groups(account_id):
    return [group_id for (group_id,) in _rows(_ACCOUNT_GROUPS, account=account_id)]
