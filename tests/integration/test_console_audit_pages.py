"""The console's audit log at production scale, against daphne and the simulator's Zoom OAuth: every entry can be
reached a page at a time (keyset paging, the filters kept) and by date; the CSV export is streamed a chunk at a
time, complete, with what each setting change was about; exporting and downloading are themselves audited."""

import csv
import html
import io
import json
import re
import time
from datetime import UTC, date, datetime, timedelta

import pytest
import requests
from asgiref.sync import async_to_sync, sync_to_async
from django.conf import settings
from django.contrib.sessions.backends.db import SessionStore
from django.db import connections
from django.test import RequestFactory
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from tests.consent_support import add_sim_user
from tests.console_support import post_form, sign_in
from tests.integration.test_console_security import admins, apps  # noqa: F401 - fixtures
from tests.processes import wait_for
from zoomapp.consent.models import AuditEntry
from zoomapp.console import auth, paging, views
from zoomapp.marketplace.models import UserAuthorization

pytestmark = pytest.mark.django_db(transaction=True)


def entries(count, account_id="acctA", kind="test_entry", first=0):
    """`count` entries of the account, their reasons "entry <n>" in the order they were made."""
    return AuditEntry.objects.bulk_create(
        AuditEntry(kind=kind, account_id=account_id, actor_user_id="zoom", reason=f"entry {first + n}",
                   detail={"account_id": account_id}) for n in range(count))


def shown(page):
    """The entry numbers the audit page lists, top to bottom."""
    return [int(n) for n in re.findall(r'<div class="why">entry (\d+)</div>', page)]


def link(page, testid):
    found = re.search(r'<a href="([^"]+)" data-testid="' + testid + '"', page)
    return html.unescape(found.group(1)) if found else None


def test_every_entry_is_reached_a_page_at_a_time_with_the_filters_kept(daphne, admins):  # noqa: F811
    olive, bert, _ = admins
    entries(450)
    entries(5, kind="other_kind", first=1000)
    entries(30, account_id="acctB", first=2000)

    seen, url = [], f"{daphne.url}/console/audit?kind=test_entry"
    pages = []
    while url:
        page = olive.get(url, timeout=10)
        assert page.status_code == 200
        pages.append(page.text)
        seen += shown(page.text)
        older = link(page.text, "older")
        assert older is None or "kind=test_entry" in older
        url = older and daphne.url + older
    assert [len(shown(page)) for page in pages] == [200, 200, 50]
    assert seen == list(range(449, -1, -1))  # each once, newest first, none of another kind or account
    assert link(pages[0], "newest") is None
    assert link(pages[-1], "newest") == "/console/audit?kind=test_entry"
    first = olive.get(daphne.url + link(pages[-1], "newest"), timeout=10).text
    assert shown(first) == shown(pages[0])

    # Another account's entries are not reached by paging past one's own, nor by a cursor of its own.
    assert not set(shown(bert.get(f"{daphne.url}/console/audit", params={"before": 10**9}, timeout=10).text)) - set(
        range(2000, 2030))


def test_entries_are_filtered_by_utc_day(daphne, admins, monkeypatch):  # noqa: F811
    olive, _, _ = admins
    days = [datetime(2026, 3, day, 23, 59, 59, tzinfo=UTC) for day in (1, 2, 3)]
    for number, when in enumerate(days):
        monkeypatch.setattr(timezone, "now", lambda when=when: when)
        entries(number + 1, first=10 * number)
    monkeypatch.undo()

    def numbers(**params):
        page = olive.get(f"{daphne.url}/console/audit", params={"kind": "test_entry", **params}, timeout=10)
        assert page.status_code == 200, page.text
        return sorted(shown(page.text))

    assert numbers(date_from="2026-03-02", date_to="2026-03-02") == [10, 11]
    assert numbers(date_from="2026-03-02") == [10, 11, 20, 21, 22]
    assert numbers(date_to="2026-03-01") == [0]
    page = olive.get(f"{daphne.url}/console/audit", params={"date_from": "2026-03-02", "date_to": "2026-03-02"},
                     timeout=10).text
    assert "from 2026-03-02, to 2026-03-02 (UTC)" in html.unescape(page)
    exported = olive.get(f"{daphne.url}/console/audit.csv",
                         params={"kind": "test_entry", "date_from": "2026-03-03"}, timeout=10)
    assert [row["reason"] for row in csv.DictReader(io.StringIO(exported.text))] == ["entry 22", "entry 21",
                                                                                      "entry 20"]


@pytest.mark.parametrize(("params", "message"), [
    ({"date_from": "2026-13-01"}, "from: Enter a date as YYYY-MM-DD."),
    ({"date_to": "yesterday"}, "to: Enter a date as YYYY-MM-DD."),
    ({"date_from": "2026-03-02", "date_to": "2026-03-01"}, "The “from” date is after the “to” date."),
    ({"date_to": "9999-12-31"}, "to: Enter a date from 2000-01-01 to 2999-12-31."),  # its next midnight overflows
    ({"date_from": "1999-12-31"}, "from: Enter a date from 2000-01-01 to 2999-12-31."),
    ({"before": "abc"}, "This page link is not valid: start from the newest."),
    ({"before": "0"}, "This page link is not valid: start from the newest."),
    ({"meeting": "x" * 101}, "meeting: Ensure this value has at most 100 characters (it has 101)."),
])
def test_bad_filters_are_refused_with_a_message_and_nothing_exported(daphne, admins, params, message):  # noqa: F811
    olive, _, _ = admins
    entries(3)
    page = olive.get(f"{daphne.url}/console/audit", params=params, timeout=10)
    assert page.status_code == 400 and message in html.unescape(page.text)
    assert shown(page.text) == []
    exported = olive.get(f"{daphne.url}/console/audit.csv", params=params, timeout=10)
    assert exported.status_code == 400 and message in exported.text
    assert not AuditEntry.objects.filter(kind="audit_exported").exists()


def test_the_export_is_streamed_a_bounded_chunk_per_short_query(daphne, admins, monkeypatch):  # noqa: F811
    """The export is an async stream (Django's ASGI handler reads a synchronous one to its end before sending a
    byte): its header comes before any entry is read, then one query per chunk of at most AUDIT_CSV_CHUNK entries,
    each after the last entry of the one before; every entry once, newest first, whatever the chunks."""
    olive, _, _ = admins
    made = entries(2 * paging.AUDIT_CSV_CHUNK + 7)

    reads, parts = [], []
    read_page = paging.audit_page

    def read_and_record(account_id, filters, before, size):
        with CaptureQueriesContext(connections["default"]) as queries:  # the thread's own connection
            page = read_page(account_id, filters, before, size)
        reads.append({"parts_sent": len(parts), "before": before, "size": size, "rows": len(page.rows),
                      "sql": [query["sql"] for query in queries.captured_queries]})
        return page

    monkeypatch.setattr(paging, "audit_page", read_and_record)
    request = RequestFactory().get("/console/audit.csv", {"kind": "test_entry"})
    request.session = SessionStore(olive.cookies["sessionid"])  # Olive's console session, as daphne reads it
    response = views.audit_csv(request)
    assert response.status_code == 200 and response.is_async

    async def read():
        async for part in response.streaming_content:
            parts.append(part.decode())

    async_to_sync(read)()
    assert parts[0] == ",".join(views.AUDIT_COLUMNS) + "\r\n"
    chunks = parts[1:]
    assert [len(chunk.splitlines()) for chunk in chunks] == [paging.AUDIT_CSV_CHUNK, paging.AUDIT_CSV_CHUNK, 7]
    # Each chunk read once the one before was sent, in one query, after the last entry of the one before.
    assert [(read["parts_sent"], read["size"], read["rows"], len(read["sql"])) for read in reads] == [
        (1, paging.AUDIT_CSV_CHUNK, paging.AUDIT_CSV_CHUNK, 1), (2, paging.AUDIT_CSV_CHUNK, paging.AUDIT_CSV_CHUNK, 1),
        (3, paging.AUDIT_CSV_CHUNK, 7, 1)]
    assert [read["before"] for read in reads] == [None, made[-paging.AUDIT_CSV_CHUNK].pk,
                                                  made[-2 * paging.AUDIT_CSV_CHUNK].pk]
    assert all(f"LIMIT {paging.AUDIT_CSV_CHUNK + 1}" in read["sql"][0] for read in reads)
    rows = list(csv.reader(io.StringIO("".join(chunks))))
    assert [int(row[0]) for row in rows] == [entry.pk for entry in reversed(made)]

    # The same through daphne, read as it comes.
    exported = olive.get(f"{daphne.url}/console/audit.csv", params={"kind": "test_entry"}, stream=True, timeout=10)
    lines = list(exported.iter_lines(decode_unicode=True))
    assert lines[0].split(",") == views.AUDIT_COLUMNS
    reasons = [row["reason"] for row in csv.DictReader(io.StringIO("\n".join(lines)))]
    assert reasons == [f"entry {n}" for n in range(2 * paging.AUDIT_CSV_CHUNK + 6, -1, -1)]


def test_the_export_says_what_each_setting_change_was_about_and_is_itself_audited(daphne, apps, admins):  # noqa: F811
    notetaker, _ = apps
    olive, _, people = admins
    for form in ({"level": "group", "target_id": "gA", "value": "on"},
                 {"level": "user", "target_id": people["mia"], "value": "off"},
                 {"level": "group", "target_id": "gA", "value": "unset"}):
        assert post_form(olive, f"{daphne.url}/console/sharing", form).status_code == 302
    assert post_form(olive, f"{daphne.url}/console/auto-start",
                     {"app": notetaker.client_id, "level": "account", "value": "on"}).status_code == 302
    assert post_form(olive, f"{daphne.url}/console/apps/retention",
                     {"app": notetaker.client_id, "days": 7}).status_code == 302
    # A hostile id a spreadsheet would run, in a recorded change (ids such as "-x" are valid Zoom ids).
    AuditEntry.objects.create(kind="sharing_policy_changed", account_id="acctA", actor_user_id=people["olive"],
                              detail={"account_id": "acctA", "level": "group", "target_id": "=HYPERLINK(1)",
                                      "previous": None, "value": True})

    exported = olive.get(f"{daphne.url}/console/audit.csv", timeout=10)
    rows = list(csv.DictReader(io.StringIO(exported.text)))
    changes = [(row["kind"], row["app"], row["target_level"], row["target_id"], row["previous"], row["new"])
               for row in reversed(rows) if row["kind"].endswith("_changed")]
    assert changes == [
        ("sharing_policy_changed", "", "group", "gA", "not set", "on"),
        ("sharing_policy_changed", "", "user", people["mia"], "not set", "off"),
        ("sharing_policy_changed", "", "group", "gA", "on", "not set"),
        ("auto_start_changed", notetaker.client_id, "account", "acctA", "not set", "on"),
        ("retention_changed", notetaker.client_id, "account", "acctA", "default", "7"),
        ("sharing_policy_changed", "", "group", "'=HYPERLINK(1)", "not set", "on"),
    ]
    assert json.loads(rows[1]["detail"]) == {"level": "group", "target_id": "=HYPERLINK(1)", "previous": None,
                                             "value": True}

    filtered = olive.get(f"{daphne.url}/console/audit.csv",
                         params={"kind": "retention_changed", "date_from": date.today().isoformat()}, timeout=10)
    assert filtered.status_code == 200
    first, second = AuditEntry.objects.filter(kind="audit_exported").order_by("id")
    for entry, filters in ((first, {}), (second, {"kind": "retention_changed", "date_from": str(date.today())})):
        assert (entry.account_id, entry.actor_user_id, entry.actor_role, entry.source) == (
            "acctA", people["olive"], "owner", "console")
        assert entry.source_address == "127.0.0.1" and entry.detail["filters"] == filters
    assert rows[0]["kind"] == "audit_exported"  # an export lists itself: it was recorded before the first entry
    page = olive.get(f"{daphne.url}/console/audit", params={"kind": "audit_exported"}, timeout=10).text
    assert "Audit log exported" in page and "CSV of kind retention_changed, from" in html.unescape(page)


def test_nobody_signed_in_exports_nothing_and_leaves_no_entry(daphne, apps):  # noqa: F811
    response = requests.get(f"{daphne.url}/console/audit.csv", allow_redirects=False, timeout=10)
    assert response.status_code == 302 and response.headers["Location"].startswith("/console/signin")
    assert not AuditEntry.objects.filter(kind="audit_exported").exists()


def test_today_is_a_whole_utc_day():
    """The day ends at the next midnight UTC, whatever the time now."""
    entries(1)
    today = timezone.now().astimezone(UTC).date()
    assert paging.audit_entries("acctA", {"date_from": today, "date_to": today}).count() == 1
    assert not paging.audit_entries("acctA", {"date_to": today - timedelta(days=1)}).exists()


def test_the_export_shows_no_other_accounts_auto_start_setting(daphne, admins):  # noqa: F811
    """Auto-start for a user of account B who joined Olive's meeting is recorded in Olive's audit, with the setting
    that decided it: B's admin's group setting. Olive's export names the decision, not B's account or group."""
    olive, _, people = admins
    theirs = {"user_account_id": "acctB", "setting_level": "group", "setting_target": "gB"}
    ours = {"user_account_id": "acctA", "setting_level": "group", "setting_target": "gA"}
    for user, detail in ((people["ben"], theirs), (people["mia"], ours)):
        AuditEntry.objects.create(kind="auto_start", account_id="acctA", meeting_uuid="m1", actor_user_id="zoom",
                                  subject_user_id=user, outcome="skipped",
                                  reason="auto-start set by another account's admin (group level); approval needed",
                                  detail=detail)

    exported = olive.get(f"{daphne.url}/console/audit.csv", params={"kind": "auto_start"}, timeout=10)
    assert exported.status_code == 200
    assert "acctB" not in exported.text and "gB" not in exported.text
    rows = {row["subject_user_id"]: row for row in csv.DictReader(io.StringIO(exported.text))}
    assert (rows[people["ben"]]["outcome"], rows[people["ben"]]["detail"]) == ("skipped", "")
    assert json.loads(rows[people["mia"]]["detail"]) == ours


def read_export_a_part_at_a_time(olive, parts, between_parts):
    """The export of Olive's session read in process as daphne reads it into `parts`, `between_parts(parts)` run
    after each part arrived (on the thread that read it)."""
    request = RequestFactory().get("/console/audit.csv", {"kind": "test_entry"})
    request.session = SessionStore(olive.cookies["sessionid"])
    response = views.audit_csv(request)
    assert response.status_code == 200

    async def read():
        async for part in response.streaming_content:
            parts.append(part.decode())
            await sync_to_async(between_parts)(parts)

    async_to_sync(read)()


def end_the_session(olive, people, ending):
    session = SessionStore(olive.cookies["sessionid"])
    if ending == "signed out":
        session.delete()
    elif ending == "app removed":
        UserAuthorization.objects.filter(user_id=people["olive"]).delete()
    else:
        session[auth.TIMES_KEY] = {**session[auth.TIMES_KEY], "last_seen": time.time()
                                   - settings.CONSOLE_IDLE_SECONDS - 1}
        session.save()


@pytest.mark.parametrize("ending, why", [
    ("signed out", auth.SIGN_IN_FIRST), ("app removed", auth.GRANT_GONE),
    ("idle", auth.SESSION_IDLE.format(minutes=round(settings.CONSOLE_IDLE_SECONDS / 60)))])
def test_an_export_is_cut_off_at_the_next_chunk_once_its_session_ends(daphne, admins, ending, why):  # noqa: F811
    olive, _, people = admins
    entries(2 * paging.AUDIT_CSV_CHUNK + 7)

    def end_the_session_after_the_first_chunk(parts):
        if len(parts) == 2:
            end_the_session(olive, people, ending)

    parts = []
    with pytest.raises(views.ExportCutOff) as cut_off:
        read_export_a_part_at_a_time(olive, parts, end_the_session_after_the_first_chunk)
    assert str(cut_off.value) == why
    rows = list(csv.reader(io.StringIO("".join(parts[1:]))))
    assert len(rows) == paging.AUDIT_CSV_CHUNK  # the chunk read before; nothing after


def test_a_cut_off_export_fails_as_a_download_and_a_whole_one_ends_normally(daphne, apps, admins):  # noqa: F811
    """Through daphne, an export cut off by its session ends without chunked encoding's last chunk: the client's
    read fails (a browser marks the download failed, curl reports an error), where a CSV that just stopped would
    look complete. Daphne goes on answering, and cuts the next one off likewise."""
    notetaker, _ = apps
    olive, _, people = admins
    chunks = 8  # the session ends once the first chunk arrived: daphne is a few chunks further at most
    entries(chunks * paging.AUDIT_CSV_CHUNK)
    logged = f'msg="audit export cut off" user={people["olive"]} account=acctA why="Sign in first."'
    logged_before = daphne.log_text().count(logged)

    whole = olive.get(f"{daphne.url}/console/audit.csv", params={"kind": "test_entry"}, timeout=30)
    assert whole.status_code == 200 and whole.headers["Transfer-Encoding"] == "chunked"
    reasons = [row["reason"] for row in csv.DictReader(io.StringIO(whole.text))]
    assert reasons == [f"entry {n}" for n in range(chunks * paging.AUDIT_CSV_CHUNK - 1, -1, -1)]

    for _ in range(2):
        lines, started = [], time.monotonic()
        with olive.get(f"{daphne.url}/console/audit.csv", params={"kind": "test_entry"}, stream=True,
                       timeout=30) as exported:
            assert exported.status_code == 200
            with pytest.raises(requests.exceptions.ChunkedEncodingError):
                for line in exported.iter_lines(decode_unicode=True):
                    lines.append(line)
                    if len(lines) == 1 + paging.AUDIT_CSV_CHUNK:  # the header and the first chunk
                        end_the_session(olive, people, "signed out")
        assert time.monotonic() - started < 10  # closed by daphne, not left open until the client gives up
        assert paging.AUDIT_CSV_CHUNK <= len(lines) - 1 < chunks * paging.AUDIT_CSV_CHUNK
        olive, _ = sign_in(daphne.url, notetaker.client_id, people["olive"])
    wait_for(lambda: daphne.log_text().count(logged) == logged_before + 2, 5, "a log line per export cut off")


def test_an_export_holds_no_database_connection_between_chunks(daphne, admins):  # noqa: F811
    """A slow download does not keep one of the pool's connections: each chunk gives its own back."""
    olive, _, _ = admins
    entries(2 * paging.AUDIT_CSV_CHUNK + 7)
    held, parts = [], []
    read_export_a_part_at_a_time(olive, parts, lambda parts: held.append(connections["default"].connection))
    assert len(parts) == 4
    assert held[1:] == [None, None, None]  # after each chunk (the header is sent before any is read)


def test_a_demoted_admin_exports_nothing(daphne, zoomsim, admins):  # noqa: F811
    """Zoom is asked for the role before an export, as before a media download."""
    olive, _, people = admins
    entries(3)
    add_sim_user(zoomsim, people["olive"], "Olive Owner", account_id="acctA", role="member")
    exported = olive.get(f"{daphne.url}/console/audit.csv", allow_redirects=False, timeout=10)
    assert exported.status_code == 302 and exported.headers["Location"] == "/console/signin"
    assert not AuditEntry.objects.filter(kind="audit_exported").exists()
    signin = olive.get(f"{daphne.url}/console/signin", timeout=10).text
    assert "Zoom says your role is Member." in html.unescape(signin)
