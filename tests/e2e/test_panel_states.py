"""The panel's states as a person meets them: loading without a flash of the wrong theme or of a
made-up "nothing is sharing", Share disabled with the reason when sharing cannot start, a pending request the
participant cancels, and pending requests withdrawn when the host leaves or the meeting ends. Each person in their
own browser context, against daphne, a Celery worker, Redis and the simulator."""

import time

import pytest

from tests.e2e.panel_support import Person
from zoomapp import texts

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

# Runs in every frame from its first script: what the panel painted on each frame until its first state arrived.
RECORD_LOADING = """
if (location.pathname.startsWith("/panel/")) {
  window.__painted = [];
  const sample = () => {
    const panel = document.getElementById("panel");
    if (panel && document.body) {
      const noActive = document.getElementById("no-active");
      window.__painted.push({
        background: getComputedStyle(document.body).backgroundColor,
        loaded: panel.dataset.loaded,
        spinner: Boolean(document.getElementById("loading")?.checkVisibility()),
        nothingSharing: Boolean(noActive && noActive.textContent && noActive.checkVisibility()),
      });
      if (panel.dataset.loaded === "true") return;
    }
    requestAnimationFrame(sample);
  };
  requestAnimationFrame(sample);
}
"""


def test_the_panel_loads_with_a_spinner_then_its_state_never_a_light_flash(browser, stack):
    meeting = stack.meeting(host="Hana", participants=("Pat",))
    pat = Person(browser, stack, meeting, "Pat")
    try:
        pat.context.add_init_script(RECORD_LOADING)

        def slow_context(route):  # the panel's binding answers late, as on a slow network
            time.sleep(0.8)
            route.continue_()

        pat.context.route("**/api/context", slow_context)
        pat.open_panel()
        painted = pat.frame.evaluate("window.__painted")
        loading = [frame for frame in painted if frame["loaded"] != "true"]
        assert len(loading) > 5 and all(frame["spinner"] for frame in loading)
        assert not any(frame["nothingSharing"] for frame in loading)
        assert {frame["background"] for frame in loading} == {"rgba(0, 0, 0, 0)"}  # Zoom's dark panel shows through
        assert pat.frame.evaluate("getComputedStyle(document.body).backgroundColor") == "rgb(27, 29, 33)"  # dark
        assert pat.frame.locator("#loading").is_hidden()
        assert pat.frame.locator("#panel").get_attribute("aria-busy") is None
        assert pat.frame.locator("#no-active").inner_text() == texts.LABEL_NO_ACTIVE_APPS
    finally:
        pat.close()


def test_share_is_disabled_with_the_reason_while_sharing_cannot_start(stack, people):
    meeting = stack.meeting(host="Hana", participants=("Pat",))
    hana, pat = people(meeting, "Hana", "Pat")
    share, reason = pat.frame.locator("#share-button"), pat.frame.locator("#share-reason")
    assert share.is_enabled() and reason.is_hidden()

    hana.click("#toggle-share")  # Hana turns sharing with apps off
    pat.frame.locator("#share-button:disabled").wait_for()
    assert reason.inner_text() == texts.APPS_DISABLED
    assert share.get_attribute("aria-describedby") == "share-reason"
    pat.screenshot("participant-10-share-disabled-apps-off")
    hana.click("#toggle-share")
    pat.frame.locator("#share-button:enabled").wait_for()
    assert reason.is_hidden()

    hana.page.locator("#leave").click()  # Hana steps out of the meeting
    pat.frame.locator("#share-button:disabled").wait_for()
    assert reason.inner_text() == texts.HOST_NOT_JOINED
    assert pat.frame.locator("#outcome").is_hidden()  # said once, where the button is: no refusal to repeat
    hana.page.locator("#join").click()
    pat.frame.locator("#share-button:enabled").wait_for()
    pat.click("#share-button")
    assert pat.wait_outcome("pending") == texts.REQUEST_SENT


def requests_of(meeting, name):
    from zoomapp.consent.models import ShareRequest

    return list(ShareRequest.objects.filter(share__meeting__uuid=meeting["uuid"], share__user_name=name)
                .values_list("status", "decided_by"))


def test_pat_cancels_his_pending_request_and_hanas_modal_drops_it(stack, people):
    from zoomapp.consent.models import AuditEntry

    meeting = stack.meeting(host="Hana", participants=("Pat",))
    hana, pat = people(meeting, "Hana", "Pat")
    pat.click("#share-button")
    assert pat.wait_outcome("pending") == texts.REQUEST_SENT
    hana.frame.wait_for_selector("#requests-modal[data-kind='single'][open]")
    cancel = pat.frame.locator("#cancel-button")
    assert cancel.inner_text() == texts.LABEL_CANCEL_REQUEST
    pat.screenshot("participant-11-pending-with-cancel")

    cancel.click()
    assert pat.wait_outcome("stopped") == texts.REQUEST_CANCELLED
    assert cancel.is_hidden() and pat.frame.locator("#share-button").is_enabled()  # he may ask again
    hana.frame.locator("#requests-modal").wait_for(state="hidden")
    assert hana.frame.locator("#open-requests").is_hidden()
    pat_id = stack.user_id(meeting, "Pat")
    assert requests_of(meeting, "Pat") == [("withdrawn", pat_id)]
    assert AuditEntry.objects.filter(meeting_uuid=meeting["uuid"], kind="withdraw", actor_user_id=pat_id).exists()

    pat.click("#share-button")  # and asks again: a new request reaches Hana
    assert pat.wait_outcome("pending") == texts.REQUEST_SENT
    hana.frame.wait_for_selector("#requests-modal[data-kind='single'][open]")


def test_pat_leaving_while_his_request_waits_is_never_told_he_cancelled_it(stack, people):
    """Zoom withdraws what waited for Pat when he leaves; back in the meeting, his panel says nothing he did not
    do, and he may simply ask again."""
    meeting = stack.meeting(host="Hana", participants=("Pat",))
    hana, pat = people(meeting, "Hana", "Pat")
    pat.click("#share-button")
    pat.wait_outcome("pending")
    hana.frame.wait_for_selector("#requests-modal[data-kind='single'][open]")

    pat.page.locator("#leave").click()
    hana.frame.locator("#requests-modal").wait_for(state="hidden")
    assert requests_of(meeting, "Pat") == [("withdrawn", "zoom")]
    pat.page.locator("#join").click()
    pat.open_panel()
    pat.frame.locator("#share-button:enabled").wait_for()
    assert pat.frame.locator("#outcome").get_attribute("data-status") == "stopped"
    assert pat.frame.locator("#outcome").is_hidden()
    assert texts.REQUEST_CANCELLED not in pat.frame.locator("#panel").inner_text()

    pat.click("#share-button")
    assert pat.wait_outcome("pending") == texts.REQUEST_SENT


def test_a_pending_request_is_withdrawn_when_the_host_leaves_and_pat_may_ask_when_she_is_back(stack, people):
    meeting = stack.meeting(host="Hana", participants=("Pat",))
    hana, pat = people(meeting, "Hana", "Pat")
    pat.click("#share-button")
    pat.wait_outcome("pending")

    hana.page.locator("#leave").click()
    assert pat.wait_outcome("host_not_joined") == texts.HOST_NOT_JOINED
    assert pat.frame.locator("#cancel-button").is_hidden()
    assert pat.frame.locator("#share-button").is_disabled()
    assert pat.frame.locator("#share-reason").is_hidden()  # the outcome line says it once
    assert requests_of(meeting, "Pat") == [("withdrawn", "zoom")]

    hana.page.locator("#join").click()
    assert pat.wait_outcome("host_joined") == texts.HOST_JOINED_CAN_REQUEST
    pat.frame.locator("#share-button:enabled").wait_for()


def test_a_pending_request_is_withdrawn_when_the_meeting_ends(stack, people):
    meeting = stack.meeting(host="Hana", participants=("Pat",))
    hana, pat = people(meeting, "Hana", "Pat")
    pat.click("#share-button")
    pat.wait_outcome("pending")

    hana.page.locator("#end").click()
    pat.frame.locator("#outcome", has_text=texts.MEETING_ENDED).wait_for()
    assert pat.frame.locator("#cancel-button").is_hidden()
    assert pat.frame.locator("#share-button").is_disabled()
    assert requests_of(meeting, "Pat") == [("withdrawn", "zoom")]
