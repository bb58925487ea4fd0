"""Zoom web portal pages for account admins, and Zoom's own gating following them in the meeting window."""

import pytest

from tests.e2e.zoom_window_fixtures import SCREENSHOTS, Window, keep_screenshot, register, sdk

pytestmark = pytest.mark.e2e


@pytest.fixture
def contexts(browser):
    opened = []
    yield opened
    for item in opened:
        item.close()


def portal_page(browser, zoomsim, contexts):
    context = browser.new_context(viewport={"width": 1100, "height": 760})
    contexts.append(context)
    page = context.new_page()
    page.goto(zoomsim.http_url + "/portal")
    return page


def test_auto_start_and_sharing_setting_drive_zoom_gating(zoomsim, browser, app_server, contexts):
    app = register(zoomsim, app_server.add("Auto Notes"))
    meeting = zoomsim.post("/_sim/meetings", json={
        "topic": "Portal", "start": True, "host": {"name": "Kim Admin", "account_id": "acct-portal"},
        "participants": [{"name": "Lee Auto", "account_id": "acct-portal", "join": False},
                         {"name": "Mo Outside", "account_id": "acct-other", "join": False}],
        "settings": {"require_host_approval": True}}).json()
    lee = next(p for p in meeting["participants"] if p["name"] == "Lee Auto")
    mo = next(p for p in meeting["participants"] if p["name"] == "Mo Outside")

    admin = portal_page(browser, zoomsim, contexts)
    admin.get_by_role("link", name="Lee Auto").click()
    admin.get_by_text("Auto-start apps that access shared real-time meeting content").wait_for()
    admin.get_by_label("Choose an app to auto-start").select_option(app.client_id)
    admin.get_by_role("button", name="Save").click()
    admin.locator(f"tr[data-client-id='{app.client_id}'] .auto-start-state", has_text="Auto-start On").wait_for()
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    admin.screenshot(path=str(SCREENSHOTS / "portal-auto-start.png"))
    keep_screenshot("portal-auto-start")

    host = Window(browser, zoomsim, meeting, "Kim Admin")
    lee_window = Window(browser, zoomsim, meeting, "Lee Auto")
    contexts.extend([host.context, lee_window.context])
    lee_window.page.click("#join")
    # Same account as the host: Zoom starts the app by itself and tells the meeting.
    notice = host.page.locator(".notice", has_text="RTMS set to auto start")
    notice.wait_for()
    assert "Auto Notes · Lee Auto" in notice.inner_text()
    host.page.locator(f".tile[data-key='{lee['key']}']").get_by_text("Auto Notes · Sharing").wait_for()

    # Another account's auto-start needs the host's approval: Zoom's request modal, as for an in-client request.
    admin.goto(f"{zoomsim.http_url}/portal/user/{mo['user_id']}")
    admin.get_by_label("Choose an app to auto-start").select_option(app.client_id)
    admin.get_by_role("button", name="Save").click()
    admin.locator(f"tr[data-client-id='{app.client_id}'] .auto-start-state", has_text="Auto-start On").wait_for()
    mo_window = Window(browser, zoomsim, meeting, "Mo Outside")
    contexts.append(mo_window.context)
    mo_window.page.click("#join")
    single = host.page.locator("#request-single")
    single.wait_for()
    assert "Mo Outside would like Auto Notes" in single.inner_text()
    assert "Auto-start was set by an admin of another account." in single.inner_text()
    single.get_by_role("button", name="Deny").click()
    mo_window.page.get_by_text("Request for app to share meeting content denied by host.").wait_for()

    # Auto-start Off is kept as a choice, and no longer starts the app.
    admin.goto(f"{zoomsim.http_url}/portal/user/{lee['user_id']}")
    admin.locator(f"tr[data-client-id='{app.client_id}']").get_by_role("switch", name="Auto-start Auto Notes").click()
    admin.locator(f"tr[data-client-id='{app.client_id}'] .auto-start-state", has_text="Auto-start Off").wait_for()
    policies = {(row["level"], row["id"]): row for row in zoomsim.get("/_sim/settings").json()}
    assert policies[("user", lee["user_id"])]["auto_start_apps"] == []

    # The account turns sharing off: Zoom stops the app, and the host cannot approve new requests.
    admin.goto(f"{zoomsim.http_url}/portal/account/acct-portal")
    admin.locator("#share-setting").get_by_role("button", name="Off").click()
    admin.locator("#share-setting .share-state", has_text="Off").wait_for()
    lee_window.page.get_by_text("Apps sharing meeting content have been disabled.").wait_for()
    host.page.locator("#aan").wait_for(state="hidden")
    frame = lee_window.open_app(app)
    assert sdk(frame, "sdk.config({capabilities: ['startRTMS']})")["ok"]
    assert sdk(frame, "sdk.startRTMS()")["value"] == {"message": "Failure"}
    lee_window.page.get_by_text("Host cannot approve your app's access to meeting content.").wait_for()
