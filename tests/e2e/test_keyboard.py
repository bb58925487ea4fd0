"""The meeting with the keyboard only: focus goes into the Apps menu, the app's panel and Zoom's
request modal when they open and comes back when they close; Escape closes what may be dismissed (the menu, the
disclosure, the panel's request dialog) and not a decision Zoom asks for; nothing steals or drops the focus when the
window or the panel refreshes. Keys are pressed as a person presses them; the checks read document.activeElement."""

import pytest
from playwright.sync_api import Error as PlaywrightError

from tests.e2e.panel_support import Person

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

FOCUSED = """() => { const a = document.activeElement;
                     return a ? (a.id || a.dataset.focusKey || a.className || a.tagName) : null; }"""


def focused(target):
    return target.evaluate(FOCUSED)


def wait_focus(target, check, what):
    try:
        target.wait_for_function(f"() => {{ const a = document.activeElement; return Boolean(a && ({check})); }}",
                                 timeout=5000)
    except PlaywrightError:
        raise AssertionError(f"focus is on {focused(target)!r}, not on {what}") from None


class Window:
    """A person's simulated Zoom window, used with the keyboard (no helper that dismisses Zoom's dialogs)."""

    def __init__(self, browser, stack, meeting, name):
        self.stack = stack
        self.meeting = meeting
        self.key = stack.key(meeting, name)
        self.context = browser.new_context(viewport={"width": 1280, "height": 800})
        self.page = self.context.new_page()
        self.page.goto(f"{stack.sim.http_url}/meetings/{meeting['id']}/as/{self.key}")
        self.page.wait_for_function("() => window.__ready === true")
        self.frame = None

    def press(self, *keys):
        for key in keys:
            self.page.keyboard.press(key)

    def panel_frame(self):
        handle = self.page.wait_for_selector(f"#panel-frame[data-client-id='{self.stack.app.client_id}']")
        self.frame = handle.content_frame()
        self.frame.wait_for_selector("#panel[data-ready='true']", timeout=15000)
        return self.frame

    def speak(self, name, text):
        """Someone else becomes the active speaker: the window redraws."""
        key = self.stack.key(self.meeting, name)
        self.stack.sim_call("POST", f"/_sim/meetings/{self.meeting['id']}/speak", {"key": key, "text": text})


@pytest.fixture
def windows(browser, stack):
    opened = []

    def open_for(meeting, *names):
        result = [Window(browser, stack, meeting, name) for name in names]
        opened.extend(result)
        return result

    yield open_for
    for window in opened:
        window.context.close()


def test_apps_menu_and_panel_take_the_focus_and_give_it_back(stack, windows):
    meeting = stack.meeting(host="Hana", participants=("Pat",))
    hana, = windows(meeting, "Hana")
    page = hana.page
    page.focus("#apps-button")
    hana.press("Enter")
    wait_focus(page, "a === document.querySelector('#apps-menu-list button')", "the first app of the Apps menu")
    hana.press("Escape")
    assert page.locator("#apps-menu").is_hidden()
    wait_focus(page, "a.id === 'apps-button'", "the Apps button")

    hana.press("Enter")  # the menu again; Tab down to Notes Bot (the simulator lists every app it knows)
    for _ in range(page.locator("#apps-menu-list button").count()):
        if page.evaluate(f"document.activeElement.dataset.clientId === '{stack.app.client_id}'"):
            break
        hana.press("Tab")
    hana.press("Enter")
    frame = hana.panel_frame()
    wait_focus(page, "a.id === 'panel-frame'", "the app's panel")
    hana.press("Tab")
    wait_focus(frame, "a.id === 'share-button'", "the panel's Share button")
    hana.press("Shift+Tab")  # out of the app, to Zoom's close button above it
    wait_focus(page, "a.id === 'panel-close'", "the panel's close button")
    hana.press("Enter")
    page.locator("#panel").wait_for(state="hidden")
    wait_focus(page, "a.id === 'apps-button'", "the Apps button the app was opened from")


def test_zooms_request_modal_takes_the_focus_traps_tab_and_returns_it(stack, windows):
    meeting = stack.meeting(host="Hana", participants=("Pat",))
    hana, = windows(meeting, "Hana")
    page = hana.page
    page.focus("#speak-text")
    page.keyboard.type("Hello")
    stack.sim_call("POST", f"/_sim/meetings/{meeting['id']}/requests",  # Pat's app asks Zoom (startRTMS)
                   {"client_id": stack.app.client_id, "key": stack.key(meeting, "Pat")})
    page.locator("#request-single:not([hidden])").wait_for()
    wait_focus(page, "a.closest('#request-single') !== null && a.tagName !== 'BUTTON'", "the request dialog itself")
    hana.press("Tab")
    wait_focus(page, "a.id === 'request-single-deny'", "Deny")
    hana.press("Tab")
    wait_focus(page, "a.id === 'request-single-approve'", "Approve")
    hana.press("Tab")
    wait_focus(page, "a.id === 'request-single-deny'", "Deny again (Tab stays in the dialog)")
    hana.press("Escape")  # a decision Zoom asks for is not dismissed by Escape
    assert page.locator("#request-single").is_visible()
    hana.press("Enter")  # Deny
    page.locator("#request-single").wait_for(state="hidden")
    wait_focus(page, "a.id === 'speak-text'", "the text field Hana was typing in")
    assert page.locator("#speak-text").input_value() == "Hello"


def test_disclosure_closes_on_escape_and_the_notifier_keeps_the_focus_on_refresh(stack, windows):
    meeting = stack.meeting(host="Hana", participants=("Pat",))
    hana, = windows(meeting, "Hana")
    page = hana.page
    page.focus("#speak-text")
    stack.sim_call("POST", f"/_sim/meetings/{meeting['id']}/requests",
                   {"client_id": stack.app.client_id, "key": stack.key(meeting, "Pat")})
    page.locator("#request-single:not([hidden])").wait_for()
    page.focus("#request-single-approve")
    hana.press("Enter")
    page.locator("#disclosure:not([hidden])").wait_for(timeout=15000)  # sharing started: Zoom's disclosure
    wait_focus(page, "a.id === 'disclosure-ok'", "the disclosure's OK")
    hana.press("Escape")
    page.locator("#disclosure").wait_for(state="hidden")
    wait_focus(page, "a.id === 'speak-text'", "where Hana was before the dialogs")

    page.focus(".aan-chip")
    hana.press("Enter")  # the Active Apps Notifier opens its list
    page.locator("#aan[data-open='1'] .aan-item").wait_for()
    wait_focus(page, "a.classList.contains('aan-chip')", "the notifier")
    version = int(page.evaluate("document.body.dataset.version"))
    hana.speak("Pat", "Refresh the window")
    page.wait_for_function(f"() => Number(document.body.dataset.version) > {version}")
    wait_focus(page, "a.classList.contains('aan-chip')", "the notifier after a refresh")
    hana.press("Tab")
    wait_focus(page, "a.dataset.focusKey && a.dataset.focusKey.startsWith('disable ')", "the notifier's Disable")
    version = int(page.evaluate("document.body.dataset.version"))
    hana.speak("Hana", "And again")
    page.wait_for_function(f"() => Number(document.body.dataset.version) > {version}")
    wait_focus(page, "a.dataset.focusKey && a.dataset.focusKey.startsWith('disable ')", "Disable after a refresh")
    hana.press("Escape")
    wait_focus(page, "a.classList.contains('aan-chip')", "the notifier, its list closed")


def test_the_panels_request_dialog_takes_the_focus_and_escape_closes_it(browser, stack):
    meeting = stack.meeting(host="Hana", participants=("Pat",))
    stack.authorize(stack.user_id(meeting, "Hana"))
    hana, pat = Window(browser, stack, meeting, "Hana"), Person(browser, stack, meeting, "Pat").open_panel()
    try:
        hana.page.click("#apps-button")
        hana.page.click(f"#apps-menu-list button[data-client-id='{stack.app.client_id}']")
        frame = hana.panel_frame()
        hana.press("Tab")
        wait_focus(frame, "a.id === 'share-button'", "Hana's Share button")

        pat.click("#share-button")
        frame.locator("#requests-modal[open]").wait_for()
        wait_focus(frame, "a.id === 'requests-title'", "the request dialog's title")
        hana.press("Tab")
        wait_focus(frame, "a.dataset.focusKey && a.dataset.focusKey.startsWith('approve ')", "Approve")
        hana.press("Escape")
        frame.locator("#requests-modal").wait_for(state="hidden")
        wait_focus(frame, "a.id === 'share-button'", "where Hana was before the dialog")
        frame.locator("#open-requests").wait_for()  # the request waits behind this button

        frame.locator("#open-requests").focus()
        hana.press("Enter")
        frame.locator("#requests-modal[open]").wait_for()
        frame.locator("#requests-list button", has_text="Approve").focus()
        hana.press("Enter")
        pat.wait_outcome("sharing", timeout=15000)
        disable = frame.locator("#active-apps button", has_text="Disable")
        disable.focus()
        version = int(frame.evaluate("document.getElementById('panel').dataset.version"))
        pat.click("#pause-button")  # every panel of the meeting redraws
        pat.wait_outcome("paused")
        frame.wait_for_function(f"() => Number(document.getElementById('panel').dataset.version) > {version}")
        wait_focus(frame, "a.dataset.focusKey && a.dataset.focusKey.startsWith('disable ')", "Disable after a push")
    finally:
        hana.context.close()
        pat.close()
