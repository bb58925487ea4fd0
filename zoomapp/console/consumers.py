"""The console's live-streams socket: the signed-in admin's account only, full table on every change.

Authenticated by the console's session cookie (the console is an ordinary web page, not inside Zoom) and
checked against the Origin by the router; anyone without an admin session is closed with 4403 before any data,
and so is an open socket once its session ends: before each push the session is checked again without asking Zoom
(auth.session_holds: signed out, expired or idle, the admin's grant gone), and when the role is due to be confirmed
(auth.role_due: at most once per CONSOLE_ROLE_RECHECK_SECONDS, a minute after Zoom could not answer) Zoom is asked
whether they are still an owner or admin. That call can take Zoom's timeout, so it runs on a thread of its own, not
on the one thread every socket's database calls share. The socket's pushes are not activity: they keep no idle
session alive.
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
        self.checking = asyncio.Lock()
        admin = await self.admin_still_signed_in() if self.session_key else None
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

    async def admin_still_signed_in(self):
        """The session's admin, or None once the session ended."""
        async with self.checking:  # a push and the ticker's at once ask Zoom once
            admin, role_due = await database_sync_to_async(self.checked_session)(ask_zoom=False)
            if role_due:
                admin, _ = await database_sync_to_async(self.checked_session, thread_sensitive=False)(ask_zoom=True)
        return admin

    def checked_session(self, *, ask_zoom):
        """(the session's admin or None once it ended, whether Zoom is due to confirm the role); Zoom is asked only
        when `ask_zoom`."""
        session = import_module(settings.SESSION_ENGINE).SessionStore(session_key=self.session_key)
        now = time.time()
        try:
            admin = auth.session_holds(session, now)
            role_due = auth.role_due(session, now)
            if ask_zoom and role_due:
                admin, role_due = auth.confirmed_admin(session, now), False
                session.save()  # the role Zoom confirmed, or when it could not answer: the next push does not ask
        except auth.SessionEnded as ended:
            log.info("console socket closed: session ended", extra={"why": str(ended)})
            return None, False
        except UpdateError:  # signed out while Zoom was asked
            return None, False
        return admin, role_due

    async def still_signed_in(self):
        admin = await self.admin_still_signed_in()
        return admin is not None and (admin.user_id, admin.account_id) == (
            self.signed_in_as.user_id, self.signed_in_as.account_id)

    async def push(self):
        """Send the table; False once the socket was closed because its session ended."""
        if self.session_ended:
            return False
        if not await self.still_signed_in():
            self.session_ended = True
            await self.close(code=NOT_SIGNED_IN)
            return False
        snapshot = await database_sync_to_async(streams_feed.streams_snapshot)(self.account_id)
        streams_feed.with_rates(snapshot, self.history, time.monotonic())
        self.version += 1
        snapshot["version"] = self.version
        await self.send_json(snapshot)
        return True
