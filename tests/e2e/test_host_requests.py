"""A participant's request reaches the host wherever she is in the meeting, her Notes Bot panel open or closed
(docs/REQUESTS.md): Zoom shows her the app invitation Pat's panel sends, she opens it and decides. Each person in
their own browser context, against daphne, a Celery worker, Redis and the simulator."""

import pytest

from tests.e2e.panel_support import Person
from zoomapp import texts

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def people(browser, stack):
    opened = []

    def open_for(meeting, *names):
        result = [Person(browser, stack, meeting, name) for name in names]
        opened.extend(result)
        return result

    yield open_for
    for person in opened:
        person.close()


def test_hana_with_her_panel_closed_sees_pats_request_and_approves_it(stack, people):
    meeting = stack.meeting(host="Hana", participants=("Pat",))
    stack.authorize(stack.user_id(meeting, "Hana"))
    hana, pat = people(meeting, "Hana", "Pat")
    pat.open_panel()
    assert hana.page.locator("#panel").is_hidden()  # Hana is in the meeting, no app open

    pat.click("#share-button")
    assert pat.wait_outcome("pending") == texts.REQUEST_SENT
    invitation = hana.page.locator("#invitations .invitation")
    invitation.wait_for(timeout=10000)  # how fast: bench/approval_latency.py's browser figures
    assert invitation.locator(".invitation-text").inner_text() == "Pat invited you to use Notes Bot."
    assert hana.page.locator("#panel").is_hidden()  # Zoom showed it; nothing opened behind her back

    invitation.get_by_role("button", name="Open").click()
    handle = hana.page.wait_for_selector(f"#panel-frame[data-client-id='{stack.app.client_id}']")
    hana.frame = handle.content_frame()
    hana.frame.wait_for_selector("#requests-modal[data-kind='single'][open]", timeout=15000)
    assert "Pat" in hana.frame.locator("#requests-title").inner_text()
    assert hana.page.locator("#invitations .invitation").count() == 0
    hana.frame.locator("#requests-list button", has_text=texts.LABEL_APPROVE).click()
    assert pat.wait_outcome("sharing", timeout=15000) == texts.STATUS_SHARING


def test_hana_can_ignore_the_invitation_and_the_request_still_waits_in_her_panel(stack, people):
    meeting = stack.meeting(host="Hana", participants=("Pat",))
    hana, pat = people(meeting, "Hana", "Pat")
    pat.open_panel()
    pat.click("#share-button")
    pat.wait_outcome("pending")
    invitation = hana.page.locator("#invitations .invitation")
    invitation.get_by_role("button", name="Ignore").click()
    invitation.wait_for(state="detached")

    hana.open_panel()
    hana.frame.wait_for_selector("#requests-modal[data-kind='single'][open]")
    hana.frame.locator("#requests-list button", has_text=texts.LABEL_DENY).click()
    assert pat.wait_outcome("denied") == texts.REQUEST_DENIED


def test_an_open_panel_gets_the_request_and_the_invitation_does_not_reload_it(stack, people):
    meeting = stack.meeting(host="Hana", participants=("Pat",))
    hana, pat = people(meeting, "Hana", "Pat")
    hana.open_panel()
    pat.open_panel()
    pat.click("#share-button")
    hana.frame.wait_for_selector("#requests-modal[data-kind='single'][open]")
    hana.page.evaluate("document.getElementById('panel-frame').dataset.marked = 'before'")
    hana.page.locator("#invitations .invitation").get_by_role("button", name="Open").click()
    hana.page.locator("#invitations .invitation").wait_for(state="detached")
    assert hana.page.locator("#panel-frame").get_attribute("data-marked") == "before"  # the same panel, not reloaded
    assert hana.frame.locator("#requests-modal[open]").count() == 1
