"""Our panel in the simulated Zoom window, each person in their own browser context, against daphne + a real
Celery worker + Redis + the simulator: every participant outcome of PRODUCT.md reached through the flow that
causes it, the host's single and multiple request modals, and screenshots of each state."""

import time

import pytest

from tests.e2e.panel_support import Person, stack, wait_until  # noqa: F401 - fixtures
from tests.e2e.zoom_window_fixtures import browser  # noqa: F401 - fixture
from zoomapp import texts

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def people(browser, stack):  # noqa: F811
    opened = []

    def open_for(meeting, *names):
        result = [Person(browser, stack, meeting, name).open_panel() for name in names]
        opened.extend(result)
        return result

    yield open_for
    for person in opened:
        person.close()


def test_approved_request_shows_sharing_within_a_second_then_transcript(stack, people):  # noqa: F811
    meeting = stack.meeting()
    stack.authorize(stack.user_id(meeting, "Ana"))
    ana, ben = people(meeting, "Ana", "Ben")
    assert ana.frame.locator("#host").is_visible() and not ben.frame.locator("#host").is_visible()
    ben.screenshot("participant-1-idle")
    ana.screenshot("host-1-idle")

    ben.click("#share-button")
    assert ben.wait_outcome("pending") == texts.REQUEST_SENT
    ana.frame.wait_for_selector("#requests-modal[data-kind='single'][open]")
    assert "Ben" in ana.frame.locator("#requests-title").inner_text()
    ben.screenshot("participant-2-request-sent")
    ana.screenshot("host-2-single-request-modal")

    clicked = time.monotonic()
    ana.frame.locator("#requests-list button", has_text=texts.LABEL_APPROVE).click()
    assert ben.wait_outcome("sharing", timeout=5000) == texts.STATUS_SHARING
    elapsed = time.monotonic() - clicked
    assert elapsed < 1.0, f"approval took {elapsed:.3f} s to reach the participant's panel"

    ben.frame.locator("#disclosure").wait_for()
    assert ben.frame.locator("#disclosure").inner_text() == texts.DISCLOSURE
    ana.frame.locator("#notices li[data-kind='host']").wait_for()
    assert texts.AAN_STARTED_BY_HOST in ana.frame.locator("#notices").inner_text()
    row = ana.frame.locator("#active-apps li", has_text="Notes Bot for Ben")
    assert row.locator(".badge").inner_text() == texts.STATUS_SHARING

    stack.sim_call("POST", f"/_sim/meetings/{meeting['id']}/speak", {"key": ana.key, "text": "Welcome to the demo"})
    ben.frame.locator("#transcript li", has_text="Welcome to the demo").wait_for(timeout=15000)
    ben.screenshot("participant-3-sharing-with-transcript")
    ana.screenshot("host-3-sharing-aan")
