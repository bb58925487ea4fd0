"""The host's toggles are Zoom's (docs/CONSENT.md rule 10): our panel may add restrictions, never remove Zoom's.

Hana turns "Require host approval" off in our panel while Zoom's own setting still requires it. Pat's request must
not start with Hana's token behind her back: Pat's panel asks Zoom, Zoom shows Hana its own request modal, and
what she decides there is what Pat reads, with its real cause. Our panel's toggle then shows what Zoom said.
"""

import pytest

from tests.processes import wait_for
from zoomapp import texts

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_approval_off_in_our_panel_still_asks_the_host_when_zoom_requires_it(stack, people):
    meeting = stack.meeting(participants=("Pat", "Quinn"))  # Zoom's settings: approval required
    stack.authorize(stack.user_id(meeting, "Ana"))  # the host authorized the app
    ana, pat, quinn = people(meeting, "Ana", "Pat", "Quinn")
    ana.frame.locator("#toggle-approval").uncheck()
    wait_for(lambda: not ana.frame.locator("#toggle-approval").is_checked(), timeout=10)

    pat.click("#share-button")
    zoom_modal = ana.page.locator("#request-single:not([hidden])")
    zoom_modal.wait_for(timeout=10000)  # Zoom asks Ana: our panel did not start it with her token
    assert pat.wait_outcome("pending", timeout=10000) == texts.REQUEST_SENT
    # Zoom's answer showed that Zoom requires approval: our toggle shows Zoom's setting again.
    wait_for(lambda: ana.frame.locator("#toggle-approval").is_checked(), timeout=10)
    ana.screenshot("zoom-settings-1-zoom-asks-the-host")
    ana.page.click("#request-single-deny")
    assert pat.wait_outcome("denied", timeout=10000) == texts.REQUEST_DENIED  # not "Host cannot approve…"
    assert not ana.frame.locator("#active-apps li").count()

    ana.frame.locator("#toggle-approval").uncheck()
    quinn.click("#share-button")
    zoom_modal.wait_for(timeout=10000)
    ana.page.click("#request-single-approve")
    assert quinn.wait_outcome("sharing", timeout=15000) == texts.STATUS_SHARING
    ana.frame.locator("#active-apps li[data-status='sharing']", has_text="Notes Bot for Quinn").wait_for()


def test_an_app_only_starting_is_not_listed_as_sharing(stack, people):
    """Zoom refuses the worker's first signaling handshakes for the approved start: the app is starting, and
    nobody's panel may list it among the apps actively sharing until data flows."""
    meeting = stack.meeting(participants=("Ben",))
    stack.authorize(stack.user_id(meeting, "Ana"))
    stack.sim_call("POST", "/_sim/faults", {"kind": "refuse_handshake", "stage": "signaling", "count": 2})
    ana, ben = people(meeting, "Ana", "Ben")
    ben.click("#share-button")
    ana.frame.locator("#requests-list button", has_text=texts.LABEL_APPROVE).click()
    assert ben.wait_outcome("starting", timeout=10000) == texts.STATUS_STARTING
    wait_for(lambda: ana.frame.locator("#no-active").is_visible(), timeout=5)
    for person in (ana, ben):
        assert person.frame.locator("#active-apps li").count() == 0
    ana.frame.locator("#active-apps li[data-status='sharing']", has_text="Notes Bot for Ben").wait_for(timeout=20000)
