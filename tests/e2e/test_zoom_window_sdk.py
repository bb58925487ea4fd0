"""Zoom's own SDK (`@zoom/appssdk` 0.16.41, unchanged) in the simulated window's Apps panel, calling every API the
window answers: results, events and errors as the reference documents them. The SDK code is the judge of the
bridge: a wrong envelope, shape or error field would surface here as a wrong value or a timeout."""

import base64
import hashlib
import json
from urllib.parse import quote

import pytest
import requests

from tests.e2e.zoom_window_fixtures import Window, decrypt_app_context, register, sdk, sdk_events
from tests.processes import wait_for

pytestmark = pytest.mark.e2e

CAPABILITIES = [
    "getSupportedJsApis", "getRunningContext", "getUserContext", "getMeetingContext", "getMeetingUUID",
    "getMeetingParticipants", "getAppContext", "authorize", "onAuthorized", "promptAuthorize", "startRTMS",
    "stopRTMS", "pauseRTMS", "resumeRTMS", "getRTMSStatus", "onRTMSStatusChange", "onMyUserContextChange",
    "onParticipantChange", "onMeeting", "sendMessage", "onMessage", "showNotification", "expandApp", "closeApp",
]
EVENTS = ["onAuthorized", "onRTMSStatusChange", "onMyUserContextChange", "onParticipantChange", "onMeeting",
          "onMessage"]


@pytest.fixture(scope="module")
def probe(zoomsim, app_server):
    return register(zoomsim, app_server.add("SDK Probe"))


@pytest.fixture(scope="module")
def meeting(zoomsim, probe):
    body = {"topic": "SDK bridge", "host": {"name": "Ana Host"}, "start": True,
            "participants": [{"name": "Ben Member"}, {"name": "Gus Guest", "guest": True}],
            "settings": {"require_host_approval": True}}
    return zoomsim.post("/_sim/meetings", json=body).json()


@pytest.fixture(scope="module")
def panels(browser, zoomsim, meeting, probe):
    """Host, participant and guest windows, each with the probe app open and configured."""
    opened = {}
    for name in ("Ana Host", "Ben Member", "Gus Guest"):
        window = Window(browser, zoomsim, meeting, name)
        frame = window.open_app(probe)
        opened[name] = (window, frame)
    yield opened
    for window, _ in opened.values():
        window.close()


def configure(frame, capabilities=CAPABILITIES, extra=()):
    result = sdk(frame, f"sdk.config({{capabilities: {json.dumps(list(capabilities) + list(extra))}}})")
    assert result["ok"], result
    frame.evaluate(f"listen({json.dumps(EVENTS)})")
    return result["value"]


def error_of(result):
    assert not result["ok"], result
    return result["code"], result["message"]


def test_config_gate_capabilities_and_context(panels, meeting, probe):
    window, frame = panels["Ben Member"]
    assert error_of(sdk(frame, "sdk.getUserContext()"))[1] == "must call zoomSdk.config before using other API methods"

    config = configure(frame, extra=["setVirtualBackground", "notAnApi"])
    assert config["runningContext"] == "inMeeting"
    assert config["clientVersion"] == "6.6.0"
    assert config["auth"] == {"status": "unauthorized", "upgradable": True}
    assert {"setVirtualBackground", "notAnApi", "getMeetingContext", "getMeetingParticipants"} <= set(
        config["unsupportedApis"])

    assert sdk(frame, "sdk.getRunningContext()")["value"] == {"context": "inMeeting"}
    user = sdk(frame, "sdk.getUserContext()")["value"]
    assert (user["status"], user["screenName"], user["role"]) == ("authenticated", "Ben Member", "attendee")
    assert len(user["participantUUID"]) == 36
    assert sdk(frame, "sdk.getMeetingUUID()")["value"] == {"meetingUUID": meeting["uuid"]}
    supported = sdk(frame, "sdk.getSupportedJsApis()")["value"]["supportedApis"]
    assert "startRTMS" in supported and "onRTMSStatusChange" in supported

    # Host-only calls fail for a participant as Zoom's do; so does anything not granted by config.
    for call in ("sdk.getMeetingContext()", "sdk.getMeetingParticipants()"):
        assert error_of(sdk(frame, call)) == (
            "80003", "No Permission for this API. [code:80003, reason:require_meeting_owner_role]")
    assert error_of(sdk(frame, "sdk.setVirtualBackground({blur: true})")) == (
        "80004", "No Permission for this API. [code:80004, reason:app_not_support]")
    assert error_of(sdk(frame, "sdk.notAnApi()"))[0] == "80004"  # unknown names reach the client and fail


def test_host_context_and_participants(panels, meeting):
    _, frame = panels["Ana Host"]
    configure(frame)
    assert sdk(frame, "sdk.getMeetingContext()")["value"] == {"meetingTopic": "SDK bridge",
                                                             "meetingID": str(meeting["id"])}
    people = sdk(frame, "sdk.getMeetingParticipants()")["value"]["participants"]
    assert [(p["screenName"], p["role"]) for p in people] == [
        ("Ana Host", "host"), ("Ben Member", "attendee"), ("Gus Guest", "attendee")]
    assert sdk(frame, "sdk.getUserContext()")["value"]["role"] == "host"


def test_app_context_decrypts_with_the_documented_scheme(panels, meeting, probe):
    ben_frame = panels["Ben Member"][1]
    configure(ben_frame)
    context = sdk(ben_frame, "sdk.getAppContext()")["value"]["context"]
    decrypted = decrypt_app_context(context, probe.client_secret)
    ben = next(p for p in meeting["participants"] if p["name"] == "Ben Member")
    assert decrypted["typ"] == "meeting"
    assert decrypted["uid"] == ben["user_id"]
    assert decrypted["mid"] == meeting["uuid"]
    assert decrypted["aud"] == probe.client_id
    assert decrypted["iss"] == "marketplace.zoom.us"
    assert decrypted["attendrole"] == "participant"
    assert decrypted["exp"] - decrypted["ts"] == 120_000
    assert decrypted["theme"] == "dark"

    guest_frame = panels["Gus Guest"][1]
    configure(guest_frame)
    guest = decrypt_app_context(sdk(guest_frame, "sdk.getAppContext()")["value"]["context"], probe.client_secret)
    assert "uid" not in guest and guest["mid"] == meeting["uuid"]

    # The Home URL request the client makes itself carries the same kind of value as a header.
    header = [r["X-Zoom-App-Context"] for r in probe.home_requests if "X-Zoom-App-Context" in r][-1]
    assert decrypt_app_context(header, probe.client_secret)["aud"] == probe.client_id
    # Home URL template parameters are filled in (docs/ZOOM.md §10.5).
    assert f"ctx=inMeeting&mid={quote(meeting['uuid'], safe='')}" in ben_frame.url


def test_in_client_oauth_with_pkce(zoomsim, panels, probe):
    _, frame = panels["Ben Member"]
    configure(frame)
    assert error_of(sdk(frame, "sdk.authorize({})"))[1] == "codeChallenge is required for zoomSdk.authorize"
    verifier = "v" * 64
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    result = sdk(frame, f"sdk.authorize({{codeChallenge: '{challenge}', state: 'st-1'}})")
    assert result["value"] == {"message": "success"}
    event = wait_for(lambda: sdk_events(frame, "onAuthorized"), what="onAuthorized")[-1]
    assert event["result"] is True and event["state"] == "st-1" and event["redirectUri"] == probe.registration()[
        "redirect_url"]
    token = requests.post(f"{zoomsim.http_url}/oauth/token", auth=(probe.client_id, probe.client_secret), data={
        "grant_type": "authorization_code", "code": event["code"], "redirect_uri": event["redirectUri"],
        "code_verifier": verifier}, timeout=10)
    assert token.status_code == 200, token.text
    assert configure(frame)["auth"]["status"] == "authorized"
    assert sdk(frame, "sdk.getUserContext()")["value"]["status"] == "authorized"

    assert sdk(frame, "sdk.promptAuthorize()")["value"] == {"message": "success"}
    assert wait_for(lambda: sdk_events(frame, "onMyUserContextChange"), what="onMyUserContextChange")


def test_rtms_calls_and_status_events(panels):
    _, host = panels["Ana Host"]
    configure(host)
    assert sdk(host, "sdk.startRTMS()")["value"] == {"message": "Success"}  # the host needs no approval
    wait_for(lambda: [e["status"] for e in sdk_events(host, "onRTMSStatusChange")][-2:] == ["connecting", "started"],
             what="connecting then started")
    panels["Ben Member"][0].page.locator(".notice", has_text="RTMS started by host").wait_for()
    status = sdk(host, "sdk.getRTMSStatus()")["value"]["rtmsStatus"]
    assert [(s["status"], s["displayName"]) for s in status] == [("started", "Ana Host")]
    assert len(status[0]["rtmsSessionId"]) == 32

    assert sdk(host, "sdk.pauseRTMS()")["value"] == {"message": "Success"}
    assert sdk(host, "sdk.getRTMSStatus()")["value"]["rtmsStatus"][0]["status"] == "paused"
    assert sdk(host, "sdk.resumeRTMS()")["value"] == {"message": "Success"}
    assert sdk(host, "sdk.stopRTMS()")["value"] == {"message": "Success"}
    wait_for(lambda: [e["status"] for e in sdk_events(host, "onRTMSStatusChange")][-3:] == [
        "paused", "resumed", "stopped"], what="paused, resumed, stopped")
    assert sdk(host, "sdk.stopRTMS()")["value"] == {"message": "Failure"}

    _, guest = panels["Gus Guest"]
    configure(guest)
    assert error_of(sdk(guest, "sdk.startRTMS()")) == (
        "80005", "No Permission for this API. [code:80005, reason:guest_not_support]")


def test_messages_notifications_and_panel_controls(panels):
    ben_window, ben = panels["Ben Member"]
    _, host = panels["Ana Host"]
    configure(ben)
    configure(host)
    assert sdk(ben, "sdk.sendMessage({payload: {hello: 'from Ben'}})")["value"] == {"message": "success"}
    received = wait_for(lambda: sdk_events(host, "onMessage"), what="onMessage on the host's panel")[-1]
    assert received["payload"] == {"hello": "from Ben"}
    assert not sdk_events(ben, "onMessage")  # a broadcast to the other instances only
    assert error_of(sdk(ben, "sdk.sendMessage({payload: {big: 'x'.repeat(2000)}})")) == (
        "10229", "Message payload too large - exceeds 1Kb")

    result = sdk(ben, "sdk.showNotification({type: 'info', title: 'Probe', message: 'Hello from the panel'})")
    assert result["value"] == {"message": "success"}
    ben_window.page.get_by_text("Hello from the panel").wait_for()

    assert sdk(ben, "sdk.expandApp({action: 'expand'})")["value"] == {"message": "success"}
    ben_window.page.wait_for_function("() => document.body.dataset.panel === 'expanded'")
    assert sdk(ben, "sdk.expandApp({action: 'collapse'})")["value"] == {"message": "success"}
    ben_window.page.wait_for_function("() => document.body.dataset.panel === 'open'")

    # Not granted by config: fails even though the client supports it.
    configure(ben, capabilities=["getUserContext"])
    assert error_of(sdk(ben, "sdk.showNotification({type: 'info', title: 't', message: 'm'})"))[0] == "80004"


def test_participant_changes_meeting_end_and_close(zoomsim, panels, meeting):
    _, host = panels["Ana Host"]
    ben_window, ben = panels["Ben Member"]
    configure(host)
    configure(ben)
    zoomsim.post(f"/_sim/meetings/{meeting['id']}/join", json={"name": "Dee Late"})
    change = wait_for(lambda: sdk_events(host, "onParticipantChange"), what="onParticipantChange")[-1]
    assert [(p["status"], p["screenName"], p["role"]) for p in change["participants"]] == [
        ("join", "Dee Late", "attendee")]
    assert not sdk_events(ben, "onParticipantChange")  # Host/Co-Host only

    zoomsim.post(f"/_sim/meetings/{meeting['id']}/role", json={"key": ben_window.person["key"], "role": "co-host"})
    # (promptAuthorize already caused one such event: wait for the one about the new role)
    mine = wait_for(lambda: [e for e in sdk_events(ben, "onMyUserContextChange") if e["role"] == "coHost"],
                    what="onMyUserContextChange to coHost")[-1]
    assert mine["screenName"] == "Ben Member"
    assert sdk(ben, "sdk.getUserContext()")["value"]["role"] == "coHost"

    assert sdk(ben, "sdk.closeApp()")["value"] == {"message": "success"}
    ben_window.page.locator("#panel").wait_for(state="hidden")

    host_window = panels["Ana Host"][0]
    if host_window.page.locator("#disclosure").is_visible():
        host_window.page.click("#disclosure-ok")
    host_window.page.click("#end")
    assert wait_for(lambda: sdk_events(host, "onMeeting"), what="onMeeting")[-1]["action"] == "ended"
