"""Live meeting windows: one WebSocket per open window, full per-person state pushed on every simulator change.

Every message carries the whole state the window needs plus a version number (never a delta), so a window that
missed a push is repaired by the next one and a reconnecting window simply gets the current snapshot.

The hub also turns simulator changes into the Apps SDK events a panel receives (onRTMSStatusChange,
onParticipantChange, onMyUserContextChange, onMeeting), Zoom's AAN notices and the participant outcome toasts.
"""

import asyncio
import json
import logging
import time
import uuid
import zlib
from dataclasses import dataclass, field
from urllib.parse import quote, urlsplit

from zoomsim.errors import StreamRefused
from zoomsim.protocol import StopReason
from zoomsim.window import texts
from zoomsim.window.appcontext import build_app_context, encrypt_app_context
from zoomsim.window.bridge import (
    HOST_ROLES,
    RTMS_STATUS,
    ApiError,
    Bridge,
    PanelSession,
    app_user_name,
    participant_entry,
    rtms_status_entry,
    sdk_role,
)
from zoomsim.window.homeurl import check_home_url

log = logging.getLogger("zoomsim.window")

NOTICE_LIMIT = 20
INVITATION_LIMIT = 20  # per person, one per app: the oldest go first, as notices do
STOP_OUTCOMES = {StopReason.HOST_DISABLED_APP: "disabled_by_host", StopReason.ALL_APPS_DISABLED: "apps_disabled"}


@dataclass
class Panel:
    """The app a person has open in their Apps panel."""

    client_id: str
    session: PanelSession
    load_id: int
    home_url: str = ""
    src: str = ""
    origin: str = ""
    checking: bool = True
    missing_headers: list = field(default_factory=list)
    error: str = ""
    expanded: bool = False


class Connection:
    """One open meeting window; messages are queued so they leave in order."""

    def __init__(self, ws, meeting_uuid, key):
        self.ws = ws
        self.meeting_uuid = meeting_uuid
        self.key = key
        self.queue = asyncio.Queue()

    def send(self, message):
        self.queue.put_nowait(json.dumps(message, separators=(",", ":")))

    async def pump(self):
        while True:
            text = await self.queue.get()
            await self.ws.send_str(text)


def home_url_for(app, meeting, participant):
    """The Home URL with Zoom's template parameters filled in; unavailable ones become `none` (docs/ZOOM.md §10.5)."""
    values = {
        "accountId": participant.account_id or "none", "runningContext": "inMeeting", "meetingUUID": meeting.uuid,
        "breakoutRoomUUID": "none", "collaborationId": "none", "invitationId": "none", "action": "none",
        "product": "desktop", "accountNumber": "none",
    }
    url = app.home_url
    for name, value in values.items():
        url = url.replace("{" + name + "}", quote(str(value), safe=""))
    return url


CONTENT_NAMES = {"audio": "Audio", "video": "Video", "deskshare": "Screen share", "transcript": "Transcript",
                 "chat": "Chat"}


def content_types(app):
    """What the Active Apps Notifier lists as the content an app receives."""
    return ", ".join(CONTENT_NAMES.get(kind, kind) for kind in app.media_types)


def hue(name):
    return zlib.crc32(name.encode()) % 360


class WindowHub:
    def __init__(self, sim):
        self.sim = sim
        self.bridge = Bridge(self)
        self.version = 0
        self.connections = {}  # (meeting uuid, key) -> set of Connection
        self.panels = {}  # (meeting uuid, key) -> Panel
        self.disclosure_acked = set()  # (meeting uuid, key)
        self.notices = {}  # meeting uuid -> [notice]
        self.invitations = {}  # (meeting uuid, key) -> [app invitation addressed to that person]
        self.request_outcomes = {}  # request id -> why it ended without a stream (denied, host_cannot_approve…)
        self.self_start = None  # (meeting uuid, key, client id) while a participant's own startRTMS runs
        self._seen_streams = {}  # stream id -> in-client status last reported
        self._seen_people = {}  # meeting uuid -> {key: (joined, role)}
        self._seen_requests = {}  # meeting uuid -> {request id: request}
        self._dirty = set()
        self._flush_handle = None
        self._load_ids = 0
        sim.subscribe(self.on_change)

    # -- simulator changes -----------------------------------------------------------------------------------

    def on_change(self, kind, meeting):
        self.version += 1
        if meeting is None:
            self._dirty.update(self.sim.meetings)
        else:
            self._derive_events(kind, meeting)
            self._dirty.add(meeting.uuid)
        if self._flush_handle is None:
            self._flush_handle = asyncio.get_running_loop().call_soon(self._flush)

    def _flush(self):
        self._flush_handle = None
        dirty, self._dirty = self._dirty, set()
        for (meeting_uuid, _key), connections in self.connections.items():
            if meeting_uuid in dirty:
                for connection in connections:
                    self.push_state(connection)

    def touch(self, meeting):
        """A window-only change (panel, disclosure): push without a simulator event."""
        self.on_change("window", meeting)

    def push_state(self, connection):
        meeting = self.sim.meetings.get(connection.meeting_uuid)
        if meeting is None:
            return
        participant = meeting.participant(connection.key)
        connection.send({"type": "state", "version": self.version, "state": self.snapshot(meeting, participant)})

    def _derive_events(self, kind, meeting):
        now = self.sim.clock.now_ms()
        self._participant_events(meeting, now)
        self._stream_events(meeting, now)
        self._request_events(meeting)
        if kind == "meeting_ended":
            for (meeting_uuid, key) in list(self.panels):
                if meeting_uuid == meeting.uuid:
                    self.emit_to_person(meeting, key, "onMeeting", {"timestamp": now // 1000, "action": "ended"})

    def _participant_events(self, meeting, now):
        people = {p.key: (p.joined, p.role) for p in meeting.participants.values()}
        before = self._seen_people.get(meeting.uuid, {})
        self._seen_people[meeting.uuid] = people
        changes = []
        for key, (joined, role) in people.items():
            was_joined, was_role = before.get(key, (False, role))
            participant = meeting.participants[key]
            if was_joined and not joined and meeting.status != "ended":
                # Leaving the meeting closes its window, and with it the apps open in it: a panel of someone who
                # left runs no more code (it cannot bind again as if still in the meeting). When the meeting ends,
                # panels stay to receive onMeeting "ended" and say so.
                self.panels.pop((meeting.uuid, key), None)
            if joined != was_joined:
                entry = participant_entry(meeting, participant)
                entry["participantId"] = participant.rtms_user_id  # a number in this event (docs/ZOOM.md §9.2)
                changes.append({"status": "join" if joined else "leave", **entry})
            if role != was_role:
                self.emit_to_person(meeting, key, "onMyUserContextChange", {
                    "timestamp": now // 1000, "role": sdk_role(participant), "screenName": participant.name})
        if changes:
            for key, person in meeting.participants.items():
                if person.role in HOST_ROLES:
                    self.emit_to_person(meeting, key, "onParticipantChange",
                                        {"timestamp": now // 1000, "participants": changes})

    def _stream_events(self, meeting, now):
        for stream_id in meeting.stream_ids:
            stream = self.sim.streams[stream_id]
            status = RTMS_STATUS[stream.state]
            previous = self._seen_streams.get(stream_id)
            if previous == status:
                continue
            self._seen_streams[stream_id] = status
            if previous is None and not self._started_in_client_by_operator(stream):
                self._add_notice(meeting, stream)
            event = rtms_status_entry(stream, now)
            if previous == "paused" and status == "started":
                event["status"] = "resumed"
            self.emit_to_app(meeting, stream.app.client_id, "onRTMSStatusChange", event)
            outcome = STOP_OUTCOMES.get(stream.stop_reason) if status == "stopped" else None
            if outcome and stream.operator is not None:
                self.toast(meeting, stream.operator, texts.OUTCOMES[outcome], "warning")

    def _request_events(self, meeting):
        requests = {r["id"]: r for r in meeting.pending_requests}
        for request_id, request in self._seen_requests.get(meeting.uuid, {}).items():
            if request_id not in requests:
                self._request_resolved(meeting, request)
        self._seen_requests[meeting.uuid] = requests

    def _request_resolved(self, meeting, request):
        requester = meeting.participants.get(request["participant_key"])
        if requester is None:
            return
        outcome = self.request_outcomes.pop(request["id"], None)
        if outcome is None and not meeting.settings.get("share_with_apps", True):
            outcome = "apps_disabled"
        if outcome not in texts.OUTCOMES:
            return  # approved (a stream exists), or the meeting ended
        self.toast(meeting, requester, texts.OUTCOMES[outcome], "warning")
        app = self.sim.apps.get(request["client_id"])
        if app is not None:
            self.sim.report_request_status(meeting, app, requester, outcome)
        self.emit_to_app(meeting, request["client_id"], "onRTMSStatusChange", {
            "rtmsSessionId": "", "displayName": requester.name, "status": "stopped",
            "timestamp": self.sim.clock.now_ms() // 1000}, keys={requester.key})

    def _started_in_client_by_operator(self, stream):
        """A participant's own startRTMS that needed no approval: no "started by host" notice for that one."""
        return self.self_start == (stream.meeting.uuid, stream.operator.key if stream.operator else None,
                                   stream.app.client_id)

    def _add_notice(self, meeting, stream):
        """AAN: auto-start by admin setting, or any other start made by or for the host (app UI, approval, REST)."""
        text = texts.NOTICE_AUTO_START if stream.started_by == "auto" else texts.NOTICE_STARTED_BY_HOST
        user = app_user_name(stream)
        notices = self.notices.setdefault(meeting.uuid, [])
        notices.append({"id": stream.id, "kind": stream.started_by, "text": text, "app": stream.app.name, "user": user})
        del notices[:-NOTICE_LIMIT]

    # -- what a window shows ---------------------------------------------------------------------------------

    def snapshot(self, meeting, participant):
        live_streams = self.sim.streams_for(meeting)
        active_apps = []
        apps_by_person = {}
        for stream in live_streams:
            label = {"active": texts.STATUS_SHARING, "paused": texts.STATUS_PAUSED}.get(
                stream.state, texts.STATUS_CONNECTING)
            owner = stream.operator
            active_apps.append({"client_id": stream.app.client_id, "app": stream.app.name,
                                "user": app_user_name(stream), "user_key": owner.key if owner else "",
                                "status": label, "content": content_types(stream.app)})
            if owner is not None:
                apps_by_person.setdefault(owner.key, []).append({"app": stream.app.name, "status": label})
        sharing = any(entry["status"] != texts.STATUS_CONNECTING for entry in active_apps)
        is_host = participant.role in HOST_ROLES
        panel = self.panels.get((meeting.uuid, participant.key))
        app_names = {client_id: app.name for client_id, app in self.sim.apps.items()}
        return {
            "meeting": {"id": meeting.id, "uuid": meeting.uuid, "topic": meeting.topic, "status": meeting.status},
            "me": {"key": participant.key, "name": participant.name, "role": participant.role,
                   "joined": participant.joined, "is_host": is_host, "guest": participant.guest},
            "participants": [
                {"key": p.key, "name": p.name, "role": p.role, "role_label": {"host": "Host", "co-host": "Co-host"}
                 .get(p.role, ""), "joined": p.joined, "speaking": meeting.active_speaker == p.key,
                 "hue": hue(p.name), "apps": apps_by_person.get(p.key, [])}
                for p in meeting.participants.values()],
            "active_apps": active_apps,
            "show_disclosure": sharing and participant.joined
            and (meeting.uuid, participant.key) not in self.disclosure_acked,
            "notices": list(self.notices.get(meeting.uuid, [])) if participant.joined else [],
            "invitations": list(self.invitations.get((meeting.uuid, participant.key), []))
            if participant.joined else [],
            "requests": [
                {"id": r["id"], "client_id": r["client_id"], "app": app_names.get(r["client_id"], r["client_id"]),
                 "user": r.get("user_name", ""), "user_key": r["participant_key"], "source": r["source"]}
                for r in meeting.pending_requests] if is_host and participant.joined else [],
            "settings": {"share_with_apps": meeting.settings.get("share_with_apps", True),
                         "require_host_approval": meeting.settings.get("require_host_approval", True)},
            "apps": [{"client_id": client_id, "name": name} for client_id, name in app_names.items()],
            "panel": None if panel is None else {
                "client_id": panel.client_id, "name": app_names.get(panel.client_id, panel.client_id),
                "load_id": panel.load_id, "home_url": panel.home_url, "src": panel.src, "origin": panel.origin,
                "checking": panel.checking, "missing_headers": panel.missing_headers, "error": panel.error,
                "expanded": panel.expanded},
        }

    # -- events, toasts and messages to windows --------------------------------------------------------------

    def _send_to_person(self, meeting_uuid, key, message):
        for connection in self.connections.get((meeting_uuid, key), ()):
            connection.send(message)

    def emit_to_person(self, meeting, key, name, data):
        panel = self.panels.get((meeting.uuid, key))
        if panel is not None:
            self.emit_to_session(panel.session, name, data)

    def emit_to_session(self, session, name, data):
        panel = self.panels.get((session.meeting_uuid, session.key))
        if panel is None or panel.session is not session or not session.allows(name):
            return
        self._send_to_person(session.meeting_uuid, session.key,
                             {"type": "sdk_event", "client_id": session.client_id, "name": name, "data": data})

    def emit_to_app(self, meeting, client_id, name, data, keys=None):
        """An event for every open panel of one app in the meeting (optionally only some people)."""
        for (meeting_uuid, key), panel in list(self.panels.items()):
            if meeting_uuid == meeting.uuid and panel.client_id == client_id and (keys is None or key in keys):
                self.emit_to_session(panel.session, name, data)

    def broadcast_message(self, sender, data):
        meeting = self.sim.meetings[sender.meeting_uuid]
        others = {key for (meeting_uuid, key) in self.panels if meeting_uuid == meeting.uuid and key != sender.key}
        self.emit_to_app(meeting, sender.client_id, "onMessage", data, keys=others)

    def toast(self, meeting, participant, text, kind="info", title=""):
        self._send_to_person(meeting.uuid, participant.key, {"type": "toast", "text": text, "kind": kind,
                                                              "title": title})

    def invite(self, meeting, sender, recipient, app):
        """An app invitation shown in the recipient's window until they open the app or ignore it."""
        invitation = {"id": str(uuid.uuid4()), "client_id": app.client_id, "app": app.name, "from": sender.name,
                      "text": texts.INVITATION.format(user=sender.name, app=app.name),
                      "open": texts.INVITATION_OPEN, "ignore": texts.INVITATION_IGNORE}
        # One notice per app: a newer invitation to the same app replaces the older one instead of piling up.
        invitations = [i for i in self.invitations.get((meeting.uuid, recipient.key), [])
                       if i["client_id"] != app.client_id]
        invitations.append(invitation)
        self.invitations[(meeting.uuid, recipient.key)] = invitations[-INVITATION_LIMIT:]
        log.info("event=app_invitation meeting_uuid=%s from=%s to=%s client_id=%s", meeting.uuid, sender.key,
                 recipient.key, app.client_id)
        self.touch(meeting)
        return invitation["id"]

    def _take_invitation(self, meeting, participant, invitation_id):
        invitations = self.invitations.get((meeting.uuid, participant.key), [])
        invitation = next((i for i in invitations if i["id"] == invitation_id), None)
        if invitation is None:
            raise ValueError("This invitation is no longer there.")
        invitations.remove(invitation)
        self.touch(meeting)
        return invitation

    # -- app context, OAuth --------------------------------------------------------------------------------------

    def app_context(self, meeting, participant, app):
        context = build_app_context(client_id=app.client_id, meeting_uuid=meeting.uuid, role=participant.role,
                                    now_ms=self.sim.clock.now_ms(), user_id=participant.user_id or None)
        return encrypt_app_context(context, app.client_secret)

    def has_authorized(self, app, user):
        """The user has added the app: a live refresh token exists for them (the grant survives access expiry)."""
        return any(record["client_id"] == app.client_id and record["user_id"] == user.user_id
                   for record in self.sim.tokens.refresh.values())

    def issue_authorization_code(self, app, user, code_challenge):
        # S256 is the method this project decided on for in-client PKCE (docs/ZOOM.md §8.2).
        return self.sim.tokens.issue_code(app, user, app.redirect_url, code_challenge, "S256")

    # -- the Apps panel ------------------------------------------------------------------------------------------

    def open_panel(self, meeting, participant, client_id):
        app = self.sim.apps.get(client_id)
        if app is None:
            raise ValueError("unknown app")
        self._load_ids += 1
        panel = Panel(client_id=client_id, session=PanelSession(meeting.uuid, participant.key, client_id),
                      load_id=self._load_ids, home_url=home_url_for(app, meeting, participant))
        self.panels[(meeting.uuid, participant.key)] = panel
        self.touch(meeting)
        self.sim.spawn(self._check_panel(meeting, participant, app, panel))

    async def _check_panel(self, meeting, participant, app, panel):
        started = time.monotonic()
        result = await check_home_url(panel.home_url, self.app_context(meeting, participant, app))
        panel.checking = False
        panel.missing_headers = result.missing_headers
        panel.error = result.error
        if not result.error and not result.missing_headers:
            parts = urlsplit(result.final_url or panel.home_url)
            panel.src, panel.origin = panel.home_url, f"{parts.scheme}://{parts.netloc}"
        log.info("event=panel_opened meeting_uuid=%s key=%s client_id=%s rendered=%s missing=%s error=%r ms=%.1f",
                 meeting.uuid, participant.key, app.client_id, bool(panel.src),
                 ",".join(result.missing_headers) or "-", result.error, 1000 * (time.monotonic() - started))
        self.touch(meeting)

    def close_panel(self, meeting, participant):
        if self.panels.pop((meeting.uuid, participant.key), None) is not None:
            self.touch(meeting)

    def set_panel_expanded(self, meeting, participant, expanded):
        panel = self.panels.get((meeting.uuid, participant.key))
        if panel is not None:
            panel.expanded = expanded
            self.touch(meeting)

    # -- one window's WebSocket ----------------------------------------------------------------------------------

    async def serve(self, ws, meeting, participant):
        connection = Connection(ws, meeting.uuid, participant.key)
        self.connections.setdefault((meeting.uuid, participant.key), set()).add(connection)
        pump = asyncio.get_running_loop().create_task(connection.pump())
        self._seen_people.setdefault(meeting.uuid, {p.key: (p.joined, p.role) for p in meeting.participants.values()})
        self.push_state(connection)
        try:
            async for frame in ws:
                try:
                    message = json.loads(frame.data)
                except (TypeError, ValueError):
                    continue
                if not isinstance(message, dict):
                    continue
                if message.get("type") == "sdk_call":
                    await self._sdk_call(connection, meeting, message)
                elif message.get("type") == "action":
                    self._action(connection, meeting, meeting.participant(participant.key), message)
        finally:
            pump.cancel()
            self.connections[(meeting.uuid, participant.key)].discard(connection)

    async def _sdk_call(self, connection, meeting, message):
        call_id = message.get("jsCallId")
        api_name = str(message.get("apiName") or "")
        panel = self.panels.get((meeting.uuid, connection.key))
        try:
            if panel is None or panel.client_id != message.get("client_id"):
                raise ApiError(10001, "The Zoom client encountered an error while processing the request")
            result = await self.bridge.call(panel.session, api_name, message.get("data"))
            reply = {"jsCallId": call_id, "result": result}
        except ApiError as error:
            reply = {"jsCallId": call_id, "errorCode": error.code, "errorMessage": error.message}
        except Exception:  # logged: a bad call must answer, not end this window's connection
            log.exception("event=sdk_call_failed meeting_uuid=%s key=%s api=%s", meeting.uuid, connection.key,
                          api_name)
            reply = {"jsCallId": call_id, "errorCode": "10001",
                     "errorMessage": "The Zoom client encountered an error while processing the request"}
        log.info("event=sdk_call meeting_uuid=%s key=%s api=%s error=%s", meeting.uuid, connection.key, api_name,
                 reply.get("errorCode", "-"))
        connection.send({"type": "sdk_response", "client_id": message.get("client_id"), "data": reply})

    def _action(self, connection, meeting, participant, message):
        action = message.get("action")
        try:
            self._do_action(meeting, participant, action, message)
        except (ValueError, KeyError, PermissionError) as error:
            log.info("event=window_action_refused meeting_uuid=%s key=%s action=%s error=%s", meeting.uuid,
                     participant.key, action, error)
            connection.send({"type": "toast", "text": str(error) or "Not allowed", "kind": "error"})
        except Exception as error:  # noqa: BLE001 - the model refuses with its own exception types
            log.info("event=window_action_failed meeting_uuid=%s key=%s action=%s error=%r", meeting.uuid,
                     participant.key, action, error)
            connection.send({"type": "toast", "text": getattr(error, "message", str(error)), "kind": "error"})

    def _approve(self, meeting, request_id):
        """Zoom may still refuse the start (e.g. the host's policy): the requester hears why, the host too."""
        try:
            self.sim.approve_request(meeting, request_id)
        except StreamRefused as refused:
            self.request_outcomes[request_id] = refused.outcome
            self.touch(meeting)
            raise

    def _require_host(self, participant, owner_only=False):
        allowed = ("host",) if owner_only else HOST_ROLES
        if participant.role not in allowed or not participant.joined:
            raise PermissionError("Only the host can do this.")

    def _do_action(self, meeting, participant, action, message):
        sim = self.sim
        if action == "join":
            sim.join(meeting, participant)
        elif action == "leave":
            sim.leave(meeting, participant)
        elif action == "end":
            self._require_host(participant, owner_only=True)
            sim.end_meeting(meeting)
        elif action == "speak":
            sim.speak(meeting, participant, str(message.get("text", ""))[:500])
        elif action == "settings":
            self._require_host(participant)
            sim.update_settings(meeting, {name: message.get(name)
                                          for name in ("share_with_apps", "require_host_approval")})
        elif action in ("approve_request", "deny_request", "approve_all", "deny_all"):
            self._require_host(participant)
            ids = [message.get("request_id")] if action.endswith("_request") else [
                r["id"] for r in meeting.pending_requests]
            for request_id in ids:
                if action.startswith("approve"):
                    self._approve(meeting, request_id)
                else:
                    self.request_outcomes[request_id] = "denied"
                    sim.deny_request(meeting, request_id)
        elif action == "disable_app":
            self._require_host(participant)
            sim.disable_app(meeting, str(message.get("client_id")))
        elif action == "open_app":
            self.open_panel(meeting, participant, str(message.get("client_id")))
        elif action == "open_invitation":
            invitation = self._take_invitation(meeting, participant, message.get("invitation_id"))
            panel = self.panels.get((meeting.uuid, participant.key))
            if panel is None or panel.client_id != invitation["client_id"]:  # an open panel is kept as it is
                self.open_panel(meeting, participant, invitation["client_id"])
        elif action == "ignore_invitation":
            self._take_invitation(meeting, participant, message.get("invitation_id"))
        elif action == "close_app":
            self.close_panel(meeting, participant)
        elif action == "ack_disclosure":
            self.disclosure_acked.add((meeting.uuid, participant.key))
            self.touch(meeting)
        else:
            raise ValueError(f"unknown action {action!r}")
