"""The console's live-streams socket: the signed-in admin's account only, full table on every change.

Authenticated by the console's session cookie (the console is an ordinary web page, not inside Zoom) and
checked against the Origin by the router; anyone without an admin session is closed with 4403 before any data,
and so is an open socket once its session ends: before each push the session is checked again as a page request
checks it (auth.confirmed_admin: signed out, expired or idle, the admin's grant gone, Zoom no longer saying they
are an owner or admin). The socket's pushes are not activity: they keep no idle session alive.
"""

import asyncio
import logging
import time
from collections import deque
from importlib import import_module

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.conf import settings
from django.contrib.sessions.backends.base import UpdateError

from zoomapp import inbound
from zoomapp.console import auth, streams_feed

log = logging.getLogger("zoomapp.console")

REFRESH_SECONDS = 2.0
MAX_FRAME_CHARS = 4096  # the page sends nothing; anything longer is not a request for a fresh table
NOT_SIGNED_IN = 4403


class LiveStreamsConsumer(AsyncJsonWebsocketConsumer):
    async def connect(self):
        session = self.scope.get("session")
        self.session_key = session.session_key if session is not None else None
        admin = await database_sync_to_async(self.admin_still_signed_in)() if self.session_key else None
        if admin is None:
            # Accepted only to close with a code the page understands ("signed out: reload"), sending nothing.
            await self.accept()
            await self.close(code=NOT_SIGNED_IN)
            return
        self.account_id = admin.account_id
        self.signed_in_as, self.session_ended = admin, False
        self.group = streams_feed.account_group(self.account_id)
        self.history, self.version = deque(), 0
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()
        await self.push()
        self.ticker = asyncio.get_running_loop().create_task(self.refresh_periodically())

    async def disconnect(self, code):
        ticker = getattr(self, "ticker", None)
        if ticker is not None:
            ticker.cancel()
        if hasattr(self, "group"):
            await self.channel_layer.group_discard(self.group, self.channel_name)

    async def refresh_periodically(self):
        while True:
            await asyncio.sleep(REFRESH_SECONDS)
            if not await self.push():
                return

    async def console_streams_changed(self, message):
        await self.push()

    async def receive(self, text_data=None, bytes_data=None, **kwargs):
        """The page only listens; a JSON frame just asks for a fresh table (e.g. after waking up). Anything else is
        refused here: Channels' own decoding raised on it and dropped the socket (docs/SECURITY.md "JSON and text from
        outside")."""
        try:
            inbound.parse_json_frame(text_data, MAX_FRAME_CHARS)
        except inbound.NotJSON:
            await self.send_json({"type": "refused", "code": "bad_request", "message": "Send JSON text frames only."})
            return
        await self.push()

    def admin_still_signed_in(self):
        """The session's admin as auth.confirmed_admin checks them, or None once the session ended."""
        session = import_module(settings.SESSION_ENGINE).SessionStore(session_key=self.session_key)
        try:
            admin = auth.confirmed_admin(session, time.time())
            if session.modified:
                session.save()  # the role Zoom confirmed, so the next check does not ask again
        except auth.SessionEnded as ended:
            log.info("console socket closed: session ended", extra={"why": str(ended)})
            return None
        except UpdateError:  # signed out while Zoom was asked
            return None
        return admin

    def still_signed_in(self):
        admin = self.admin_still_signed_in()
        return admin is not None and (admin.user_id, admin.account_id) == (
            self.signed_in_as.user_id, self.signed_in_as.account_id)

    async def push(self):
        """Send the table; False once the socket was closed because its session ended."""
        if self.session_ended:
            return False
        if not await database_sync_to_async(self.still_signed_in)():
            self.session_ended = True
            await self.close(code=NOT_SIGNED_IN)
            return False
        snapshot = await database_sync_to_async(streams_feed.streams_snapshot)(self.account_id)
        streams_feed.with_rates(snapshot, self.history, time.monotonic())
        self.version += 1
        snapshot["version"] = self.version
        await self.send_json(snapshot)
        return True
