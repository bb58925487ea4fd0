"""Our panel in the simulated Zoom window, each person in their own browser context, against daphne + a real
Celery worker + Redis + the simulator: every participant outcome of docs/CONSENT.md reached through the flow that
causes it, the host's single and multiple request modals, and screenshots of each state."""

import pytest

from tests.e2e.panel_support import Person
from tests.processes import wait_for
from zoomapp import texts

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_approved_request_shows_sharing_then_transcript(stack, people):
    """How fast "Sharing" appears after the click is measured by bench/approval_latency.py --browser-approvals,
    not here: a test asserts what the participant and the host see."""
    meeting = stack.meeting()
    stack.authorize(stack.user_id(meeting, "Ana"))
    ana, ben, cleo = people(meeting, "Ana", "Ben", "Cleo")
    request(cleo)
    cleo.wait_outcome("pending")
    ana.frame.locator("#requests-list button", has_text=texts.LABEL_APPROVE).click()
    cleo.wait_outcome("sharing", timeout=15000)
    ana.frame.locator("#requests-modal").wait_for(state="hidden")
    assert ana.frame.locator("#host").is_visible() and not ben.frame.locator("#host").is_visible()
    ben.screenshot("participant-1-idle")
    ana.screenshot("host-1-idle")

    ben.click("#share-button")
    assert ben.wait_outcome("pending") == texts.REQUEST_SENT
    ana.frame.wait_for_selector("#requests-modal[data-kind='single'][open]")
    assert "Ben" in ana.frame.locator("#requests-title").inner_text()
    ben.screenshot("participant-2-request-sent")
    ana.screenshot("host-2-single-request-modal")

    ana.frame.locator("#requests-list button", has_text=texts.LABEL_APPROVE).click()
    assert ben.wait_outcome("sharing", timeout=15000) == texts.STATUS_SHARING

    ben.frame.locator("#disclosure").wait_for()
    assert ben.frame.locator("#disclosure").inner_text() == texts.DISCLOSURE
    ana.frame.locator("#notices li[data-kind='host']").nth(1).wait_for()
    assert texts.AAN_STARTED_BY_HOST in ana.frame.locator("#notices").inner_text()
    row = ana.frame.locator("#active-apps li", has_text="Notes Bot for Ben")
    assert row.locator(".badge").inner_text() == texts.STATUS_SHARING
    assert ana.frame.locator("#notices li").count() == 2  # one AAN per app user

    stack.sim_call("POST", f"/_sim/meetings/{meeting['id']}/speak", {"key": ana.key, "text": "Welcome to the demo"})
    ben.frame.locator("#transcript li", has_text="Welcome to the demo").wait_for(timeout=15000)
    ben.screenshot("participant-3-sharing-with-transcript")
    ana.screenshot("host-3-sharing-aan")


def request(person):
    person.click("#share-button")


def test_multiple_requests_modal_deny_one_approve_all(stack, people):
    meeting = stack.meeting(participants=("Ben", "Cleo", "Dan"))
    stack.authorize(stack.user_id(meeting, "Ana"))
    ana, ben, cleo, dan = people(meeting, "Ana", "Ben", "Cleo", "Dan")
    for person in (ben, cleo, dan):
        request(person)
        person.wait_outcome("pending")
    modal = ana.frame.locator("#requests-modal[data-kind='multiple'][open]")
    modal.wait_for()
    ana.frame.locator("#requests-list li").nth(2).wait_for()
    assert ana.frame.locator("#requests-title").inner_text() == texts.LABEL_MULTIPLE_REQUESTS.format(count=3)
    ana.screenshot("host-4-multiple-requests-modal")

    ana.frame.locator("#requests-list li", has_text="Notes Bot for Dan").get_by_role(
        "button", name=texts.LABEL_DENY).click()
    assert dan.wait_outcome("denied") == texts.REQUEST_DENIED
    dan.screenshot("participant-4-denied")
    ana.frame.wait_for_function("() => document.querySelectorAll('#requests-list li').length === 2")
    ana.frame.locator("#approve-all").click()
    assert ben.wait_outcome("sharing") == texts.STATUS_SHARING
    assert cleo.wait_outcome("sharing") == texts.STATUS_SHARING
    ana.frame.locator("#requests-modal").wait_for(state="hidden")
    assert ana.frame.locator("#active-apps li").count() == 2

    # Deny all: two new requests, one decision.
    for person in (dan,):
        request(person)
    other = stack.sim_call("POST", f"/_sim/meetings/{meeting['id']}/join",
                           {"name": "Eve", "user_id": f"eve{meeting['id']}", "account_id": "acctE2E"})
    eve = Person(ana.page.context.browser, stack, stack.sim_call("GET", f"/_sim/meetings/{meeting['id']}"),
                 other["name"]).open_panel()
    try:
        request(eve)
        ana.frame.locator("#requests-modal[data-kind='multiple'][open]").wait_for()
        ana.frame.locator("#deny-all").click()
        assert dan.wait_outcome("denied") == texts.REQUEST_DENIED
        assert eve.wait_outcome("denied") == texts.REQUEST_DENIED
    finally:
        eve.close()


def test_host_controls_pause_resume_stop_disable_and_turning_sharing_off(stack, people):
    meeting = stack.meeting(participants=("Ben", "Cleo", "Dan"))
    stack.authorize(stack.user_id(meeting, "Ana"))
    ana, ben, cleo, dan = people(meeting, "Ana", "Ben", "Cleo", "Dan")

    # Approval not required: a request starts at once, with no modal. Zoom's own setting decides (docs/CONSENT.md
    # rule 10), so Ana turns it off in Zoom's Host tools, and in the panel, which may only add to Zoom's.
    ana.page.click("#host-tools-button")
    ana.page.click("#require-approval")
    ana.page.keyboard.press("Escape")
    ana.click("#toggle-approval")
    ana.frame.wait_for_function("() => !document.getElementById('toggle-approval').checked")
    request(ben)
    assert ben.wait_outcome("sharing") == texts.STATUS_SHARING
    assert not ana.frame.locator("#requests-modal").is_visible()

    ben.click("#pause-button")
    assert ben.wait_outcome("paused") == texts.STATUS_PAUSED
    ana.frame.locator("#active-apps li .badge", has_text=texts.STATUS_PAUSED).wait_for()
    ben.screenshot("participant-5-paused")
    ana.screenshot("host-5-app-paused")
    ben.click("#resume-button")
    assert ben.wait_outcome("sharing") == texts.STATUS_SHARING

    request(cleo)
    cleo.wait_outcome("sharing")
    cleo.click("#stop-button")
    assert cleo.wait_outcome("stopped") == texts.STOPPED

    ana.frame.locator("#active-apps li", has_text="Notes Bot for Ben").get_by_role(
        "button", name=texts.LABEL_DISABLE).click()
    assert ben.wait_outcome("disabled_by_host") == texts.HOST_DISABLED_APP
    ben.screenshot("participant-6-disabled-by-host")
    ben.frame.locator("#disclosure").wait_for(state="hidden")

    request(cleo)
    cleo.wait_outcome("sharing")
    ana.click("#toggle-share")
    assert cleo.wait_outcome("apps_disabled") == texts.APPS_DISABLED
    assert share_refused_before_asking(dan) == texts.APPS_DISABLED
    cleo.screenshot("participant-7-apps-disabled")
    ana.screenshot("host-6-sharing-off")


def test_host_not_joined_then_host_cannot_approve(stack, people):
    from zoomapp.consent.models import SharingPolicy

    meeting = stack.meeting(participants=("Ben", "Cleo"))
    ben, = people(meeting, "Ben")
    stack.sim_call("POST", f"/_sim/meetings/{meeting['id']}/leave", {"key": stack.key(meeting, "Ana")})
    ben.frame.wait_for_function("() => document.getElementById('panel').dataset.version > '0'")
    wait_for(lambda: _host_absent(meeting), what="the host to have left")
    assert share_refused_before_asking(ben) == texts.HOST_NOT_JOINED
    ben.screenshot("participant-8-host-not-joined")
    stack.sim_call("POST", f"/_sim/meetings/{meeting['id']}/join", {"key": stack.key(meeting, "Ana")})
    ben.frame.locator("#share-button:enabled").wait_for()
    assert ben.frame.locator("#share-reason").is_hidden()

    # Rule 1: the host's effective admin policy (user level) disables sharing with apps.
    host_id = stack.user_id(meeting, "Ana")
    policy = SharingPolicy.objects.create(account_id="acctE2E", level="user", target_id=host_id,
                                          share_with_apps=False)
    services_meeting_account(meeting)
    request(ben)
    assert ben.wait_outcome("host_cannot_approve") == texts.HOST_CANNOT_APPROVE
    ben.screenshot("participant-9-host-cannot-approve")
    policy.delete()


def share_refused_before_asking(person):
    """The Share button is disabled and says why, before the person tries."""
    person.frame.locator("#share-button:disabled").wait_for()
    person.frame.locator("#share-reason:not([hidden])").wait_for()
    assert person.frame.locator("#share-button").get_attribute("aria-describedby") == "share-reason"
    return person.frame.locator("#share-reason").inner_text()


def _host_absent(meeting):
    from zoomapp.consent.models import Meeting

    return Meeting.objects.filter(uuid=meeting["uuid"], host_present=False).exists()


def services_meeting_account(meeting):
    """The meeting's account comes from Zoom's meeting webhooks; make sure it arrived before rule 1 is asked."""
    from zoomapp.consent.models import Meeting

    wait_for(lambda: Meeting.objects.filter(uuid=meeting["uuid"]).exclude(account_id="").exists(),
             what="meeting.started to be received")


def test_in_client_fallback_runs_zooms_host_approval(stack, people):
    """The host never authorized our app: her modal says so before she approves; approving anyway makes Ben's
    panel call zoomSdk.startRTMS(), and Zoom's own host modal decides. Denied there → "…denied by host" (Zoom's
    rtms.request_status names the cause); approved → Sharing."""
    meeting = stack.meeting(participants=("Ben", "Cleo"))
    ana, ben, cleo = people(meeting, "Ana", "Ben", "Cleo")
    ana.frame.locator("#authorize").wait_for()
    assert ana.frame.locator("#authorize-text").inner_text() == texts.AUTHORIZE_PROMPT.format(app="Notes Bot")
    ana.screenshot("host-7-authorize-prompt")

    request(ben)
    ben.wait_outcome("pending")
    ana.frame.locator("#requests-authorize").wait_for()
    assert ana.frame.locator("#requests-authorize-text").inner_text() == texts.APPROVE_NEEDS_AUTHORIZATION.format(
        app="Notes Bot")
    ana.frame.locator("#requests-list button", has_text=texts.LABEL_APPROVE).click()
    zoom_modal = ana.page.locator("#request-single:not([hidden])")
    zoom_modal.wait_for(timeout=10000)
    ana.page.click("#request-single-deny")
    assert ben.wait_outcome("denied") == texts.REQUEST_DENIED

    request(cleo)
    cleo.wait_outcome("pending")
    ana.frame.locator("#requests-list button", has_text=texts.LABEL_APPROVE).click()
    zoom_modal.wait_for(timeout=10000)
    ana.page.click("#request-single-approve")
    assert cleo.wait_outcome("sharing", timeout=15000) == texts.STATUS_SHARING

    # In-client OAuth with PKCE from the host's panel: the prompt goes away.
    ana.click("#authorize-button")
    ana.frame.locator("#authorize").wait_for(state="hidden")


def test_zoom_rest_answers_become_outcomes(stack, people):
    """The host authorized the app, but Zoom refuses the REST start: 2310 names no cause, so the requester's
    panel asks Zoom itself and Zoom's answer names it (here Zoom's sharing is off: "Apps sharing … disabled", and
    the host's toggle follows Zoom's); 2308 → the in-client start runs Zoom's own host approval."""
    meeting = stack.meeting(participants=("Ben", "Cleo"))
    stack.authorize(stack.user_id(meeting, "Ana"))
    ana, ben, cleo = people(meeting, "Ana", "Ben", "Cleo")
    rest_path = f"/live_meetings/{meeting['id']}/rtms_app/status"

    request(ben)
    ben.wait_outcome("pending")
    # Zoom's own "share with apps" goes off in Zoom's host tools; our panel cannot see it yet.
    stack.sim_call("POST", f"/_sim/meetings/{meeting['id']}/settings", {"share_with_apps": False})
    assert ana.frame.locator("#toggle-share").is_checked()
    ana.frame.locator("#requests-list button", has_text=texts.LABEL_APPROVE).click()  # REST: 2310
    assert ben.wait_outcome("apps_disabled", timeout=15000) == texts.APPS_DISABLED
    wait_for(lambda: not ana.frame.locator("#toggle-share").is_checked(), timeout=10)
    stack.sim_call("POST", f"/_sim/meetings/{meeting['id']}/settings", {"share_with_apps": True})
    ana.frame.locator("#toggle-share").check()

    stack.sim_call("POST", "/_sim/faults", {"kind": "rest_error", "method": "PATCH", "path_contains": rest_path,
                                            "status": 403, "code": 2308, "message": "Not allowed to start RTMS app"})
    request(cleo)
    cleo.wait_outcome("pending")
    ana.frame.locator("#requests-list button", has_text=texts.LABEL_APPROVE).click()
    ana.page.locator("#request-single:not([hidden])").wait_for(timeout=10000)  # Zoom's own modal
    ana.page.click("#request-single-approve")
    assert cleo.wait_outcome("sharing", timeout=15000) == texts.STATUS_SHARING

    # The meeting ends: the stream stops with MEETING_ENDED and every panel says so.
    stack.sim_call("POST", f"/_sim/meetings/{meeting['id']}/end")
    cleo.wait_outcome("stopped", timeout=15000)
    cleo.frame.locator("#outcome", has_text=texts.MEETING_ENDED).wait_for()
    assert cleo.frame.locator("#share-button").is_disabled()
