"""A misbehaving RTMS server: after correct handshakes it sends malformed frames mixed with good ones.

The simulator has no fault that corrupts frames, so this test plays Zoom's side itself with a few lines written
from docs/ZOOM.md (§3–§4). The client must skip every bad frame, keep its connection (no reconnect), deliver
every good frame, keep answering keep-alives, and log refusals at a bounded rate, not once per frame.
"""

import asyncio
import base64
import json
import logging
import random

import pytest
from websockets.asyncio.server import serve

from rtms.client import Outcome, Phase, StreamClient, StreamSink, Timings, backend_named

STREAM_ID = "0123456789abcdef0123456789abcdef"
MEETING_UUID = "mmmmAAAiAAAAAiAiAiiAii=="
PCM = bytes(range(256)) * 2 + bytes(128)
GOOD_AUDIO = {"msg_type": 14, "content": {"user_id": 0, "data": base64.b64encode(PCM).decode(), "length": 640,
                                          "timestamp": 1}}
HAND_WRITTEN_BAD_FRAMES = [
    "{not json",
    "[1, 2, 3]",
    '"a string"',
    "{}",
    '{"msg_type": "14"}',
    '{"msg_type": true}',
    '{"msg_type": 99}',
    '{"msg_type": -1}',
    '{"msg_type": 14}',
    '{"msg_type": 14, "content": []}',
    '{"msg_type": 14, "content": {"user_id": 0, "timestamp": 5}}',
    '{"msg_type": 14, "content": {"user_id": 0, "timestamp": "5", "data": "AAAA"}}',
    '{"msg_type": 14, "content": {"user_id": "0", "timestamp": 5, "data": "AAAA"}}',
    '{"msg_type": 14, "content": {"user_id": 0, "timestamp": 5, "data": "not base64!"}}',
    '{"msg_type": 17, "content": {"user_id": 1, "timestamp": 5, "data": "no start/end times"}}',
    '{"msg_type": 17, "content": {"user_id": 1, "start_time": 1, "end_time": 2, "timestamp": 5, "data": 7}}',
    '{"msg_type": 6, "event": "join"}',
    '{"msg_type": 6, "event": {"event_type": "3"}}',
    '{"msg_type": 8, "state": "terminated"}',
    '{"msg_type": 4, "status_code": 0}',
    b'\x00\x01binary frame',
]


def random_bad_frames(count, seed):
    """Mutations of valid frames: truncation, byte flips, wrong types, deleted fields (all must be refused)."""
    rng = random.Random(seed)
    frames = []
    while len(frames) < count:
        content = dict(GOOD_AUDIO["content"])
        choice = rng.randrange(5)
        if choice == 0:
            text = json.dumps(GOOD_AUDIO)[: rng.randrange(1, 60)]
        elif choice == 1:
            raw = bytearray(json.dumps(GOOD_AUDIO).encode())
            position = rng.randrange(0, 15)  # inside {"msg_type": 14
            raw[position] = rng.choice([c for c in b'{}[]":,\\\x00\xff' if c != raw[position]])
            text = bytes(raw)
        elif choice == 2:
            del content[rng.choice(["user_id", "data", "timestamp"])]
            text = json.dumps({"msg_type": 14, "content": content})
        elif choice == 3:
            field = rng.choice(["user_id", "timestamp", "data", "user_name"])
            content[field] = rng.choice([[], {}, 1.5, True] + ([None, "x"] if field != "user_name" else []))
            text = json.dumps({"msg_type": 14, "content": content})
        else:
            content["data"] = content["data"][: rng.randrange(1, 40) * 4 - 1] + rng.choice("*?!-")
            text = json.dumps({"msg_type": 14, "content": content})
        frames.append(text)
    return frames


class CountingSink(StreamSink):
    def __init__(self):
        self.audio = []

    def on_audio(self, user_id, user_name, timestamp_ms, pcm):
        self.audio.append((timestamp_ms, pcm))


class MisbehavingZoom:
    """Signaling and media handshakes as in the reference, then a scripted burst on the audio socket."""

    def __init__(self, bad_frames, good_every):
        self.bad_frames = bad_frames
        self.good_every = good_every
        self.good_sent = 0
        self.keepalive_answers = []
        self.signaling_connections = 0
        self.burst_done = asyncio.Event()
        self.ready = asyncio.Event()
        self.url = None

    async def handler(self, ws):
        path = ws.request.path
        async for raw in ws:
            message = json.loads(raw)
            if message.get("msg_type") == 13:
                self.keepalive_answers.append(message)
            elif message.get("msg_type") == 1:
                self.signaling_connections += 1
                await ws.send(json.dumps({"msg_type": 2, "protocol_version": 1, "status_code": 0, "reason": "",
                                          "media_server": {"server_urls": {
                                              "audio": f"{self.url}/media/audio",
                                              "transcript": f"{self.url}/media/transcript"}}}))
            elif message.get("msg_type") == 3:
                await ws.send(json.dumps({"msg_type": 4, "protocol_version": 1, "status_code": 0, "reason": "",
                                          "media_params": message.get("media_params")}))
                if path.endswith("/audio"):
                    asyncio.ensure_future(self.burst(ws))
            elif message.get("msg_type") == 7:
                self.ready.set()

    async def burst(self, ws):
        await self.ready.wait()
        for index, frame in enumerate(self.bad_frames):
            await ws.send(frame)
            if index % self.good_every == 0:
                self.good_sent += 1
                good = json.loads(json.dumps(GOOD_AUDIO))
                good["content"]["timestamp"] = self.good_sent
                await ws.send(json.dumps(good))
        await ws.send(json.dumps({"msg_type": 12, "timestamp": 1732520010000, "sequence": 77}))
        self.burst_done.set()


@pytest.mark.parametrize("backend", ["picows", "websockets"])
async def test_malformed_frames_are_skipped_counted_and_logged_sparingly(backend, caplog):
    bad = HAND_WRITTEN_BAD_FRAMES + random_bad_frames(2000, seed=4)
    zoom = MisbehavingZoom(bad, good_every=10)
    async with serve(zoom.handler, "127.0.0.1", 0) as server:
        port = server.sockets[0].getsockname()[1]
        zoom.url = f"ws://127.0.0.1:{port}"
        sink = CountingSink()
        client = StreamClient(client_id="cid", client_secret="secret", meeting_uuid=MEETING_UUID,
                              rtms_stream_id=STREAM_ID, server_urls=f"{zoom.url}/signaling", sink=sink,
                              timings=Timings(keepalive_interval=30), backend=backend_named(backend))
        with caplog.at_level(logging.WARNING, logger="rtms.client"):
            running = asyncio.ensure_future(client.run())
            await asyncio.wait_for(zoom.burst_done.wait(), 20)
            for _ in range(500):
                if any(answer.get("sequence") == 77 for answer in zoom.keepalive_answers):
                    break
                await asyncio.sleep(0.01)
            assert {"msg_type": 13, "timestamp": 1732520010000, "sequence": 77} in zoom.keepalive_answers
            assert client.phase is Phase.READY and client.counters.reconnects == 0
            assert zoom.signaling_connections == 1
            assert [ts for ts, _ in sink.audio] == list(range(1, zoom.good_sent + 1))
            assert all(pcm == PCM for _, pcm in sink.audio)
            assert client.counters.malformed == len(bad)
            refusal_lines = [r for r in caplog.records if "frame_refused" in r.getMessage()]
            assert 1 <= len(refusal_lines) <= 2, "refusals are logged at a bounded rate, not per frame"
            client.abort()
            assert (await running).outcome is Outcome.ABORTED


class ExplodingSink(StreamSink):
    def __init__(self):
        self.calls = 0

    def on_audio(self, user_id, user_name, timestamp_ms, pcm):
        self.calls += 1
        raise RuntimeError("sink bug")


async def test_a_failing_sink_does_not_cost_the_connection():
    zoom = MisbehavingZoom([HAND_WRITTEN_BAD_FRAMES[0]] * 30, good_every=1)
    async with serve(zoom.handler, "127.0.0.1", 0) as server:
        zoom.url = f"ws://127.0.0.1:{server.sockets[0].getsockname()[1]}"
        sink = ExplodingSink()
        client = StreamClient(client_id="cid", client_secret="secret", meeting_uuid=MEETING_UUID,
                              rtms_stream_id=STREAM_ID, server_urls=f"{zoom.url}/signaling", sink=sink)
        running = asyncio.ensure_future(client.run())
        await asyncio.wait_for(zoom.burst_done.wait(), 20)
        for _ in range(500):
            if zoom.keepalive_answers:
                break
            await asyncio.sleep(0.01)
        assert zoom.keepalive_answers and sink.calls == zoom.good_sent
        assert client.counters.sink_errors == zoom.good_sent and client.counters.reconnects == 0
        client.abort()
        await running
