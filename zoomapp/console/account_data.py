"""What the console shows, always for one account: its users and groups, effective settings, meetings, audit
entries and streams. Every query here filters by the signed-in admin's account id."""

import re
from dataclasses import dataclass, field
from urllib.parse import urlencode

from django.db import connection
from django.db.models import Exists, OuterRef, Q

from rtms.models import StreamSession, StreamState
from zoomapp.consent.autostart import AutoStartRows
from zoomapp.consent.models import (
    AuditEntry,
    Meeting,
    Participant,
    Share,
    SharingPolicy,
)
from zoomapp.consent.policy import SharingRows, newest_grants_in_account
from zoomapp.console.models import AutoStartSetting, Level
from zoomapp.marketplace.models import UserAuthorization, ZoomApp


@dataclass
class AccountUser:
    user_id: str
    name: str = ""
    role: str = ""
    group_ids: list = field(default_factory=list)
    sharing: object = None  # EffectivePolicy
    sharing_row: bool | None = None  # the user's own setting, when there is one
    auto_start: dict = field(default_factory=dict)  # client_id -> EffectiveAutoStart


def installed_apps(account_id):
    """The apps this account installed: those a user of the account authorized (Zoom's /v2/users/me said which
    account). The console offers and accepts only these (docs/SECURITY.md "Operators and account admins")."""
    return ZoomApp.objects.filter(authorizations__account_id=account_id).distinct().order_by("name")


def _account_hosts(account_id):
    return (Meeting.objects.filter(account_id=account_id).exclude(host_user_id="")
            .values_list("host_user_id", flat=True).distinct())


def user_in_account(account_id, user_id):
    """Known from a verified source to be a user of the account: Zoom's /v2/users/me (an OAuth grant to one of
    our apps) said so, or the user hosted one of the account's meetings (signed webhooks of our registered apps)."""
    return (UserAuthorization.objects.filter(account_id=account_id, user_id=user_id).exists()
            or _account_hosts(account_id).filter(host_user_id=user_id).exists())


def group_in_account(account_id, group_id):
    """A group Zoom's /v2/users/me named for one of the account's users."""
    return any(group_id in (groups or []) for groups in
               UserAuthorization.objects.filter(account_id=account_id).values_list("group_ids", flat=True))


def account_users(account_id):
    """Users of the account we know of: those who authorized any of our apps (/v2/users/me told us their account
    and groups), hosts of the account's meetings, and those named in one of the account's user-level settings."""
    users = {user_id: AccountUser(user_id, grant.display_name, grant.role_name, list(grant.group_ids))
             for user_id, grant in newest_grants_in_account(account_id).items()}
    user_rows = {"account_id": account_id, "level": Level.USER}
    named = (set(_account_hosts(account_id))
             | set(SharingPolicy.objects.filter(**user_rows).values_list("target_id", flat=True))
             | set(AutoStartSetting.objects.filter(**user_rows).values_list("target_id", flat=True)))
    unnamed = named - set(users)
    names = user_names(account_id, unnamed)
    for user_id in unnamed:
        users[user_id] = AccountUser(user_id, names.get(user_id, ""))
    return sorted(users.values(), key=lambda u: (u.name or u.user_id).lower())


def account_groups(account_id, users):
    groups = {g for u in users for g in u.group_ids}
    groups |= set(
        SharingPolicy.objects.filter(account_id=account_id, level=Level.GROUP).values_list("target_id", flat=True)
    )
    groups |= set(
        AutoStartSetting.objects.filter(account_id=account_id, level=Level.GROUP).values_list("target_id", flat=True)
    )
    return sorted(groups)


USERS_PER_PAGE = 100
SEARCH_MAX_LENGTH = 100
_PAGE_NUMBER = re.compile(r"[1-9][0-9]{0,8}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")  # what a script forges, not what an admin types


@dataclass
class UserPage:
    """One page of the account's users, in the order account_users gives, those whose name or id contains
    `search`; iterating it gives the page's users. `refusal` says what was wrong with the query asked for (the
    page shown instead is the first, of the search when it was valid)."""
    users: list
    everyone: list  # every user of the account, searched or not: the groups and names the pages offer
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


def _matches(user, search):
    return search in user.user_id.casefold() or search in user.name.casefold()


def user_page(users, query):
    """The page of `users` a console page's query string asks for: `q`, a part of a name or user id; `page`, a
    number from 1."""
    search, number, refusals = query.get("q", "").strip(), query.get("page", "1"), []
    if len(search) > SEARCH_MAX_LENGTH or _CONTROL.search(search):
        refusals.append(f"Search for a name or a user id: at most {SEARCH_MAX_LENGTH} printable characters.")
        search = ""
    if _PAGE_NUMBER.fullmatch(number):
        number = int(number)
    else:
        refusals.append("This page link is not valid: pages are numbered from 1.")
        number = 1
    found = [user for user in users if _matches(user, search.casefold())] if search else users
    pages = max(1, -(-len(found) // USERS_PER_PAGE))
    if number > pages:
        refusals.append(f"There is no page {number} of these users: the last is page {pages}.")
        number = 1
    start = (number - 1) * USERS_PER_PAGE
    return UserPage(found[start:start + USERS_PER_PAGE], users, search, number, pages, len(found),
                    " ".join(refusals))


def users_with_effective_settings(account_id, apps, query=None):
    """The page of the account's users `query` asks for (account_data.user_page; the first when None), each with
    their effective sharing setting and auto-start per app: the account's rows of each are read once, whatever
    the number of users."""
    page = user_page(account_users(account_id), query or {})
    sharing, auto_start = SharingRows.read(account_id), AutoStartRows.read(account_id, apps)
    for user in page:
        user.sharing = sharing.for_user(user.user_id, user.group_ids)
        user.auto_start = {app.client_id: auto_start.for_user(user.user_id, user.group_ids, app) for app in apps}
    return page


# Meetings are per app (docs/SECURITY.md "Tenancy"): a stream belongs to the account when its own app's row for the
# meeting says so. Another app's row claiming the same UUID for another account never opens this app's streams to
# that account's admins.
def _stream_of_account_meeting(account_id):
    return Exists(Meeting.objects.filter(account_id=account_id, uuid=OuterRef("meeting_uuid"),
                                         app__client_id=OuterRef("client_id")))


def audit_entries(account_id, meeting="", user="", client_id="", kind=""):
    """The account's audit entries, newest first: each is filed under its meeting's account as its own app's row
    says (consent.audit.record_in_meeting; once known, for those recorded before), or under the account an admin
    or a deauthorization acted in."""
    entries = AuditEntry.objects.filter(account_id=account_id)
    if meeting:
        entries = entries.filter(meeting_uuid=meeting)
    if user:
        entries = entries.filter(Q(actor_user_id=user) | Q(subject_user_id=user))
    if client_id:
        entries = entries.filter(app__client_id=client_id)
    if kind:
        entries = entries.filter(kind=kind)
    return entries.order_by("-id")


# The distinct kinds of an account's entries, read as a skip scan: one probe of the (account, kind) index per kind
# rather than every entry of the account (PostgreSQL 15 plans no skip scan of its own).
_AUDIT_KINDS = f"""
    WITH RECURSIVE kinds(kind) AS (
        (SELECT kind FROM {AuditEntry._meta.db_table} WHERE account_id = %(account)s ORDER BY kind LIMIT 1)
        UNION ALL
        SELECT (SELECT kind FROM {AuditEntry._meta.db_table} WHERE account_id = %(account)s AND kind > kinds.kind
                ORDER BY kind LIMIT 1)
        FROM kinds WHERE kinds.kind IS NOT NULL
    )
    SELECT kind FROM kinds WHERE kind IS NOT NULL"""


def audit_kinds(account_id):
    with connection.cursor() as cursor:
        cursor.execute(_AUDIT_KINDS, {"account": account_id})
        return [kind for (kind,) in cursor.fetchall()]


def account_meetings(account_id):
    """The account's meetings, one row per app that saw it."""
    return Meeting.objects.filter(account_id=account_id).select_related("app").order_by("-created")


def account_meeting(account_id, uuid, client_id):
    """One app's meeting when it is this account's, else None (another account's meeting looks like no meeting)."""
    return (Meeting.objects.filter(account_id=account_id, uuid=uuid, app__client_id=client_id)
            .select_related("app").first())


def account_streams(account_id, recent=None):
    """Streams of the account's meetings (each stream by its own app's meeting row): live ones, plus those stopped
    after `recent` (a datetime)."""
    streams = StreamSession.objects.filter(_stream_of_account_meeting(account_id))
    live = ~Q(state=StreamState.STOPPED)
    return streams.filter(live | Q(stopped_at__gte=recent) if recent else live).order_by("-created")


def account_stream(account_id, rtms_stream_id):
    """One stream of the account's meetings (live or not), or None."""
    return StreamSession.objects.filter(_stream_of_account_meeting(account_id), rtms_stream_id=rtms_stream_id).first()


def user_names(account_id, user_ids):
    """Display names of Zoom user ids as the account's own data knows them: the name a share was requested under,
    the participant's name in one of the account's meetings, and (preferred, Zoom's /v2/users/me said it) the
    name on the user's grant in this account. An id no such row names is left out."""
    user_ids = {user_id for user_id in user_ids if user_id}
    if not user_ids:
        return {}
    names = {}
    for source in (
        Share.objects.filter(meeting__account_id=account_id, user_id__in=user_ids).values_list("user_id", "user_name"),
        Participant.objects.filter(meeting__account_id=account_id, user_id__in=user_ids).values_list("user_id", "name"),
        UserAuthorization.objects.filter(account_id=account_id, user_id__in=user_ids).values_list("user_id",
                                                                                                 "display_name"),
    ):
        names.update((user_id, name) for user_id, name in source if name)
    return names


def meeting_topics(account_id, uuids):
    """Topics of the account's meetings by UUID (every app's row of a meeting has Zoom's one topic)."""
    rows = Meeting.objects.filter(account_id=account_id, uuid__in=set(uuids)).exclude(topic="")
    return dict(rows.values_list("uuid", "topic"))


def apps_by_client_id():
    return {app.client_id: app for app in ZoomApp.objects.all()}


# (client_id, meeting UUID) -> the meeting's account, once known: a meeting row's account is never overwritten
# once set (zoomapp/consent/meetings.py IDENTITY_FIELDS), and every state change of every stream asks for it
# (streams_feed), a thousand at once when a worker starts.
_known_accounts = {}
_KNOWN_ACCOUNTS_KEPT = 10_000


def meeting_account(client_id, meeting_uuid):
    """The account whose meeting this is (the host's), as that app knows it, or "" when it does not (yet)."""
    account_id = _known_accounts.get((client_id, meeting_uuid))
    if account_id is None:
        account_id = (Meeting.objects.filter(app__client_id=client_id, uuid=meeting_uuid)
                      .values_list("account_id", flat=True).first() or "")
        if account_id:
            if len(_known_accounts) >= _KNOWN_ACCOUNTS_KEPT:
                _known_accounts.clear()
            _known_accounts[(client_id, meeting_uuid)] = account_id
    return account_id
