"""A minimal RTMS server (docs/ZOOM.md §3–§4 wire format) whose media sockets send whatever frames a test scripts,
malformed ones included; the simulator only sends well-formed frames. Runs its own asyncio loop in a thread.

    server = HostileRtmsServer(frames=[b"not json", valid_transcript("hi"), ...]).start()
    server.signaling_url        # what a rtms_started webhook carries in server_urls
    server.finish(stop_reason=6)  # STREAM_STATE_UPDATE terminated, SESSION_STATE_UPDATE stopped, close
"""

import asyncio
import base64
import json
import threading

import websockets

from tests.processes import free_port


def valid_transcript(text, timestamp, user_id=16778240, user_name="Ana"):
    return json.dumps({"msg_type": 17, "content": {"user_id": user_id, "user_name": user_name,
                                                   "start_time": timestamp - 500, "end_time": timestamp,
                                                   "timestamp": timestamp, "language": 9, "data": text}})


def valid_audio(timestamp, pcm=bytes(640), user_id=0):
    return json.dumps({"msg_type": 14, "content": {"user_id": user_id, "timestamp": timestamp,
                                                   "data": base64.b64encode(pcm).decode()}})


MALFORMED = [
    b"not json at all (a binary frame)",
    "not json at all",
    "{}",
    "[1, 2, 3]",
    '{"msg_type": "17"}',
    '{"msg_type": 17}',
    '{"msg_type": 17, "content": {"user_id": "nobody", "data": 5}}',
    '{"msg_type": 14, "content": {"user_id": 0, "data": "!!! not base64 !!!", "timestamp": 1}}',
    '{"msg_type": 14, "content": "a string"}',
    '{"msg_type": 999, "content": {}}',
    '{"msg_type": 6, "event": "nonsense"}',
    '{"msg_type": 8, "state": "x"}',
    '{"msg_type": 1e400}',
    "[" * 5000 + "]" * 5000,
    '{"msg_type": 12}',
    "\udcff".encode("utf-8", "surrogatepass"),
]


class HostileRtmsServer:
    def __init__(self, frames, media_base=None):
        self.frames = list(frames)
        self.port = free_port()
        self.signaling_url = f"ws://127.0.0.1:{self.port}/signaling"
        # Where the signaling reply sends the media sockets (a hostile server may name any host).
        self.media_base = media_base or f"ws://127.0.0.1:{self.port}"
        self.loop = asyncio.new_event_loop()
        self.ready = None
        self.signaling = None
        self.handshakes = []
        self.keepalive_answers = 0
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    def start(self):
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._serve(), self.loop).result(10)
        return self

    async def _serve(self):
        self.ready = asyncio.Event()
        self.server = await websockets.serve(self._handle, "127.0.0.1", self.port, max_size=None)

    async def _handle(self, ws):
        path = ws.request.path
        request = json.loads(await ws.recv())
        self.handshakes.append(request)
        if path == "/signaling":
            self.signaling = ws
            await ws.send(json.dumps({"msg_type": 2, "protocol_version": 1, "status_code": 0, "reason": "",
                                      "media_server": {"server_urls": {
                                          kind: f"{self.media_base}/media/{kind}" for kind in
                                          ("audio", "video", "deskshare", "transcript", "chat")}}}))
        else:
            await ws.send(json.dumps({"msg_type": 4, "protocol_version": 1, "status_code": 0, "reason": "",
                                      "payload_encrypted": False}))
        if path == "/media/transcript":
            await self.ready.wait()
            for frame in self.frames:
                await ws.send(frame)
                await ws.send(json.dumps({"msg_type": 12, "timestamp": 1}))  # keep-alives keep coming
        async for message in ws:
            decoded = json.loads(message)
            if decoded.get("msg_type") == 7:
                await ws.send(json.dumps({"msg_type": 8, "state": 1, "timestamp": 1}))
                self.ready.set()
            elif decoded.get("msg_type") == 13:
                self.keepalive_answers += 1

    def finish(self, stop_reason=6):
        async def stop():
            if self.signaling is not None:
                await self.signaling.send(json.dumps({"msg_type": 8, "state": 4, "reason": stop_reason,
                                                      "timestamp": 2}))
                await self.signaling.send(json.dumps({"msg_type": 9, "state": 5, "stop_reason": stop_reason,
                                                      "timestamp": 2, "rtms_session_id": "s1"}))
                await self.signaling.close()

        asyncio.run_coroutine_threadsafe(stop(), self.loop).result(10)

    def close(self):
        async def shutdown():
            self.server.close()
            await self.server.wait_closed()

        asyncio.run_coroutine_threadsafe(shutdown(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
