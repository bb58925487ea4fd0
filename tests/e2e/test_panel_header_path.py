"""The panel as Zoom's desktop client loads it: the Home URL request carries X-Zoom-App-Context, so the page
arrives already bound (no getAppContext round trip). Also: light theme, keyboard use, guest mode, and a
tampered context refused with a clear message — in a real browser against daphne."""

import secrets

import pytest

from tests.consent_support import context_for, meeting_uuid
from tests.e2e.panel_support import SCREENSHOTS
from zoomapp import texts

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]
PANEL_WIDTH = {"width": 360, "height": 640}  # about Zoom's side panel


@pytest.fixture
def app(daphne):
    from zoomapp.marketplace.models import ZoomApp

    return ZoomApp.objects.create(name="Notes Bot", client_id=f"hdr{secrets.token_hex(4)}",
                                  client_secret=secrets.token_hex(16), webhook_secret_token=secrets.token_hex(16))


def open_as(browser, daphne, app, meeting, user_id, role, theme="light"):
    context = browser.new_context(viewport=PANEL_WIDTH, color_scheme=theme)
    context.set_extra_http_headers({"X-Zoom-App-Context": context_for(app, meeting, user_id, role, theme=theme)})
    page = context.new_page()
    page.goto(f"{daphne.url}/panel/{app.client_id}/")
    return context, page


def test_bound_from_the_header_usable_by_keyboard_in_light_theme(browser, daphne, app):
    from zoomapp.consent.models import Share

    meeting = meeting_uuid()
    host_context, host = open_as(browser, daphne, app, meeting, "hostH", "host")
    ben_context, ben = open_as(browser, daphne, app, meeting, "benH", "participant")
    try:
        for page in (host, ben):
            page.wait_for_selector("#panel[data-ready='true']")
        assert ben.evaluate("document.documentElement.dataset.theme") == "light"
        # Keyboard only: Tab to the primary action, Enter.
        ben.keyboard.press("Tab")
        assert ben.evaluate("document.activeElement.id") == "share-button"
        ben.keyboard.press("Enter")
        ben.wait_for_selector("#outcome[data-status='pending']")
        assert ben.locator("#outcome").inner_text() == texts.REQUEST_SENT
        host.wait_for_selector("#requests-modal[data-kind='single'][open]")
        # Focus lands on the dialog's title (it is read out, and a stray Enter decides nothing); Tab reaches Approve.
        assert host.evaluate("document.activeElement.id") == "requests-title"
        host.keyboard.press("Tab")
        assert host.evaluate("document.activeElement.textContent") == texts.LABEL_APPROVE
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        host.screenshot(path=str(SCREENSHOTS / "light-host-single-request.png"))
        ben.screenshot(path=str(SCREENSHOTS / "light-participant-request-sent.png"))
        host.keyboard.press("Tab")
        host.keyboard.press("Enter")  # Deny
        ben.wait_for_selector("#outcome[data-status='denied']")
        assert ben.locator("#outcome").inner_text() == texts.REQUEST_DENIED
        share = Share.objects.get(meeting__uuid=meeting, user_id="benH")
        assert share.status == "denied"
    finally:
        host_context.close()
        ben_context.close()


def test_guest_sees_guest_mode(browser, daphne, app):
    context, page = open_as(browser, daphne, app, meeting_uuid(), None, "participant", theme="dark")
    try:
        page.wait_for_selector("#panel[data-ready='true']")
        assert page.locator("#outcome").inner_text() == texts.GUEST_MODE.format(app="Notes Bot")
        assert not page.locator("#share-button").is_visible()
    finally:
        context.close()


def test_tampered_context_is_refused_with_a_clear_message(browser, daphne, app):
    context = browser.new_context(viewport=PANEL_WIDTH)
    value = context_for(app, meeting_uuid(), "eve", "host")
    context.set_extra_http_headers({"X-Zoom-App-Context": value[:-10] + "A" * 8 + "=="})
    page = context.new_page()
    try:
        response = page.goto(f"{daphne.url}/panel/{app.client_id}/")
        assert response.status == 403
        page.wait_for_selector("#panel[data-failed='true']")
        message = page.locator("#fatal").inner_text()
        refused = "the app context was not made for this app or was altered"
        assert message == texts.CONTEXT_REFUSED.format(reason=refused)
        assert not page.locator("#host").is_visible() and not page.locator("#mine").is_visible()
        page.screenshot(path=str(SCREENSHOTS / "refused-tampered-context.png"))
    finally:
        context.close()
