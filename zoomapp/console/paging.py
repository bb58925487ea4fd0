"""The console's long lists a page at a time: the audit log and the meetings, newest first, each page read after
the last row of the one before (keyset paging on the account's own index), never by offset, so the thousandth page
costs what the first does.

Every query here starts from account_data's reads, which filter by the signed-in admin's account.
"""

from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta

from django.db.models import Q

from zoomapp.console import account_data

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
