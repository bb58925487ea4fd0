"""The native side of Zoom's client for the real `@zoom/appssdk` (docs/ZOOM.md §9, §9.x).

The panel's SDK posts `{jsCallId, apiName, data}`; the meeting window relays it here and sends back
`{jsCallId, result}` or `{jsCallId, errorCode, errorMessage}`. Events go the other way through `WindowHub`.

Gates, in the order the client applies them:
1. the API must have been granted by `config` (listed in `capabilities` and supported here), else
   "No Permission for this API. [code:80004, reason:app_not_support]";
2. Host/Co-Host-only APIs fail for other roles with "[code:80003, reason:require_meeting_owner_role]";
3. RTMS APIs are not available in Guest Mode (§9.3), "[code:80005, reason:guest_not_support]".
The 80003/80004 strings are what developers report from real clients; 80005 is a project assumption (the
reference documents no code for it).

Result shapes follow what the native client returns *before* the SDK's own mapping (sdk.es.js
`compatibilityFnsApis`): `getRunningContext` answers a bare string (the SDK wraps it into `{context}`); the RTMS
start/stop/pause/resume calls, sendMessage and closeApp answer a bare string that the SDK always wraps into
`{message}` ("Success"/"Failure" for RTMS, §9.3); showNotification, expandApp, authorize and promptAuthorize
answer a bare "success" (the SDK's `wrapInMessageObject`).
"""

import hashlib
import json
import logging

from zoomsim.errors import StreamRefused
from zoomsim.protocol import StopReason
from zoomsim.window import texts

log = logging.getLogger("zoomsim.window.bridge")

CLIENT_VERSION = "6.6.0"
HOST_ROLES = ("host", "co-host")

SUPPORTED_APIS = {
    "config", "getSupportedJsApis", "getRunningContext", "getUserContext", "getMeetingContext", "getMeetingUUID",
    "getMeetingJoinUrl", "getMeetingParticipants", "getAppContext", "authorize", "promptAuthorize", "startRTMS",
    "stopRTMS", "pauseRTMS", "resumeRTMS", "getRTMSStatus", "sendMessage", "showNotification", "expandApp",
    "closeApp", "sendAppInvitationToMeetingOwner",
}
SUPPORTED_EVENTS = {
    "onAuthorized", "onRTMSStatusChange", "onMyUserContextChange", "onParticipantChange", "onMeeting", "onMessage",
    "onRunningContextChange",
}
HOST_ONLY = {"getMeetingContext", "getMeetingParticipants", "getMeetingJoinUrl", "onParticipantChange"}
NO_GUEST_MODE = {"startRTMS", "stopRTMS", "pauseRTMS", "resumeRTMS", "getRTMSStatus", "onRTMSStatusChange"}
MESSAGE_LIMIT_BYTES = 1024

# In-client RTMS status of a stream (docs/ZOOM.md §9.3): what getRTMSStatus and onRTMSStatusChange report.
RTMS_STATUS = {"starting": "connecting", "interrupted": "connecting", "active": "started", "paused": "paused",
               "stopped": "stopped"}


class ApiError(Exception):
    def __init__(self, code, message):
        super().__init__(message)
        self.code = str(code)
        self.message = message


def no_permission(code, reason):
    return ApiError(code, f"No Permission for this API. [code:{code}, reason:{reason}]")


class PanelSession:
    """One loaded panel: who opened which app in which meeting, and what its last `config` granted."""

    def __init__(self, meeting_uuid, key, client_id):
        self.meeting_uuid = meeting_uuid
        self.key = key
        self.client_id = client_id
        self.granted = set()
        self.configured = False

    def allows(self, name):
        return self.configured and name in self.granted


def participant_uuid(meeting, participant):
    """A meeting-scoped participant UUID, stable across reconnects (as Zoom's participantUUID is)."""
    digest = hashlib.sha256(f"{meeting.uuid}/{participant.key}".encode()).hexdigest().upper()
    return f"{digest[:8]}-{digest[8:12]}-{digest[12:16]}-{digest[16:20]}-{digest[20:32]}"


def sdk_role(participant):
    """getUserContext / onMyUserContextChange spelling."""
    return {"host": "host", "co-host": "coHost"}.get(participant.role, "attendee")


def participant_role(participant):
    """getMeetingParticipants / onParticipantChange spelling."""
    return {"host": "host", "co-host": "cohost"}.get(participant.role, "attendee")


def participant_entry(meeting, participant):
    return {"screenName": participant.name, "participantId": str(participant.rtms_user_id),
            "participantUUID": participant_uuid(meeting, participant), "role": participant_role(participant)}


def app_user_name(stream):
    """The app's user: the operating participant, or the Zoom user a REST start named when not in the meeting."""
    if stream.operator is not None:
        return stream.operator.name
    user = stream.sim.users.get(stream.operator_id)
    return user.name if user else ""


def rtms_status_entry(stream, now_ms):
    name = app_user_name(stream)
    return {"rtmsSessionId": stream.session_id or stream.id, "displayName": name,
            "status": RTMS_STATUS[stream.state], "timestamp": now_ms // 1000}


class Bridge:
    def __init__(self, hub):
        self.hub = hub
        self.sim = hub.sim

    def user_status(self, participant, app):
        """getUserContext status: unauthenticated (guest), authenticated, or authorized (has added the app)."""
        if participant.user is None:
            return "unauthenticated"
        return "authorized" if self.hub.has_authorized(app, participant.user) else "authenticated"

    async def call(self, session, api_name, data):
        meeting = self.sim.meetings.get(session.meeting_uuid)
        app = self.sim.apps.get(session.client_id)
        if meeting is None or app is None:
            raise ApiError(10001, "The Zoom client encountered an error while processing the request")
        participant = meeting.participant(session.key)
        data = data if isinstance(data, dict) else {}
        if api_name == "config":
            return self.config(session, meeting, participant, app, data)
        if not session.allows(api_name):
            raise no_permission(80004, "app_not_support")
        if api_name in HOST_ONLY and participant.role not in HOST_ROLES:
            raise no_permission(80003, "require_meeting_owner_role")
        if api_name in NO_GUEST_MODE and participant.guest:
            raise no_permission(80005, "guest_not_support")
        handler = getattr(self, "api_" + api_name)
        return await handler(session, meeting, participant, app, data)

    # -- core ----------------------------------------------------------------------------------------------

    def config(self, session, meeting, participant, app, data):
        requested = [name for name in data.get("js_api_lists") or [] if isinstance(name, str)]
        supported = SUPPORTED_APIS | SUPPORTED_EVENTS
        session.granted = {name for name in requested if name in supported} | {"config"}
        session.configured = True
        unsupported = [name for name in requested if name not in supported]
        # Host-only APIs are reported unsupported for other roles; re-config after a role change (§9.1).
        if participant.role not in HOST_ROLES:
            unsupported += [name for name in requested if name in HOST_ONLY and name not in unsupported]
        authorized = participant.user is not None and self.hub.has_authorized(app, participant.user)
        return {
            "runningContext": "inMeeting",
            "unsupportedApis": unsupported,
            "clientVersion": CLIENT_VERSION,
            "browserVersion": "cef/120.0",
            "auth": {"status": "authorized" if authorized else "unauthorized", "upgradable": True},
            "userAgent": "Mozilla/5.0 ZoomApps/6.6.0 (zoomsim)",
            "launchContext": {"origin": "App Launcher", "openBy": "user"},
            "product": "desktop",
        }

    async def api_getSupportedJsApis(self, session, meeting, participant, app, data):
        return {"supportedApis": sorted(SUPPORTED_APIS | SUPPORTED_EVENTS)}

    async def api_getRunningContext(self, session, meeting, participant, app, data):
        return "inMeeting"

    async def api_getUserContext(self, session, meeting, participant, app, data):
        return {"status": self.user_status(participant, app), "screenName": participant.name,
                "participantId": str(participant.rtms_user_id),
                "participantUUID": participant_uuid(meeting, participant), "role": sdk_role(participant)}

    async def api_getMeetingContext(self, session, meeting, participant, app, data):
        return {"meetingTopic": meeting.topic, "meetingID": str(meeting.id)}

    async def api_getMeetingUUID(self, session, meeting, participant, app, data):
        return {"meetingUUID": meeting.uuid}

    async def api_getMeetingJoinUrl(self, session, meeting, participant, app, data):
        return {"joinUrl": f"{self.sim.http_url}/j/{meeting.id}"}

    async def api_getMeetingParticipants(self, session, meeting, participant, app, data):
        return {"participants": [participant_entry(meeting, p) for p in meeting.present()]}

    async def api_getAppContext(self, session, meeting, participant, app, data):
        return {"context": self.hub.app_context(meeting, participant, app)}

    # -- in-client OAuth (§8.2) -----------------------------------------------------------------------------

    async def api_authorize(self, session, meeting, participant, app, data):
        challenge = data.get("codeChallenge")
        if not isinstance(challenge, str) or not challenge:
            raise ApiError(10001, "codeChallenge is required")
        if participant.user is None:
            raise ApiError(10001, "Guests must sign in before authorizing an app (use promptAuthorize)")
        code = self.hub.issue_authorization_code(app, participant.user, challenge)
        event = {"code": code, "redirectUri": app.redirect_url, "result": True,
                 "timestamp": self.sim.clock.now_ms() // 1000}
        if data.get("state") is not None:
            event["state"] = data["state"]
        self.hub.emit_to_session(session, "onAuthorized", event)
        return "success"

    async def api_promptAuthorize(self, session, meeting, participant, app, data):
        # The user accepts the client's prompt at once; the app then calls config again (§8.2).
        self.hub.emit_to_session(session, "onMyUserContextChange", {
            "timestamp": self.sim.clock.now_ms() // 1000, "role": sdk_role(participant),
            "screenName": participant.name, "status": self.user_status(participant, app)})
        return "success"

    # -- RTMS (§9.3) ----------------------------------------------------------------------------------------

    def _own_stream(self, meeting, participant, app):
        for stream in self.sim.streams_for(meeting, app.client_id):
            if stream.operator is participant or stream.operator_id == participant.user_id:
                return stream
        # Continuous meeting sharing: any host can manage the app's streams (§12.5).
        if participant.role in HOST_ROLES:
            streams = self.sim.streams_for(meeting, app.client_id)
            if streams:
                return streams[0]
        return None

    async def api_startRTMS(self, session, meeting, participant, app, data):
        if participant.role not in HOST_ROLES:
            self.hub.self_start = (meeting.uuid, participant.key, app.client_id)
        try:
            outcome, _ = self.sim.request_stream(meeting, app, participant, source="app")
        except StreamRefused as refused:
            log.info("event=sdk_start_refused meeting_uuid=%s key=%s client_id=%s outcome=%s", meeting.uuid,
                     participant.key, app.client_id, refused.outcome)
            self.hub.toast(meeting, participant, texts.OUTCOMES.get(refused.outcome, refused.message), "warning")
            self.sim.report_request_status(meeting, app, participant, refused.outcome)
            return "Failure"
        finally:
            self.hub.self_start = None
        if outcome == "pending":
            self.hub.toast(meeting, participant, texts.OUTCOMES["pending"])
            self.sim.report_request_status(meeting, app, participant, "pending")
        return "Success"

    async def api_stopRTMS(self, session, meeting, participant, app, data):
        stream = self._own_stream(meeting, participant, app)
        if stream is None:
            return "Failure"
        reason = StopReason.USER_TRIGGERED if stream.operator is participant else StopReason.HOST_TRIGGERED
        self.sim.stop_stream(stream, reason)
        return "Success"

    async def api_pauseRTMS(self, session, meeting, participant, app, data):
        return self._pause_or_resume(meeting, participant, app, self.sim.pause_stream)

    async def api_resumeRTMS(self, session, meeting, participant, app, data):
        return self._pause_or_resume(meeting, participant, app, self.sim.resume_stream)

    def _pause_or_resume(self, meeting, participant, app, action):
        stream = self._own_stream(meeting, participant, app)
        if stream is None:
            return "Failure"
        try:
            action(stream)
        except StreamRefused:
            return "Failure"
        return "Success"

    async def api_getRTMSStatus(self, session, meeting, participant, app, data):
        now = self.sim.clock.now_ms()
        return {"rtmsStatus": [rtms_status_entry(s, now) for s in self.sim.streams_for(meeting, app.client_id)]}

    # -- messaging and client UI ----------------------------------------------------------------------------

    async def api_sendMessage(self, session, meeting, participant, app, data):
        payload = data.get("payload")
        if len(json.dumps(payload, separators=(",", ":")).encode()) > MESSAGE_LIMIT_BYTES:
            raise ApiError(10229, "Message payload too large - exceeds 1Kb")
        self.hub.broadcast_message(session, {"timestamp": self.sim.clock.now_ms() // 1000, "payload": payload,
                                             "participantUUID": participant_uuid(meeting, participant)})
        return "success"

    async def api_sendAppInvitationToMeetingOwner(self, session, meeting, participant, app, data):
        """Zoom shows the meeting owner a notice naming the sender and the app, with Open and Ignore, wherever
        they are in the meeting window (their Apps panel need not be open: the client shows it, not the app)."""
        owner = meeting.participant(meeting.host.user_id)
        if owner is None or not owner.joined or owner is participant:
            raise ApiError(10026, "Failed to send the app invitation")
        return {"invitationUUID": self.hub.invite(meeting, participant, owner, app)}

    async def api_showNotification(self, session, meeting, participant, app, data):
        kind = data.get("type") if data.get("type") in ("info", "warning", "error") else "info"
        self.hub.toast(meeting, participant, str(data.get("message", "")), kind, title=str(data.get("title", "")))
        return "success"

    async def api_expandApp(self, session, meeting, participant, app, data):
        action = data.get("action")
        if action not in ("expand", "collapse"):
            raise ApiError(10001, "action must be 'expand' or 'collapse'")
        self.hub.set_panel_expanded(meeting, participant, action == "expand")
        return "success"

    async def api_closeApp(self, session, meeting, participant, app, data):
        self.hub.close_panel(meeting, participant)
        return "success"
