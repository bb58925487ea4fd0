"""The console's live-streams socket: the signed-in admin's account only, full table on every change.

Authenticated by the console's session cookie (the console is an ordinary web page, not inside Zoom) and
checked against the Origin by the router; anyone without an admin session is closed with 4403 before any data.
"""

import asyncio
import time
from collections import deque

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from zoomapp.console import auth, live

REFRESH_SECONDS = 2.0
NOT_SIGNED_IN = 4403


class LiveStreamsConsumer(AsyncJsonWebsocketConsumer):
    async def connect(self):
        session = self.scope.get("session")
        data = await database_sync_to_async(session.get)(auth.SESSION_KEY) if session is not None else None
        admin = None
        if isinstance(data, dict):
            try:
                admin = auth.ConsoleAdmin(**data)
            except TypeError:
                admin = None
        if admin is None or admin.role not in auth.ADMIN_ROLES or not admin.account_id:
            # Accepted only to close with a code the page understands ("signed out: reload"), sending nothing.
            await self.accept()
            await self.close(code=NOT_SIGNED_IN)
            return
        self.account_id = admin.account_id
        self.group = live.account_group(self.account_id)
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
            await self.push()

    async def console_streams_changed(self, message):
        await self.push()

    async def receive_json(self, content, **kwargs):
        # The page only listens; anything it sends just asks for a fresh table (e.g. after waking up).
        await self.push()

    async def push(self):
        snapshot = await database_sync_to_async(live.streams_snapshot)(self.account_id)
        live.with_rates(snapshot, self.history, time.monotonic())
        self.version += 1
        snapshot["version"] = self.version
        await self.send_json(snapshot)
