"""What the console shows, always for one account: its apps, users and groups known to be its own, meetings, audit
entries and streams (the users of the settings pages: paging.py). Every query here filters by the signed-in
admin's account id."""

from django.db import connection
from django.db.models import Exists, OuterRef, Q

from rtms.models import StreamSession, StreamState
from zoomapp.consent.models import (
    AuditEntry,
    Meeting,
    Participant,
    Share,
)
from zoomapp.marketplace.models import UserAuthorization, ZoomApp


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
