"""The panel's WebSocket: ws/panel/?token=<panel token>.

Authorise with the signed panel token (minted after the app context was verified), join the app's meeting
group and the user's group, accept, push the snapshot. The socket is closed when its token expires without a
renewal and when Zoom tells us its user left or was removed from the meeting (docs/SECURITY.md). Frames are JSON
actions by name (see panel_dispatch.py) plus "resync" and "renew"; pushes are the full meeting state with its
version, filtered for this viewer.
A refused action gets {"type": "refused", "action", "code", "message"} and changes nothing.
"""

import asyncio
import json
import logging
import time
from urllib.parse import parse_qs

from channels.consumer import get_handler_name
from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer

from zoomapp.consent import panel_dispatch, tokens
from zoomapp.consent.panel_state import StateFrames, snapshot_for
from zoomapp.consent.permissions import Refused
from zoomapp.consent.push import meeting_group, user_group

log = logging.getLogger("zoomapp.consent.ws")

MAX_FRAME_CHARS = 4096
# Off daphne's one shared sync thread: a host's Approve must not queue behind other requests' database work
# (the webhook that confirms the start runs there too).
_in_pool = dict(thread_sensitive=False)
CLOSE_UNAUTHORIZED = 4401  # the token was refused or expired: the panel binds again from a fresh app context
CLOSE_DEPARTED = 4410  # Zoom says this user left or was removed: the panel stops, it does not bind again
# Every panel of this process shares the encodings of the states pushed to its meetings.
_state_frames = StateFrames()


class PanelConsumer(AsyncWebsocketConsumer):
    identity = None

    async def dispatch(self, message):
        """As Channels' own, without its close_old_connections() before each message: that runs on daphne's one
        shared sync thread, so a push to 1,000 panels queued 1,000 hops there, in front of the webhooks. This
        consumer's database work goes through database_sync_to_async, which closes old connections itself."""
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
        self.token_groups = [
            meeting_group(self.identity.client_id, self.identity.meeting_uuid),
            user_group(self.identity.client_id, self.identity.meeting_uuid, self.identity.viewer_id),
        ]
        for group in self.token_groups:
            await self.channel_layer.group_add(group, self.channel_name)
        await self.accept()
        self._expiry = asyncio.get_running_loop().create_task(self._close_at(self.identity.expires_at))
        await self._send_snapshot()

    async def disconnect(self, code):
        if getattr(self, "_expiry", None) is not None:
            self._expiry.cancel()
        for group in getattr(self, "token_groups", []):
            await self.channel_layer.group_discard(group, self.channel_name)

    async def _close_at(self, expires_at):
        await asyncio.sleep(max(0.0, expires_at - time.time()))
        await self._refuse_and_close("the panel token has expired")

    async def _refuse_and_close(self, reason, code="token", close_code=CLOSE_UNAUTHORIZED):
        log.info("panel socket closed", extra={"meeting": self.identity.meeting_uuid,
                                               "client_id": self.identity.client_id, "reason": reason})
        await self._send({"type": "refused", "code": code, "message": reason})
        await self.close(code=close_code)

    async def _send(self, message):
        await self.send(text_data=json.dumps(message, separators=(",", ":")))

    async def _send_snapshot(self):
        state = await database_sync_to_async(snapshot_for, **_in_pool)(self.identity)
        await self._send({"type": "state", "state": state, "snapshot": True})

    async def receive(self, text_data=None, bytes_data=None):
        if self.identity is None:
            return
        if text_data is None or len(text_data) > MAX_FRAME_CHARS:
            await self._send({"type": "refused", "code": "bad_request", "message": "Send one JSON action per frame."})
            return
        try:
            body = json.loads(text_data)
        except ValueError:
            body = None
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
            perform = database_sync_to_async(panel_dispatch.perform, **_in_pool)
            await perform(self.identity, body, "panel_ws", self._address())
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
                              "message": "That token is for another panel."})
            return
        self._token = token
        self._expiry.cancel()
        self._expiry = asyncio.get_running_loop().create_task(self._close_at(renewed.expires_at))
        await self._send({"type": "done", "action": "renew"})

    def _address(self):
        client = self.scope.get("client") or ("", 0)
        return str(client[0] or "")

    # --- pushes from the channel layer ---

    async def panel_state(self, event):
        if self.identity.user_id and self.identity.user_id in event["state"]["departed"]:
            await self._refuse_and_close("you are no longer in this meeting", "departed", CLOSE_DEPARTED)
            return
        await self.send(text_data=_state_frames.frame(event["state"], self.identity.viewer_id))

    async def panel_transcript(self, event):
        await self._send({"type": "transcript", "share": event["share"], "lines": event["lines"]})

    async def panel_sdk_call(self, event):
        await self._send({"type": "sdk_call", "api": event["api"], "share": event["share"]})
