"""The admin console against daphne and the simulator's Zoom OAuth and /v2/users/me.

Only an account's owners and admins get in; each sees and changes only their own account's settings and data,
over HTTP and over the live-streams socket.
"""

import csv
import io
import json

import pytest
import requests
from django.core.exceptions import PermissionDenied
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from rtms.models import StreamSession, TranscriptSegment
from tests.consent_support import add_sim_user, meeting_uuid
from tests.console_support import install_app, post_form, sign_in
from zoomapp.consent import audit, meetings
from zoomapp.consent.actions import presence
from zoomapp.consent.models import AuditEntry, SharingPolicy
from zoomapp.consent.permissions import Actor
from zoomapp.console.models import AutoStartSetting

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def people(zoomsim):
    add_sim_user(zoomsim, "ownerA", "Olive Owner", account_id="acctA", role="owner")
    add_sim_user(zoomsim, "adminB", "Bert Admin", account_id="acctB", role="admin")
    add_sim_user(zoomsim, "memberA", "Mia Member", account_id="acctA", role="member", group_id="gA")


def account_b_data(app):
    """Settings, a meeting with a stream and its transcript, and audit entries, all in account B."""
    SharingPolicy.objects.create(account_id="acctB", level="user", target_id="secretUserB", share_with_apps=False)
    AutoStartSetting.objects.create(account_id="acctB", level="group", target_id="secretGroupB", app=app,
                                    auto_start=True)
    meeting = meetings.get_meeting(app, meeting_uuid(), host_user_id="hostB", account_id="acctB", topic="B board")
    presence.do_host_joined(meeting, "hostB", "Hank")
    stream = StreamSession.objects.create(rtms_stream_id="b" * 32, meeting_uuid=meeting.uuid,
                                          client_id=app.client_id, operator_id="hostB", state="active")
    TranscriptSegment.objects.create(stream=stream, user_id=1, start_time=1, end_time=2, timestamp=1, text="B only")
    return meeting, stream


def test_a_member_is_refused_and_gets_no_console_session(daphne, console_app, people):
    session, response = sign_in(daphne.url, console_app.client_id, "memberA")
    assert response.status_code == 403
    assert "The admin console is for account owners and admins. Zoom says your role is Member." in response.text
    page = session.get(f"{daphne.url}/console/sharing", allow_redirects=False, timeout=10)
    assert page.status_code == 302 and page.headers["Location"].startswith("/console/signin")
    refused = post_form(session, f"{daphne.url}/console/sharing", {"level": "account", "value": "off"})
    assert refused.status_code == 403
    assert not SharingPolicy.objects.exists()


def test_a_forged_or_replayed_callback_is_refused(daphne, console_app, people):
    stranger = requests.Session()
    page = stranger.get(f"{daphne.url}/zoom/oauth/callback/{console_app.client_id}/console",
                        params={"code": "x", "state": "guess"}, timeout=10)
    assert page.status_code == 403 and "not started from this browser" in page.text


def test_an_owner_signs_in_changes_settings_and_sees_them_audited(daphne, console_app, people):
    install_app(daphne.url, console_app.client_id, "memberA")
    session, response = sign_in(daphne.url, console_app.client_id, "ownerA")
    assert response.status_code == 302 and response.headers["Location"] == "/console/sharing"
    page = session.get(f"{daphne.url}/console/sharing", timeout=10)
    assert "Olive Owner · Owner · account" in page.text and "acctA" in page.text
    assert "script-src 'self'" in page.headers["Content-Security-Policy"]
    assert "unsafe-inline" not in page.headers["Content-Security-Policy"]

    assert post_form(session, f"{daphne.url}/console/sharing", {"level": "account", "value": "off"}).status_code == 302
    assert post_form(session, f"{daphne.url}/console/sharing",
                     {"level": "group", "target_id": "gA", "value": "on"}).status_code == 302
    assert post_form(session, f"{daphne.url}/console/auto-start",
                     {"app": console_app.client_id, "level": "user", "target_id": "memberA",
                      "value": "on"}).status_code == 302
    assert SharingPolicy.objects.get(level="account", target_id="acctA").share_with_apps is False
    assert AutoStartSetting.objects.get(app=console_app).account_id == "acctA"

    audit = session.get(f"{daphne.url}/console/audit", params={"kind": "sharing_policy_changed"}, timeout=10)
    assert audit.text.count('data-kind="sharing_policy_changed"') == 2
    exported = session.get(f"{daphne.url}/console/audit.csv", timeout=10)
    assert exported.headers["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(exported.text)))
    assert {r["kind"] for r in rows} >= {"console_sign_in", "sharing_policy_changed", "auto_start_changed"}
    assert all(r["actor_user_id"] == "ownerA" and r["source"] == "console" and r["source_address"] for r in rows)


def test_an_admin_cannot_see_or_change_another_accounts_settings_or_data(daphne, console_app, people):
    meeting_b, stream_b = account_b_data(console_app)
    session, response = sign_in(daphne.url, console_app.client_id, "ownerA")
    assert response.status_code == 302

    for page in ("sharing", "auto-start", "audit", "meetings", "streams"):
        text = session.get(f"{daphne.url}/console/{page}", timeout=10).text
        for secret in ("secretUserB", "secretGroupB", meeting_b.uuid, "B board", "hostB"):
            assert secret not in text, f"{secret} leaked on /console/{page}"
    exported = session.get(f"{daphne.url}/console/audit.csv", params={"meeting": meeting_b.uuid}, timeout=10)
    assert exported.text.strip().count("\n") == 0  # the header line only

    # Deleting B's meeting data: answered as if the meeting did not exist, nothing deleted.
    refused = post_form(session, f"{daphne.url}/console/meetings/delete-data",
                        {"meeting_uuid": meeting_b.uuid, "client_id": console_app.client_id, "confirm": "yes"})
    assert refused.status_code == 404
    assert TranscriptSegment.objects.filter(stream=stream_b).count() == 1

    # A "user" setting naming B's user is refused (not a user of A's account); B's own row is untouched.
    refused = post_form(session, f"{daphne.url}/console/sharing",
                        {"level": "user", "target_id": "secretUserB", "value": "on"})
    assert refused.status_code == 400 and "secretUserB is not a user of your account" in refused.text
    assert SharingPolicy.objects.get(account_id="acctB", target_id="secretUserB").share_with_apps is False
    assert not SharingPolicy.objects.filter(account_id="acctA").exists()

    # The live-streams socket shows A's streams only.
    meeting_a = meetings.get_meeting(console_app, meeting_uuid(), host_user_id="ownerA", account_id="acctA",
                                     topic="A standup")
    StreamSession.objects.create(rtms_stream_id="a" * 32, meeting_uuid=meeting_a.uuid, client_id=console_app.client_id,
                                 operator_id="ownerA", state="active", owner_worker="worker-a@host")
    socket_url = daphne.url.replace("http://", "ws://") + "/ws/console/streams"
    cookie = "; ".join(f"{k}={v}" for k, v in session.cookies.items())
    with connect(socket_url, additional_headers={"Cookie": cookie, "Origin": daphne.url}, open_timeout=10) as ws:
        snapshot = json.loads(ws.recv(timeout=10))
    assert [row["stream_id"] for row in snapshot["streams"]] == ["a" * 32]
    row = snapshot["streams"][0]
    assert row["meeting"] == "A standup" and row["owner_worker"] == "worker-a@host"


def test_the_streams_socket_refuses_anyone_not_signed_in(daphne):
    socket_url = daphne.url.replace("http://", "ws://") + "/ws/console/streams"
    with connect(socket_url, additional_headers={"Origin": daphne.url}, open_timeout=10) as ws:
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=10)
    assert closed.value.rcvd.code == 4403


def test_the_audit_log_cannot_be_changed_through_the_orm(console_app):
    entry = AuditEntry.objects.create(kind="test", detail={"account_id": "acctA"})
    with pytest.raises(PermissionDenied, match="append-only"):
        AuditEntry.objects.filter(pk=entry.pk).update(kind="edited")
    with pytest.raises(PermissionDenied, match="append-only"):
        AuditEntry.objects.filter(pk=entry.pk).delete()
    with pytest.raises(PermissionDenied, match="append-only"):
        entry.delete()
    assert AuditEntry.objects.get(pk=entry.pk).kind == "test"


def test_the_database_itself_refuses_to_rewrite_the_audit_log(console_app):
    from django.db import connection, transaction
    from django.db.utils import DatabaseError

    if connection.vendor != "postgresql":
        pytest.skip("the trigger is PostgreSQL's")
    entry = AuditEntry.objects.create(kind="approve", actor_user_id="host1", detail={"account_id": "acctA"})
    for statement in ("UPDATE consent_auditentry SET kind = 'deny' WHERE id = %s",
                      "DELETE FROM consent_auditentry WHERE id = %s"):
        with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute(statement, [entry.pk])
    assert AuditEntry.objects.get(pk=entry.pk).kind == "approve"


def test_the_database_lets_an_entry_be_filed_under_its_account_once_and_nothing_more(console_app):
    from django.db import connection, transaction
    from django.db.utils import DatabaseError

    if connection.vendor != "postgresql":
        pytest.skip("the trigger is PostgreSQL's")
    entry = AuditEntry.objects.create(kind="approve", actor_user_id="host1")
    refused = ("UPDATE consent_auditentry SET account_id = 'acctA', kind = 'deny' WHERE id = %s",
               "UPDATE consent_auditentry SET account_id = '' WHERE id = %s")
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute(refused[0], [entry.pk])
    with connection.cursor() as cursor:
        cursor.execute("UPDATE consent_auditentry SET account_id = 'acctA' WHERE id = %s", [entry.pk])
    for statement in (refused[1], "UPDATE consent_auditentry SET account_id = 'acctB' WHERE id = %s"):
        with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute(statement, [entry.pk])
    entry = AuditEntry.objects.get(pk=entry.pk)
    assert (entry.kind, entry.account_id) == ("approve", "acctA")


def test_filing_the_entries_already_recorded_leaves_those_no_account_names_and_files_the_others(console_app):
    """consent/0010 on a log of entries from before the column: the guard refuses "" becoming "" like any rewrite,
    so an entry nothing names an account for (a meeting no event reached) must be left out of the filing."""
    from importlib import import_module

    from django.db import connection
    from django.db.migrations.loader import MigrationLoader

    filing = import_module("zoomapp.consent.migrations.0010_audit_entries_filed")
    historical = MigrationLoader(connection).project_state(("consent", "0009_audit_entry_account")).apps
    known = meetings.get_meeting(console_app, meeting_uuid(), account_id="acctA")
    unknown = meetings.get_meeting(console_app, meeting_uuid())
    entries = {name: AuditEntry.objects.create(kind="request", app=console_app, meeting_uuid=meeting.uuid)
               for name, meeting in (("known", known), ("unknown", unknown))}
    entries["admin"] = AuditEntry.objects.create(kind="console_sign_in", detail={"account_id": "acctB"})
    filing.file_existing_entries(historical, None)
    filed = dict(AuditEntry.objects.filter(pk__in=[e.pk for e in entries.values()]).values_list("pk", "account_id"))
    assert {name: filed[entry.pk] for name, entry in entries.items()} == {
        "known": "acctA", "unknown": "", "admin": "acctB"}


def test_entries_recorded_before_zoom_names_the_meetings_account_are_listed_in_its_console_once_it_does(
        daphne, console_app, people):
    """A host's panel can bind her before any webhook says whose meeting it is: her entries wait for the account,
    are listed in its console once a meeting event names it, and in no other account's."""
    uuid = meeting_uuid()
    meeting = meetings.get_meeting(console_app, uuid, host_user_id="hostA")
    presence.do_host_joined(meeting, "hostA", "Hana")
    owner_a, _ = sign_in(daphne.url, console_app.client_id, "ownerA")
    admin_b, _ = sign_in(daphne.url, console_app.client_id, "adminB")
    audit_a = f"{daphne.url}/console/audit"
    assert 'data-kind="host_joined"' not in owner_a.get(audit_a, params={"meeting": uuid}, timeout=10).text

    meetings.get_meeting(console_app, uuid, account_id="acctA", topic="A standup")
    presence.do_person_left(meeting, "hostA", is_host=True)
    page = owner_a.get(audit_a, params={"meeting": uuid}, timeout=10).text
    assert page.count('data-kind="host_joined"') == 1 and page.count('data-kind="host_left"') == 1
    assert uuid not in admin_b.get(f"{daphne.url}/console/audit.csv", timeout=10).text
    assert list(AuditEntry.objects.filter(meeting_uuid=uuid).values_list("account_id", flat=True)) == ["acctA"] * 2

    # A copy of the meeting read before Zoom named the account (a REST call to Zoom in between) files it too.
    stale = meetings.get_meeting(console_app, meeting_uuid())
    meetings.get_meeting(console_app, stale.uuid, account_id="acctA")
    entry = audit.record_in_meeting("stop_requested", stale, Actor("zoom"))
    assert stale.account_id == "" and AuditEntry.objects.get(pk=entry.pk).account_id == "acctA"


def test_the_streams_socket_keeps_pushing_past_the_redis_read_timeout(daphne, console_app, people):
    """The table refreshes every 2 s; five pushes (about 8 s) span Redis's 5 s blocking read on the channel layer,
    which used to kill every idle consumer."""
    session, _ = sign_in(daphne.url, console_app.client_id, "ownerA")
    socket_url = daphne.url.replace("http://", "ws://") + "/ws/console/streams"
    cookie = "; ".join(f"{k}={v}" for k, v in session.cookies.items())
    with connect(socket_url, additional_headers={"Cookie": cookie, "Origin": daphne.url}, open_timeout=10) as ws:
        versions = [json.loads(ws.recv(timeout=10))["version"] for _ in range(5)]
    assert versions == [1, 2, 3, 4, 5]
