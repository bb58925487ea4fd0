"""The admin console as a person reads it, in headless Chromium at 1,024 px: names instead of ids, stop reasons in
words, change rows that say what changed, an audit table without sideways scrolling, only sign-in choices that
work, and axe-core's 0 violations on every page.

Olive, the account's owner, signs in through the simulator's Zoom OAuth. Her account's meeting "Quarterly
planning" is in the database as the consent code and the streams record one: Hana hosts, Pat asked for his app
Notetaker, Hana turned "Require host approval" off, Zoom started and canceled the stream, restarted one after an
internal error, and a worker never reached Zoom's media server for another.
"""

import secrets
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from rtms.models import MediaFile, ParticipantEvent, StreamSession
from tests.consent_support import (
    add_sim_user,
    make_app,
    meeting_uuid,
    register_with_sim,
)
from tests.e2e.axe_support import assert_no_violations, axe_script  # noqa: F401 - fixture
from tests.e2e.console_browser import console_context, sign_in
from tests.e2e.zoom_window_fixtures import browser  # noqa: F401 - fixture
from zoomapp.consent.models import AuditEntry, Meeting, Participant, Share
from zoomapp.console import changes
from zoomapp.console.auth import ConsoleAdmin
from zoomapp.marketplace.models import ZoomApp

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

ACCOUNT = "acctReadable"
NARROW = {"width": 1024, "height": 768}
# A refused start's reason as Zoom's REST answer gave it: one long word that must wrap, not widen the table.
LONG_REST_DETAIL = "REST 400: " + "invalid_request_" * 16
PAT_RTMS_ID = 16778240  # Pat's user id in RTMS media (an integer, not his Zoom user id)
SCREENSHOTS = Path(__file__).resolve().parents[2] / "artifacts/screenshots"


@pytest.fixture
def account(browser, daphne, zoomsim, settings):  # noqa: F811
    tag = secrets.token_hex(3)
    app = make_app("Notetaker")
    register_with_sim(zoomsim, daphne.url, app, account_id=ACCOUNT)
    olive, hana, pat = f"olive{tag}", f"hana{tag}", f"pat{tag}"
    add_sim_user(zoomsim, olive, "Olive Owner", account_id=ACCOUNT, role="owner")
    world = {"app": app, "olive": olive, "hana": hana, "pat": pat, **_quarterly_planning(app, hana, pat)}
    context = console_context(browser, daphne, zoomsim, settings, olive, NARROW)
    page = context.new_page()
    sign_in(page, daphne, "Notetaker")
    world["admin"] = ConsoleAdmin(olive, ACCOUNT, "Owner", "Olive Owner", app.client_id)
    yield page, world
    context.close()


def _quarterly_planning(app, hana, pat):
    uuid = meeting_uuid()
    meeting = Meeting.objects.create(app=app, uuid=uuid, topic="Quarterly planning", host_user_id=hana,
                                     account_id=ACCOUNT, host_present=True)
    Participant.objects.create(meeting=meeting, user_id=hana, name="Hana Host", role="host")
    Participant.objects.create(meeting=meeting, user_id=pat, name="Pat Participant")
    canceled, restarted, failed = (secrets.token_hex(16) for _ in range(3))
    share = Share.objects.create(meeting=meeting, app=app, user_id=pat, user_name="Pat Participant",
                                 status="stopped", rtms_stream_id=canceled, stop_reason=7)
    stopped_at = timezone.now() - timedelta(minutes=1)
    for stream_id, reason, name, worker in ((canceled, 7, "STREAM_CANCELED", "web-1:4242"),
                                            (restarted, 10, "INTERNAL_EXCEPTION", "web-2:515"),
                                            (failed, None, "FAILED_NOT_CONNECTED", "")):
        StreamSession.objects.create(
            rtms_stream_id=stream_id, meeting_uuid=uuid, client_id=app.client_id, account_id=ACCOUNT,
            operator_id=pat, state="stopped", desired_state="stopped", stop_reason=reason, stop_reason_name=name,
            owner_worker=worker, started_at=stopped_at - timedelta(minutes=5), stopped_at=stopped_at)

    # What the canceled stream stored: everyone's audio and Pat's own, which Zoom files under his RTMS user id.
    held = StreamSession.objects.get(rtms_stream_id=canceled)
    ParticipantEvent.objects.create(stream=held, kind="join", event_type=3, user_id=PAT_RTMS_ID,
                                    user_name="Pat Participant")
    began = int((stopped_at - timedelta(minutes=5)).timestamp() * 1000)
    for kind, user_id, name in (("audio_mixed", None, "mixed"), ("audio_participant", PAT_RTMS_ID, "user-16778240")):
        MediaFile.objects.create(stream=held, kind=kind, user_id=user_id, path=f"rtms/{canceled}/audio/{name}.wav",
                                 stored=True, bytes=96044, first_timestamp=began)

    def entry(kind, actor, role, **fields):
        AuditEntry.objects.create(kind=kind, app=app, meeting_uuid=uuid, account_id=ACCOUNT, actor_user_id=actor,
                                  actor_role=role, source="panel_ws" if actor != "zoom" else "webhook", **fields)

    entry("request", pat, "participant", subject_user_id=pat, outcome="pending", rtms_stream_id="")
    entry("set_toggles", hana, "host", detail={"require_host_approval": False})
    entry("approve", hana, "host", subject_user_id=pat, outcome="starting")
    entry("stream_started", "zoom", "zoom", subject_user_id=pat, outcome="sharing", rtms_stream_id=canceled)
    entry("stream_stopped", "zoom", "zoom", subject_user_id=pat, outcome="stopped", reason="STREAM_CANCELED",
          rtms_stream_id=canceled)
    entry("stream_restart", "app", "app", subject_user_id=pat, outcome="starting",
          reason="INTERNAL_EXCEPTION (10): restart 1 of 3", detail={"stop_reason": 10})
    entry("start_failed", "app", "app", subject_user_id=pat, outcome="host_cannot_approve", reason=LONG_REST_DETAIL)
    return {"meeting": meeting, "share": share, "canceled": canceled, "failed": failed}


def _cells(row):
    """Each cell's text as a person reads it (line breaks where the column wrapped are spaces)."""
    return [" ".join(cell.split()) for cell in row.locator("td").all_inner_texts()]


def shot(page, name):
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def fits_the_window(page):
    """(document width, window width): a page a person does not scroll sideways has the first ≤ the second."""
    return page.evaluate("() => [document.documentElement.scrollWidth, document.documentElement.clientWidth]")


def test_the_audit_log_names_people_meetings_and_apps_and_says_what_changed(account, daphne):
    page, world = account
    changes.set_sharing_policy(world["admin"], "user", world["pat"], False)
    page.goto(f"{daphne.url}/console/audit")
    log = page.locator("[data-testid='audit-log']")

    toggles = log.locator("tr[data-kind='set_toggles']")
    assert toggles.locator("[data-testid='change']").inner_text() == "Require host approval: on → off"
    _, what, meeting, who, _ = _cells(toggles)
    assert what.startswith("Host changed meeting settings")
    assert meeting == "Quarterly planning Notetaker"
    assert who == "Hana Host host"
    link = toggles.locator("td.meeting a")
    assert link.get_attribute("title") == f"Meeting UUID {world['meeting'].uuid}"
    assert world["meeting"].uuid not in toggles.inner_text()  # folded in the row's details until asked for
    toggles.locator("summary").click()
    assert world["meeting"].uuid in toggles.inner_text() and "set_toggles" in toggles.inner_text()

    request = _cells(log.locator("tr[data-kind='request']"))
    assert request[1] == "Request to share Pending" and request[3] == "Pat Participant participant for Pat Participant"
    stopped = _cells(log.locator("tr[data-kind='stream_stopped']"))
    assert stopped[1] == "Stream stopped Stopped Stream canceled (7)"
    assert stopped[3] == "Zoom for Pat Participant"
    restart = _cells(log.locator("tr[data-kind='stream_restart']"))
    assert restart[1] == "Stream restarted through Zoom Starting Zoom internal error (10): restart 1 of 3"
    assert restart[3] == "the app for Pat Participant"

    policy = log.locator("tr[data-kind='sharing_policy_changed']")
    assert policy.locator("[data-testid='change']").inner_text() == (
        "Share real-time meeting content with apps for Pat Participant: not set → off")
    assert _cells(policy)[3] == "Olive Owner owner for Pat Participant"
    assert "acctReadable" not in page.locator("tbody").inner_text()
    kinds = page.locator("select[name='kind'] option")
    assert kinds.filter(has_text="Host changed meeting settings").get_attribute("value") == "set_toggles"

    link.click()  # the meeting's entries, the filter named as the admin knows the meeting
    assert page.locator("[data-testid='filtered-by']").inner_text() == (
        "Showing entries of meeting “Quarterly planning”. Show all")
    assert page.locator("tr[data-kind='sharing_policy_changed']").count() == 0


def test_the_audit_log_fits_a_1024_px_window(account, daphne):
    page, _ = account
    page.goto(f"{daphne.url}/console/audit")
    assert page.viewport_size["width"] == 1024
    document, window = fits_the_window(page)
    table = page.evaluate("() => { const t = document.querySelector(\"[data-testid='audit-log']\");"
                          " return [t.scrollWidth, t.parentElement.clientWidth]; }")
    print(f"\naudit log at 1,024 px: document {document} px in a {window} px window, table {table[0]} px in "
          f"{table[1]} px")
    shot(page, "console-audit-1024px")
    assert document <= window and table[0] <= table[1]
    assert LONG_REST_DETAIL in page.locator("tr[data-kind='start_failed']").inner_text().replace("\n", "")

    page.locator("[data-testid='audit-log'] summary").evaluate_all("(all) => all.forEach((s) => s.click())")
    document, window = fits_the_window(page)
    print(f"every row's details open: document {document} px in a {window} px window")
    shot(page, "console-audit-1024px-details-open")
    assert document <= window


def test_live_streams_show_stop_reasons_in_words_and_which_worker_held_them(account, daphne):
    page, world = account
    page.goto(f"{daphne.url}/console/streams")
    table = page.locator("#streams")

    def shown():
        canceled = table.locator(f"tr[data-stream='{world['canceled']}']")
        failed = table.locator(f"tr[data-stream='{world['failed']}']")
        return _cells(canceled), canceled.locator("td.worker").get_attribute("title"), _cells(failed)

    server_rendered = shown()
    page.wait_for_selector("#streams:not([data-version='0'])")  # the socket's table replaced the page's
    for canceled, worker_title, failed in (server_rendered, shown()):
        assert canceled[:5] == ["Quarterly planning", "Notetaker", "Pat Participant",
                                "stopped Stream canceled (7)", "process 4242 on web-1"]
        assert worker_title == "Worker id web-1:4242"
        assert failed[3:5] == ["stopped Never connected to Zoom's media server", "—"]
    meeting_title = table.locator(f"tr[data-stream='{world['canceled']}'] td").first.get_attribute("title")
    assert meeting_title == f"Meeting UUID {world['meeting'].uuid}"
    assert "STREAM_CANCELED" not in table.inner_text() and "FAILED_" not in table.inner_text()
    shot(page, "console-streams-1024px")


def test_meetings_and_settings_name_their_people(account, daphne):
    page, world = account
    changes.set_sharing_policy(world["admin"], "user", world["pat"], False)
    page.goto(f"{daphne.url}/console/meetings")
    row = page.locator(f"tr[data-meeting='{world['meeting'].uuid}']")
    topic, app, host = _cells(row)[:3]
    assert topic == "Quarterly planning Meeting UUID" and app == "Notetaker" and host == "Hana Host"
    assert row.locator("td.host").get_attribute("title") == f"User id {world['hana']}"
    assert world["meeting"].uuid not in topic
    row.locator("summary").click()
    assert world["meeting"].uuid in row.locator("td.topic").inner_text()
    link = row.locator("a.stream-media")
    assert link.inner_text().startswith("Media files of Pat Participant's stream from ")
    link.click()  # the stream's stored media: what each file holds, by name
    files = page.locator("[data-testid='stream-media']")
    assert [_cells(files.locator("tbody tr").nth(n))[0] for n in range(2)] == ["Audio of everyone",
                                                                            "Audio of Pat Participant"]
    assert str(PAT_RTMS_ID) not in files.inner_text()

    page.goto(f"{daphne.url}/console/sharing")
    users = page.locator("[data-testid='user-settings']")
    assert _cells(users.locator(f"tr[data-user='{world['pat']}']"))[0] == "Pat Participant"
    assert _cells(users.locator(f"tr[data-user='{world['olive']}']"))[0] == "Olive Owner Owner"
    assert world["pat"] not in users.inner_text()
    # Adding a user's setting: the id field suggests the account's people by name.
    suggestion = page.locator(f"#known-users option[value='{world['pat']}']")
    assert suggestion.text_content() == "Pat Participant"


def test_the_sign_in_page_offers_only_apps_that_can_sign_in(
        browser, daphne, zoomsim, settings, axe_script):  # noqa: F811
    app = make_app("Notetaker")
    register_with_sim(zoomsim, daphne.url, app, account_id=ACCOUNT)
    draft = ZoomApp.objects.create(name="Draft app", client_id=f"cid{secrets.token_hex(5)}", client_secret="",
                                   webhook_secret_token=secrets.token_hex(16), account_id=ACCOUNT)
    context = console_context(browser, daphne, zoomsim, settings, "nobody", NARROW)
    page = context.new_page()
    page.goto(f"{daphne.url}/console/signin")
    assert page.locator("main a.button").all_inner_texts() == ["Sign in with Zoom (Notetaker)"]
    assert_no_violations(page, axe_script, "console: sign-in, signed out")
    assert page.goto(f"{daphne.url}/console/signin/{draft.client_id}").status == 404
    context.close()


def test_every_console_page_has_no_axe_violations(account, daphne, axe_script):  # noqa: F811
    page, world = account
    # A meeting with a live stream (its delete form disabled, saying why) and settings rows with On / Off / Clear.
    live = Meeting.objects.create(app=world["app"], uuid=meeting_uuid(), topic="Weekly sync", account_id=ACCOUNT,
                                  host_user_id=world["hana"])
    StreamSession.objects.create(rtms_stream_id=secrets.token_hex(16), meeting_uuid=live.uuid,
                                 client_id=world["app"].client_id, account_id=ACCOUNT, operator_id=world["pat"],
                                 state="active", started_at=timezone.now())
    changes.set_sharing_policy(world["admin"], "user", world["pat"], False)
    changes.set_auto_start(world["admin"], world["app"], "user", world["pat"], True)
    page.goto(f"{daphne.url}/console/signin")
    assert_no_violations(page, axe_script, "console: sign-in")
    for path, where in (("sharing", "sharing"), ("auto-start", "auto-start"), ("audit", "audit log"),
                        ("meetings", "meetings and their data")):
        page.goto(f"{daphne.url}/console/{path}")
        assert_no_violations(page, axe_script, f"console: {where}")
    live_row = page.locator(f"tr[data-meeting='{live.uuid}']")
    assert live_row.get_by_role("button", name="Delete this meeting's data").is_disabled()
    assert live_row.locator(".still-live").inner_text() == ("A stream is live: its data can be deleted once every "
                                                            "stream has stopped.")
    page.goto(f"{daphne.url}/console/audit")
    page.locator("[data-testid='audit-log'] summary").evaluate_all("(all) => all.forEach((s) => s.click())")
    assert_no_violations(page, axe_script, "console: audit log with every row's details open")
    page.goto(f"{daphne.url}/console/streams")
    page.wait_for_selector("#streams:not([data-version='0'])")
    assert_no_violations(page, axe_script, "console: live streams")
    page.goto(f"{daphne.url}/console/streams/{world['canceled']}/media")
    assert_no_violations(page, axe_script, "console: a stream's stored media")
    page.goto(f"{daphne.url}/console/apps")
    assert_no_violations(page, axe_script, "console: apps")
    row = page.locator(f"tr[data-app='{world['app'].client_id}']")
    row.locator("input[name='days']").fill("7")
    row.locator("button[type='submit']").click()
    page.locator("ul.messages li.success").wait_for()
    assert "set by your account" in row.inner_text()
    assert_no_violations(page, axe_script, "console: retention saved")
    page.goto(f"{daphne.url}/console/sharing")
    add_user = page.locator("form.add", has=page.locator("input[name='level'][value='user']"))
    add_user.locator("input[name='target_id']").fill("stranger1")
    add_user.locator("button[value='on']").click()
    assert "stranger1 is not a user of your account" in page.locator("ul.messages li.error").inner_text()
    assert_no_violations(page, axe_script, "console: sharing, a setting refused")
    for path in ("sharing", "auto-start", "audit", "streams", "meetings", f"streams/{world['canceled']}/media", "apps"):
        page.goto(f"{daphne.url}/console/{path}")
        document, window = fits_the_window(page)
        assert document <= window, f"/console/{path} is {document} px wide in a {window} px window"
