"""The admin console in headless Chromium: a real sign-in through Zoom's OAuth (the simulator), every page, the
live-streams table following a real stream held by a real worker, and screenshots for a person to look at.
"""

import secrets
from pathlib import Path

import pytest

from rtms.models import StreamSession
from tests.consent_support import add_sim_user, make_app, register_with_sim
from tests.console_support import end_meeting_and_settle
from tests.e2e.axe_support import assert_no_violations
from tests.e2e.console_browser import console_context
from tests.processes import wait_for
from tests.zoomsim_client import words_lasting
from zoomapp.console import changes
from zoomapp.console.auth import ConsoleAdmin

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

SCREENSHOTS = Path(__file__).resolve().parents[2] / "artifacts/screenshots"


@pytest.fixture
def console(browser, daphne, worker, zoomsim, settings):
    app = make_app("Notetaker")
    register_with_sim(zoomsim, daphne.url, app, account_id="acctConsole")
    tag = secrets.token_hex(3)
    admin_id = f"olive{tag}"
    add_sim_user(zoomsim, admin_id, "Olive Owner", account_id="acctConsole", role="owner", group_id="sales")
    context = console_context(browser, daphne, zoomsim, settings, admin_id, {"width": 1360, "height": 900})
    page = context.new_page()
    meetings = []
    yield page, app, admin_id, tag, meetings
    context.close()
    for meeting in meetings:  # no stream outlives its test on the shared worker
        end_meeting_and_settle(zoomsim, meeting)


def shot(page, name):
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def test_console_pages_signed_in_through_zoom(console, daphne, zoomsim):
    page, app, admin_id, tag, meetings = console
    page.goto(f"{daphne.url}/console/")
    assert page.locator("h1").inner_text() == "Sign in"
    shot(page, "console-0-sign-in")
    page.click("text=Sign in with Zoom (Notetaker)")
    page.wait_for_url(f"{daphne.url}/console/sharing")
    assert "Olive Owner · Owner · account acctConsole" in page.locator("[data-testid='signed-in-as']").inner_text()

    # Settings through the forms, as the admin clicks them.
    admin = ConsoleAdmin(admin_id, "acctConsole", "Owner", "Olive Owner", app.client_id)
    add_sim_user(zoomsim, f"sam{tag}", "Sam Seller", account_id="acctConsole", group_id="sales")
    changes.set_sharing_policy(admin, "user", f"sam{tag}", True)  # a user row for Sam, not yet signed in
    page.goto(f"{daphne.url}/console/sharing")
    page.locator("[data-testid='account-setting'] button[value='off']").click()
    page.locator("[data-testid='group-settings'] tr[data-group='sales'] button[value='on']").click()
    olive = page.locator(f"[data-testid='user-settings'] tr[data-user='{admin_id}']")
    assert olive.locator(".effective").get_attribute("data-effective") == "on"
    assert olive.locator(".source").inner_text() == "group sales"
    sam = page.locator(f"[data-testid='user-settings'] tr[data-user='sam{tag}']")
    assert sam.locator(".source").get_attribute("data-source") == "user"
    shot(page, "console-1-sharing")

    page.goto(f"{daphne.url}/console/auto-start")
    assert page.locator("h1").inner_text() == "Auto-start apps that access shared real-time meeting content"
    form = page.locator("[data-testid='choose-app']")
    form.locator("select[name='app']").select_option(app.client_id)
    form.locator("select[name='level']").select_option("group")
    form.locator("input[name='target_id']").fill("sales")
    form.locator("button[type='submit']").click()
    cell = page.locator(f"[data-testid='auto-start-effective'] tr[data-user='{admin_id}'] "
                        f"td[data-app='{app.client_id}']")
    assert (cell.get_attribute("data-effective"), cell.get_attribute("data-source")) == ("on", "group")
    shot(page, "console-2-auto-start")

    # A real stream in one of the account's meetings, held by the worker: the live table follows it.
    meeting = zoomsim.post("/_sim/meetings", json={
        "topic": "Quarterly planning", "start": True,
        "host": {"user_id": admin_id, "name": "Olive Owner", "account_id": "acctConsole"},
        "participants": [{"user_id": f"sam{tag}", "name": "Sam Seller", "account_id": "acctConsole"}],
        "settings": {"share_with_apps": True, "require_host_approval": False}}).json()
    meetings.append(meeting)
    page.goto(f"{daphne.url}/console/streams")
    page.wait_for_selector("#live-status[data-connected='true']")
    keys = {p["name"]: p["key"] for p in meeting["participants"]}
    started = zoomsim.post(f"/_sim/meetings/{meeting['id']}/streams",
                           json={"client_id": app.client_id, "key": keys["Sam Seller"]}).json()
    row = page.locator(f"#streams tr[data-stream='{started['id']}']")
    row.and_(page.locator("[data-state='active']")).wait_for(timeout=20000)
    # Audio flows only while someone speaks (docs/ZOOM.md §6.1): a line long enough for a few pushes.
    zoomsim.post(f"/_sim/meetings/{meeting['id']}/speak", json={"key": keys["Olive Owner"],
                                                                "text": words_lasting(12)})
    # Rates come from the counters' growth between two pushes (the sinks update them every 2 s).
    page.wait_for_function(
        f"() => /audio [1-9]/.test(document.querySelector(\"tr[data-stream='{started['id']}'] .rates\")?.textContent)",
        timeout=45000)
    texts = row.locator("td").all_inner_texts()
    assert texts[0:3] == ["Quarterly planning", "Notetaker", "Sam Seller"]
    holder = StreamSession.objects.get(rtms_stream_id=started["id"]).owner_worker  # "<host name>:<process id>"
    host, _, pid = holder.rpartition(":")
    assert texts[4] == f"process {pid} on {host}"
    assert row.locator("td.worker").get_attribute("title") == f"Worker id {holder}"
    shot(page, "console-3-live-streams")

    zoomsim.post(f"/_sim/streams/{started['id']}/stop", json={"reason": "STREAM_CANCELED"})
    row.and_(page.locator("[data-state='stopped']")).wait_for(timeout=15000)
    assert "stopped Stream canceled (7)" in row.inner_text()

    page.goto(f"{daphne.url}/console/audit?meeting={meeting['uuid'].replace('+', '%2B')}")
    wait_for(lambda: (page.reload(), page.locator("tr[data-kind='stream_stopped']").count())[1], 15,
             "the stream's stop in the audit log", interval=0.5)
    shot(page, "console-4-audit-log")
    with page.expect_download() as download:
        page.click("[data-testid='csv-export']")
    assert download.value.suggested_filename == "audit-log.csv"

    page.goto(f"{daphne.url}/console/meetings")
    page.locator(f"tr[data-meeting='{meeting['uuid']}']").wait_for()
    shot(page, "console-5-meetings")
    page.goto(f"{daphne.url}/console/apps")
    listed = page.locator(f"tr[data-app='{app.client_id}']").inner_text()  # signing in with it installed it
    assert "Notetaker" in listed and f"/panel/{app.client_id}/" in listed and app.webhook_path in listed
    assert "deployment default" in listed
    assert app.client_secret not in page.content() and app.webhook_secret_token not in page.content()
    shot(page, "console-6-apps")


def test_a_member_signing_in_is_refused_in_the_browser(browser, daphne, zoomsim, settings, axe_script):
    app = make_app("Notetaker")
    register_with_sim(zoomsim, daphne.url, app)
    member_id = f"mia{secrets.token_hex(3)}"
    add_sim_user(zoomsim, member_id, "Mia Member", account_id="acctConsole", role="member")
    context = console_context(browser, daphne, zoomsim, settings, member_id, {"width": 1360, "height": 700})
    page = context.new_page()
    page.goto(f"{daphne.url}/console/signin")
    page.click("text=Sign in with Zoom (Notetaker)")
    refusal = page.locator("[data-testid='refusal']")
    assert refusal.inner_text() == ("The admin console is for account owners and admins. Zoom says your role is "
                                    "Member.")
    assert_no_violations(page, axe_script, "console: sign-in refused")
    shot(page, "console-7-member-refused")
    page.goto(f"{daphne.url}/console/audit")
    assert page.locator("h1").inner_text() == "Sign in"
    context.close()
