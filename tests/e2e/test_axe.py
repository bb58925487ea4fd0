"""axe-core on every state of the panel a person meets (participant, pending, host with the single and the multiple
request modal, sharing, denied, Share disabled with its reason, guest) and on the simulated Zoom window around it
(gallery, app invitation, Zoom's single and multiple request modals, disclosure, the notifier open): 0 violations
of WCAG 2.1 A/AA and axe's best practices (tests/e2e/axe_support.py)."""

import pytest

from tests.e2e.axe_support import axe_script, violations  # noqa: F401 - fixture
from tests.e2e.panel_support import Person, stack  # noqa: F401 - fixtures
from tests.e2e.zoom_window_fixtures import browser  # noqa: F401 - fixture
from zoomapp import texts

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def rita_window(browser, stack, meeting):  # noqa: F811
    """Rita's window as is (a Person presses OK on Zoom's disclosure before each action)."""
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    page.goto(f"{stack.sim.http_url}/meetings/{meeting['id']}/as/{stack.key(meeting, 'Rita')}")
    page.locator("#disclosure:not([hidden])").wait_for()
    return type("Window", (), {"page": page})


class Checks:
    """Every page checked, with what axe found on it; the test fails once, listing all of them."""

    def __init__(self, axe_script):  # noqa: F811
        self.axe_script = axe_script
        self.found = {}
        self.checked = []

    def panel(self, person, where):
        self.checked.append(f"panel: {where}")
        self.found[f"panel: {where}"] = violations(person.frame, self.axe_script)

    def window(self, person, where):
        self.checked.append(f"window: {where}")
        self.found[f"window: {where}"] = violations(person.page, self.axe_script)

    def report(self):
        failing = {where: found for where, found in self.found.items() if found}
        lines = [f"{where}: {v['id']} ({v['impact']}) {v['help']}: " + "; ".join(n["target"] for n in v["nodes"])
                 for where, found in failing.items() for v in found]
        return "\n".join(lines)


def test_every_panel_state_and_the_window_around_it_have_no_axe_violations(browser, stack, axe_script):  # noqa: F811
    checks = Checks(axe_script)
    meeting = stack.meeting(host="Hana", participants=("Pat", "Quinn", "Rita"))
    stack.authorize(stack.user_id(meeting, "Hana"))
    guest = stack.sim_call("POST", f"/_sim/meetings/{meeting['id']}/join", {"name": "Gus", "guest": True})
    meeting["participants"].append(guest)
    people = [Person(browser, stack, meeting, name) for name in ("Hana", "Pat", "Quinn", "Gus")]
    hana, pat, quinn, gus = people
    try:
        checks.window(hana, "gallery, no app open")
        hana.page.click("#apps-button")
        checks.window(hana, "Apps menu open")
        hana.page.keyboard.press("Escape")
        for person in people:
            person.open_panel()
        checks.panel(pat, "participant")
        checks.panel(hana, "host")
        checks.panel(gus, "guest")
        checks.window(pat, "Apps panel open")

        pat.click("#share-button")
        pat.wait_outcome("pending")
        hana.frame.wait_for_selector("#requests-modal[data-kind='single'][open]")
        hana.page.locator("#invitations .invitation").wait_for()
        checks.panel(pat, "participant, request pending (cancel)")
        checks.panel(hana, "host, single request modal")
        checks.window(hana, "app invitation")

        quinn.click("#share-button")
        quinn.wait_outcome("pending")
        hana.frame.wait_for_selector("#requests-modal[data-kind='multiple'][open]")
        checks.panel(hana, "host, multiple requests modal")

        hana.frame.locator("#requests-list li", has_text="Quinn").get_by_role("button", name=texts.LABEL_DENY).click()
        quinn.wait_outcome("denied")
        checks.panel(quinn, "participant, denied")
        hana.frame.locator("#requests-list button", has_text=texts.LABEL_APPROVE).click()
        pat.wait_outcome("sharing", timeout=15000)
        pat.frame.locator("#disclosure").wait_for()
        hana.frame.locator("#active-apps li").wait_for()
        checks.window(rita_window(browser, stack, meeting), "Zoom's disclosure")
        checks.panel(pat, "participant, sharing")
        checks.panel(hana, "host, an app sharing, activity notices")
        hana.dismiss_zoom_dialogs()
        hana.page.click("#aan .aan-chip")
        checks.window(hana, "notifier open, notices")

        stack.sim_call("POST", f"/_sim/meetings/{meeting['id']}/requests",  # Zoom's own modals
                       {"client_id": stack.app.client_id, "key": stack.key(meeting, "Quinn")})
        hana.page.locator("#request-single:not([hidden])").wait_for()
        checks.window(hana, "Zoom's single-app request modal")
        stack.sim_call("POST", f"/_sim/meetings/{meeting['id']}/requests",
                       {"client_id": stack.app.client_id, "key": stack.key(meeting, "Rita")})
        hana.page.locator("#request-multiple:not([hidden])").wait_for()
        checks.window(hana, "Zoom's multiple-apps request modal")
        hana.page.locator("#request-deny-all").click()

        hana.click("#toggle-share")
        quinn.frame.locator("#share-button:disabled").wait_for()
        checks.panel(quinn, "participant, Share disabled with its reason")
    finally:
        for person in people:
            person.close()
    print(f"\naxe-core checked {len(checks.checked)} pages: " + "; ".join(checks.checked))
    assert not checks.report(), "axe-core found violations:\n" + checks.report()
