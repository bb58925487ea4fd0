"""The simulated Zoom window as people in one meeting see it, each in their own browser context.

Requests made in-client with the real Apps SDK reach Zoom's own host modals; approving them makes the tiles,
the immersive view and the Active Apps Notifier show the app "Sharing" for everyone, with the disclosure.
"""

from urllib.parse import parse_qs, urlsplit

import pytest

from tests.e2e.zoom_window_fixtures import Window, create_meeting, keep_screenshot, register, sdk, sdk_events
from tests.processes import wait_for

pytestmark = pytest.mark.e2e

DISCLOSURE = "The content of this meeting is being shared with one or more apps."
CAPABILITIES = "['startRTMS','stopRTMS','pauseRTMS','resumeRTMS','getRTMSStatus','onRTMSStatusChange']"


@pytest.fixture(scope="module")
def apps(zoomsim, app_server):
    notes = register(zoomsim, app_server.add("Notes Bot"))
    recap = register(zoomsim, app_server.add("Recap"))
    return notes, recap


@pytest.fixture
def windows(browser, zoomsim):
    opened = []

    def open_window(meeting, name):
        window = Window(browser, zoomsim, meeting, name)
        opened.append(window)
        return window

    yield open_window
    for window in opened:
        window.close()


def request_sharing(window, app):
    """The participant opens the app and its panel calls zoomSdk.startRTMS() (after config)."""
    frame = window.open_app(app)
    assert sdk(frame, f"sdk.config({{capabilities: {CAPABILITIES}}})")["ok"]
    frame.evaluate("listen(['onRTMSStatusChange'])")
    result = sdk(frame, "sdk.startRTMS()")
    assert result == {"ok": True, "value": {"message": "Success"}}
    return frame


def test_requests_reach_host_modals_and_approved_app_shows_sharing_for_everyone(zoomsim, apps, windows):
    notes, recap = apps
    meeting = create_meeting(zoomsim, "Design review", "Ana Host", ["Ben Ortiz", "Cleo Park"])
    host, ben, cleo = (windows(meeting, name) for name in ("Ana Host", "Ben Ortiz", "Cleo Park"))

    ben_panel = request_sharing(ben, notes)
    ben.page.get_by_text("Request sent to the host.").wait_for()
    single = host.page.locator("#request-single")
    single.wait_for()
    assert "Ben Ortiz would like Notes Bot to access shared real-time meeting content." in single.inner_text()
    host.screenshot("host-request-single-app")
    keep_screenshot("host-request-single-app")

    cleo_panel = request_sharing(cleo, recap)
    multiple = host.page.locator("#request-multiple")
    multiple.wait_for()
    assert single.is_hidden()
    rows = multiple.locator(".request-row")
    assert rows.count() == 2
    assert "Notes Bot requested by Ben Ortiz" in rows.nth(0).inner_text()
    assert "Recap requested by Cleo Park" in rows.nth(1).inner_text()
    host.screenshot("host-request-multiple-apps")
    keep_screenshot("host-request-multiple-apps")

    rows.nth(1).get_by_role("button", name="Deny").click()
    cleo.page.get_by_text("Request for app to share meeting content denied by host.").wait_for()
    wait_for(lambda: [e["status"] for e in sdk_events(cleo_panel, "onRTMSStatusChange")] == ["stopped"],
             what="Cleo's panel told the request ended")
    single.wait_for()  # one request left: back to the single-app modal
    single.get_by_role("button", name="Approve").click()

    # The app's backend connects to RTMS; from then on Zoom shows the app as sharing, for everyone.
    for window in (host, ben, cleo):
        window.page.locator("#disclosure").get_by_text(DISCLOSURE).wait_for()
        tile = window.page.locator(f".tile[data-key='{ben.person['key']}'] .app-badge")
        tile.get_by_text("Notes Bot · Sharing").wait_for()
    cleo.screenshot("disclosure")
    keep_screenshot("disclosure")
    wait_for(lambda: [e["status"] for e in sdk_events(ben_panel, "onRTMSStatusChange")] == ["connecting", "started"],
             what="connecting then started in Ben's panel")
    assert sdk(ben_panel, "sdk.getRTMSStatus()")["value"]["rtmsStatus"][0]["status"] == "started"

    cleo.page.click("#disclosure-ok")
    cleo.page.locator("#disclosure").wait_for(state="hidden")
    cleo.page.click(".aan-chip")
    item = cleo.page.locator(".aan-item")
    assert item.count() == 1
    assert [item.locator(part).inner_text() for part in (".aan-app", ".aan-user", ".aan-status")] == [
        "Notes Bot", "Ben Ortiz", "Sharing"]
    cleo.page.get_by_text("RTMS started by host").wait_for()
    cleo.screenshot("gallery-aan")
    keep_screenshot("gallery-aan")

    cleo.page.click("#view-button")
    seat = cleo.page.locator(f".seat[data-key='{ben.person['key']}'] .seat-apps")
    seat.get_by_text("Notes Bot · Sharing").wait_for()
    cleo.screenshot("immersive")
    keep_screenshot("immersive")

    # The participant pauses and resumes their own app: everyone sees "Paused", then "Sharing" again.
    assert sdk(ben_panel, "sdk.pauseRTMS()")["value"] == {"message": "Success"}
    host.page.locator(f".tile[data-key='{ben.person['key']}']").get_by_text("Notes Bot · Paused").wait_for()
    assert sdk(ben_panel, "sdk.resumeRTMS()")["value"] == {"message": "Success"}
    host.page.locator(f".tile[data-key='{ben.person['key']}']").get_by_text("Notes Bot · Sharing").wait_for()
    wait_for(lambda: [e["status"] for e in sdk_events(ben_panel, "onRTMSStatusChange")][-2:] == ["paused", "resumed"],
             what="pause and resume events in Ben's panel")

    # The host disables the app: it stops and its user is told why.
    host.page.click("#disclosure-ok")
    host.page.click(".aan-chip")
    host.page.locator(".aan-item").get_by_role("button", name="Disable").click()
    ben.page.get_by_text("Host disabled your app from sharing meeting content.").wait_for()
    for window in (host, ben, cleo):
        window.page.locator("#aan").wait_for(state="hidden")


def test_host_toggles_gate_requests(zoomsim, apps, windows):
    notes, _ = apps
    meeting = create_meeting(zoomsim, "Toggles", "Hana Host", ["Ivo Guest"])
    host, ivo = windows(meeting, "Hana Host"), windows(meeting, "Ivo Guest")

    # Speaking a line makes the speaker the active speaker in everyone's gallery.
    host.page.fill("#speak-text", "Welcome to the toggles meeting")
    host.page.click("#speak-form button")
    ivo.page.locator(f".tile.speaking[data-key='{host.person['key']}']").wait_for()

    # Approval not required: the participant's request starts the app at once, no modal.
    host.page.click("#host-tools-button")
    host.screenshot("host-tools")
    keep_screenshot("host-tools")
    host.page.get_by_role("switch", name="Require host approval").uncheck()
    wait_for(lambda: zoomsim.get(f"/_sim/meetings/{meeting['id']}").json()["settings"]["require_host_approval"]
             is False, what="approval setting off")
    panel = request_sharing(ivo, notes)
    ivo.page.locator(f".tile[data-key='{ivo.person['key']}']").get_by_text("Notes Bot · Sharing").wait_for()
    assert host.page.locator("#request-single").is_hidden()
    assert host.page.locator(".notice").count() == 0  # the participant started it, not the host
    host.page.locator("#disclosure").get_by_text(DISCLOSURE).wait_for()
    host.page.click("#disclosure-ok")

    # Sharing turned off: every app stops, the user is told, and a new request fails with the same words.
    host.page.get_by_role("switch", name="Share real-time meeting content with apps").uncheck()
    ivo.page.get_by_text("Apps sharing meeting content have been disabled.").first.wait_for()
    ivo.page.locator("#aan").wait_for(state="hidden")
    assert sdk(panel, "sdk.startRTMS()")["value"] == {"message": "Failure"}
    assert sdk(panel, "sdk.getRTMSStatus()")["value"] == {"rtmsStatus": []}

    # A participant cannot use the host tools, whatever their page sends.
    ivo.page.evaluate("() => { document.querySelector('#share-with-apps').checked = true; "
                      "document.querySelector('#share-with-apps').dispatchEvent(new Event('change')); }")
    ivo.page.get_by_text("Only the host can do this.").wait_for()
    assert zoomsim.get(f"/_sim/meetings/{meeting['id']}").json()["settings"]["share_with_apps"] is False


def test_request_before_the_host_joins_is_refused(zoomsim, apps, windows):
    notes, _ = apps
    meeting = create_meeting(zoomsim, "Early", "Olga Host", ["Pia Early"])
    olga, pia = windows(meeting, "Olga Host"), windows(meeting, "Pia Early")
    olga.page.click("#leave")
    pia.page.locator(f".tile[data-key='{olga.person['key']}']").wait_for(state="detached")
    frame = pia.open_app(notes)
    assert sdk(frame, f"sdk.config({{capabilities: {CAPABILITIES}}})")["ok"]
    assert sdk(frame, "sdk.startRTMS()")["value"] == {"message": "Failure"}
    pia.page.get_by_text(
        "Request to share meeting content cannot be sent until the host has joined the meeting.").wait_for()
    olga.page.click("#join")
    pia.page.locator(f".tile[data-key='{olga.person['key']}']").wait_for()


def test_home_url_without_owasp_headers_is_not_rendered(zoomsim, app_server, windows):
    bare = register(zoomsim, app_server.add("Bare App", owasp=False))
    meeting = create_meeting(zoomsim, "Headers", "Rui Host", [])
    host = windows(meeting, "Rui Host")
    host.page.click("#apps-button")
    host.page.click(f"#apps-menu-list button[data-client-id='{bare.client_id}']")
    warning = host.page.locator("#panel-warning")
    warning.wait_for()
    assert warning.inner_text().startswith(
        'Missing OWASP Secure Headers:"Strict-Transport-Security""X-Content-Type-Options""Content-Security-Policy"'
        '"Referrer-Policy"for URL ')
    assert host.page.locator("#panel-frame").count() == 0
    assert bare.home_requests and "X-Zoom-App-Context" in bare.home_requests[-1]


def test_index_creates_a_meeting_and_adds_people(zoomsim, browser):
    context = browser.new_context()
    page = context.new_page()
    page.goto(zoomsim.http_url + "/")
    page.fill("input[name=topic]", "From the index")
    page.fill("input[name=host]", "Uma Index")
    page.click("text=New meeting")
    row = page.locator("tr[data-meeting-id]", has_text="From the index")
    row.wait_for()
    row.locator("input[name=name]").fill("Vic Added")
    row.get_by_role("button", name="Add person").click()
    row = page.locator("tr[data-meeting-id]", has_text="From the index")
    row.get_by_role("link", name="Vic Added").click()
    page.wait_for_function("() => window.__ready === true")
    page.locator(".tile", has_text="Uma Index").wait_for()
    page.locator(".tile", has_text="Vic Added").wait_for()
    context.close()


def test_rest_start_by_the_host_shows_the_aan_notice(zoomsim, apps, windows):
    notes, _ = apps
    meeting = create_meeting(zoomsim, "REST start", "Tess Host", ["Uli Viewer"])
    uli = windows(meeting, "Uli Viewer")
    host_id = meeting["participants"][0]["user_id"]
    redirect = notes.registration()["redirect_url"]
    authorized = zoomsim.get("/oauth/authorize", params={
        "response_type": "code", "client_id": notes.client_id, "redirect_uri": redirect, "user_id": host_id},
        allow_redirects=False)
    code = parse_qs(urlsplit(authorized.headers["Location"]).query)["code"][0]
    token = zoomsim.post("/oauth/token", json=None, auth=(notes.client_id, notes.client_secret), data={
        "grant_type": "authorization_code", "code": code, "redirect_uri": redirect}).json()["access_token"]
    response = zoomsim.request("PATCH", f"/v2/live_meetings/{meeting['id']}/rtms_app/status",
                               headers={"Authorization": f"Bearer {token}"},
                               json={"action": "start", "settings": {"client_id": notes.client_id}})
    assert response.status_code == 204, response.text

    notice = uli.page.locator(".notice", has_text="RTMS started by host")
    notice.wait_for()
    assert "Notes Bot · Tess Host" in notice.inner_text()
    uli.page.locator(f".tile[data-key='{meeting['participants'][0]['key']}']").get_by_text(
        "Notes Bot · Sharing").wait_for()


def test_approval_that_zoom_cannot_honour_tells_the_requester(zoomsim, apps, windows):
    notes, _ = apps
    meeting = create_meeting(zoomsim, "Policy", "Vera Host", ["Wes Asker"])
    host, wes = windows(meeting, "Vera Host"), windows(meeting, "Wes Asker")
    request_sharing(wes, notes)
    host.page.locator("#request-single").wait_for()
    # The host's account turns sharing off while the request waits: Zoom refuses the approval.
    assert zoomsim.put(f"/_sim/settings/account/{meeting['account_id']}", json={"share_with_apps": False}).ok
    host.page.locator("#request-single").get_by_role("button", name="Approve").click()
    wes.page.get_by_text("Host cannot approve your app's access to meeting content.").wait_for()
    host.page.locator("#request-single").wait_for(state="hidden")
    assert zoomsim.get(f"/_sim/streams?meeting={meeting['id']}").json() == []
