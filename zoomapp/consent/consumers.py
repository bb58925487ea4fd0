"""The panel's WebSocket: ws/panel/?token=<panel token>.

Authorise with the signed panel token (minted after the app context was verified), join the app's meeting
group and the user's group, accept, push the snapshot. The socket is closed when its token expires without a
renewal and when Zoom tells us its user left or was removed from the meeting (docs/SECURITY.md). Frames are JSON
actions by name (see panel_dispatch.py) plus "resync" and "renew"; pushes are the full meeting state with its
version, filtered for this viewer, written by the meeting's one fan-out task in this process (MeetingPanels).
A refused action gets {"type": "refused", "action", "code", "message"} and changes nothing.
"""

import asyncio
import json
import logging
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import parse_qs

from asgiref.sync import sync_to_async
from channels.consumer import get_handler_name
from channels.generic.websocket import AsyncWebsocketConsumer
from django.db import InterfaceError, OperationalError, connection

from zoomapp import inbound, texts
from zoomapp.consent import panel_dispatch, tokens
from zoomapp.consent.panel_state import StateFrames, snapshot_for
from zoomapp.consent.permissions import Refused
from zoomapp.consent.push import meeting_group, user_group

log = logging.getLogger("zoomapp.consent.ws")

MAX_FRAME_CHARS = 4096
CLOSE_UNAUTHORIZED = 4401  # the token was refused or expired: the panel binds again from a fresh app context
CLOSE_DEPARTED = 4410  # Zoom says this user left or was removed: the panel stops, it does not bind again
# Every panel of this process shares the encodings of the states pushed to its meetings.
_state_frames = StateFrames()
# Panels written to before the fan-out lets the loop run (the Redis reader, other sockets' frames, new panels).
_PANELS_PER_TURN = 64


# The panel sockets' database work, off daphne's one shared sync thread (a host's Approve must not queue behind
# other requests' database work; the webhook that confirms the start runs there too). The process's own threads
# (as many as asyncio's default executor), each keeping its PostgreSQL connection between calls: a new connection
# per call was a fifth of a panel's opening.
_database_pool = ThreadPoolExecutor(thread_name_prefix="panel-db")


async def _in_pool(fn, *args):
    return await sync_to_async(_keeping_connection, thread_sensitive=False, executor=_database_pool)(fn, *args)


def _keeping_connection(fn, *args):
    """A connection that failed (PostgreSQL restarted) is dropped, so that the thread's next call connects again."""
    try:
        return fn(*args)
    except (OperationalError, InterfaceError):
        connection.close()
        raise


class MeetingPanels:
    """The panels of one app in one meeting open in this web process, and the one task that writes each pushed
    state to them.

    The meeting's group is joined once per process, not once per panel: a state pushed to 1,000 panels is read
    once, encoded once per viewer kind (StateFrames) and written to each socket in turn, instead of waking 1,000
    consumers through 1,000 channel-layer queues. Pushes carry the full state with its version
    (docs/ARCHITECTURE.md "Pushing state"), so the newest wins: a state that arrives while an older one is being
    written goes to the panels not written yet, then to those that had the older one, and the older one to no one
    else; a burst of changes (an approval, then its stream starting) costs one pass, not one per change. A state
    that differs from the last one taken only by its version (a change no panel shows, such as a stream's stop
    confirmed after its share stopped) is not written: every panel already shows it.
    """

    _open = {}  # meeting group -> MeetingPanels of the running event loop

    @classmethod
    async def join(cls, group, panel):
        meeting = cls._open.get(group)
        if meeting is None or meeting.loop is not asyncio.get_running_loop():
            meeting = cls._open[group] = cls(group, panel.channel_layer)
        meeting.panels[panel] = None
        try:
            await asyncio.shield(meeting.subscribed)
        except BaseException:
            await meeting.leave(panel)
            raise
        return meeting

    def __init__(self, group, channel_layer):
        self.group, self.channel_layer = group, channel_layer
        self.loop = asyncio.get_running_loop()
        self.panels = {}  # the open panels, in the order they joined (a dict as an ordered set)
        self.channel = None
        self.latest = None  # the newest state received that panels show differently from the one before
        self.newest_version = -1  # of any state received: an older one arriving late is never written
        self.arrived = asyncio.Event()
        self.subscribed = self.loop.create_future()
        self.listening = self.loop.create_task(self._listen())
        self.writing = self.loop.create_task(self._write_states())

    async def leave(self, panel):
        self.panels.pop(panel, None)
        if self.panels or self._open.get(self.group) is not self:
            return
        del self._open[self.group]
        self.writing.cancel()
        self.listening.cancel()  # the channel layer unsubscribes the channel when its receive is cancelled
        if self.channel is not None:
            await self.channel_layer.group_discard(self.group, self.channel)

    async def _listen(self):
        try:
            self.channel = await self.channel_layer.new_channel()
            await self.channel_layer.group_add(self.group, self.channel)
        except Exception as exc:  # noqa: BLE001 - the panels waiting to join get it (Redis unreachable)
            self.subscribed.set_exception(exc)
            return
        self.subscribed.set_result(None)
        while True:
            message = await self.channel_layer.receive(self.channel)
            state = message.get("state") if message.get("type") == "panel.state" else None
            if state is None:
                log.warning("unexpected message to a meeting's panels", extra={"type": str(message.get("type"))})
            elif state["version"] > self.newest_version:
                self.newest_version = state["version"]
                if not _same_but_version(state, self.latest):
                    self.latest = state
                    self.arrived.set()

    async def _write_states(self):
        while True:
            await self.arrived.wait()
            waiting = deque()
            written = 0
            while True:
                if self.arrived.is_set():  # a newer state: the panels not written yet first, then the others
                    self.arrived.clear()
                    state, departed = self.latest, frozenset(self.latest["departed"])
                    queued = set(waiting)
                    waiting.extend(panel for panel in self.panels if panel not in queued)
                if not waiting:
                    break
                panel = waiting.popleft()
                if panel in self.panels:
                    await self._write(panel, state, departed)
                written += 1
                if written % _PANELS_PER_TURN == 0:
                    await asyncio.sleep(0)

    @staticmethod
    async def _write(panel, state, departed):
        try:
            await panel.send_state(state, departed)
        except Exception:  # one broken socket must not stop the others' states
            log.exception("panel state not sent", extra={"meeting": panel.identity.meeting_uuid})


def _same_but_version(state, other):
    return other is not None and state.keys() == other.keys() and all(
        state[key] == other[key] for key in state if key != "version")


class PanelConsumer(AsyncWebsocketConsumer):
    identity = None
    # From joining the meeting's panels until the snapshot is sent, the newest state pushed is held here, so that
    # nothing reaches the socket before it is accepted and its snapshot, and nothing pushed meanwhile is lost.
    held_state = None
    snapshot_sent = False

    async def dispatch(self, message):
        """As Channels' own, without its close_old_connections() before each message: that runs on daphne's one
        shared sync thread, so a push to 1,000 panels queued 1,000 hops there, in front of the webhooks. This
        consumer's database work goes through _in_pool."""
        handler = getattr(self, get_handler_name(message), None)
        if handler is None:
            raise ValueError(f"No handler for message type {message['type']}")
        await handler(message)

    async def connect(self):
        query = parse_qs(self.scope.get("query_string", b"").decode("latin-1"))
        try:
            self.identity = tokens.read((query.get("token") or [""])[0])
        except tokens.TokenRefused as exc:
            log.info("panel socket refused", extra={"reason": exc.reason})
            await self.accept()
            await self._send({"type": "refused", "code": "token", "message": exc.reason})
            await self.close(code=CLOSE_UNAUTHORIZED)
            return
        self.token_groups = [user_group(self.identity.client_id, self.identity.meeting_uuid, self.identity.viewer_id)]
        for group in self.token_groups:
            await self.channel_layer.group_add(group, self.channel_name)
        self.meeting = await MeetingPanels.join(
            meeting_group(self.identity.client_id, self.identity.meeting_uuid), self)
        await self.accept()
        self._expiry = asyncio.get_running_loop().create_task(self._close_at(self.identity.expires_at))
        try:
            snapshot_version = await self._send_snapshot()
        except Refused as exc:  # the app was removed while its panels were open
            await self._refuse_and_close(exc.message, exc.code)
            return
        self.snapshot_sent = True
        held, self.held_state = self.held_state, None
        if held is not None and held[0]["version"] > snapshot_version:
            await self.send_state(*held)

    async def disconnect(self, code):
        if getattr(self, "_expiry", None) is not None:
            self._expiry.cancel()
        if getattr(self, "meeting", None) is not None:
            await self.meeting.leave(self)
        for group in getattr(self, "token_groups", []):
            await self.channel_layer.group_discard(group, self.channel_name)

    async def _close_at(self, expires_at):
        await asyncio.sleep(max(0.0, expires_at - time.time()))
        await self._refuse_and_close(texts.REFUSED_TOKEN_EXPIRED)

    async def _refuse_and_close(self, reason, code="token", close_code=CLOSE_UNAUTHORIZED):
        log.info("panel socket closed", extra={"meeting": self.identity.meeting_uuid,
                                               "client_id": self.identity.client_id, "reason": reason})
        await self._send({"type": "refused", "code": code, "message": reason})
        await self.close(code=close_code)

    async def _send(self, message):
        await self.send(text_data=json.dumps(message, separators=(",", ":")))

    async def _send_snapshot(self):
        state = await _in_pool(snapshot_for, self.identity)
        await self._send({"type": "state", "state": state, "snapshot": True})
        return state["version"]

    async def receive(self, text_data=None, bytes_data=None):
        if self.identity is None:
            return
        try:
            body = inbound.parse_json_frame(text_data, MAX_FRAME_CHARS)
        except inbound.NotJSON:
            await self._send({"type": "refused", "code": "bad_request", "message": texts.REFUSED_FRAME_NOT_JSON})
            return
        action = body.get("action") if isinstance(body, dict) else None
        if action == "resync":
            await self._send_snapshot()
            return
        if action == "renew":
            await self._renew(body.get("token"))
            return
        try:
            # The token was checked at connect; an old socket must still hold a live one to act.
            tokens.read(self.current_token)
            await _in_pool(panel_dispatch.perform, self.identity, body, "panel_ws", self._address())
        except tokens.TokenRefused as exc:
            await self._send({"type": "refused", "action": action, "code": "token", "message": exc.reason})
            await self.close(code=CLOSE_UNAUTHORIZED)
        except Refused as exc:
            log.info("panel action refused", extra={"meeting": self.identity.meeting_uuid,
                                                    "user": self.identity.viewer_id, "action": str(action)[:40],
                                                    "code": exc.code})
            await self._send({"type": "refused", "action": action, "code": exc.code, "message": exc.message})
        else:
            await self._send({"type": "done", "action": action})

    @property
    def current_token(self):
        if not hasattr(self, "_token"):
            query = parse_qs(self.scope.get("query_string", b"").decode("latin-1"))
            self._token = (query.get("token") or [""])[0]
        return self._token

    async def _renew(self, token):
        """A fresh token for the SAME app, meeting and viewer keeps the socket; anything else is refused."""
        try:
            renewed = tokens.read(token)
        except tokens.TokenRefused as exc:
            await self._send({"type": "refused", "action": "renew", "code": "token", "message": exc.reason})
            return
        if (renewed.client_id, renewed.meeting_uuid, renewed.user_id) != (
            self.identity.client_id, self.identity.meeting_uuid, self.identity.user_id
        ):
            await self._send({"type": "refused", "action": "renew", "code": "token",
                              "message": texts.REFUSED_TOKEN_OTHER_PANEL})
            return
        self._token = token
        self._expiry.cancel()
        self._expiry = asyncio.get_running_loop().create_task(self._close_at(renewed.expires_at))
        await self._send({"type": "done", "action": "renew"})

    def _address(self):
        client = self.scope.get("client") or ("", 0)
        return str(client[0] or "")

    async def send_state(self, state, departed):
        """A state pushed to the meeting (from MeetingPanels); `departed` is the state's departed as a set."""
        if not self.snapshot_sent:
            self.held_state = (state, departed)  # MeetingPanels writes each panel newer states only
            return
        if self.identity.user_id and self.identity.user_id in departed:
            await self._refuse_and_close(texts.REFUSED_DEPARTED, "departed", CLOSE_DEPARTED)
            await self.meeting.leave(self)  # no second refusal while the close handshake runs
            return
        await self.send(text_data=_state_frames.frame(state, self.identity.viewer_id))

    # --- pushes to the viewer's group, from the channel layer ---

    async def panel_transcript(self, event):
        await self._send({"type": "transcript", "share": event["share"], "lines": event["lines"]})

    async def panel_sdk_call(self, event):
        await self._send({"type": "sdk_call", "api": event["api"], "share": event["share"]})
