"""RTMS receive benchmark: N concurrent real-time streams (20 ms L16 audio + transcripts) held in ONE process,
by our asyncio client (rtms.client) and by Zoom's official SDK (PyPI `rtms`, one EventLoop thread), side by side.

    .venv/bin/python bench/rtms_receive.py                       # N = 200, 500, 1000; 60 s measured each
    .venv/bin/python bench/rtms_receive.py --streams 50 --duration 10 --warmup 3   # a short run
    .venv/bin/python bench/rtms_receive.py --server zoomsim      # load from the Zoom simulator instead

Per N and client it prints CPU seconds per stream-minute, RSS per stream, frames lost, p50/p99 lag (server send
time → sink) and our/SDK CPU ratio. The server and the client run in separate processes pinned to different
cores with taskset (server core 0, client core 1).

Load servers:
* ``builtin`` (default): a small picows RTMS server in this file, faithful to the reference's wire format
  (signature check, per-type media URLs, CLIENT_READY_ACK gate, keep-alive every 10 s with sequence, state
  updates). It stamps each audio frame with its scheduled send time, so lag includes any server lateness.
* ``zoomsim``: the project's simulator (``python -m zoomsim``), driven through its /_sim control API.

Both clients feed the same sink work per frame: append the PCM to a per-stream buffer that is written to a file
every 0.2 s of audio, batch transcript lines, track lag and gaps. Nothing is logged per frame. Our client runs
as the session host runs it (rtms/host.py): on uvloop, with paced polling and the quieter garbage collector of
rtms/client/pacing.py.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import hmac
import json
import os
import random
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

CLIENT_ID = "benchClientId"
CLIENT_SECRET = "benchClientSecret"
FRAME_MS = 20
PCM_BYTES = 640                  # 20 ms of 16 kHz mono L16
TRANSCRIPT_EVERY_MS = 5000       # one utterance per stream every 5 s
KEEPALIVE_S = 10.0
LAG_BUCKETS = 10000              # 1 ms buckets, the last one catches everything above

# ================================================================================================================
# Built-in load server (runs in its own process: `rtms_receive.py _serve`)


def _serve(args: argparse.Namespace) -> None:
    import orjson
    import picows
    from picows import WSListener, WSMsgType, WSUpgradeResponse, WSUpgradeResponseWithListener

    n = args.streams
    streams = [{"meeting_uuid": f"bench{i:05d}AAAAAAAAAAAAA==", "rtms_stream_id": f"{i:032x}"} for i in range(n)]
    by_id = {s["rtms_stream_id"]: s for s in streams}
    for index, stream in enumerate(streams):
        stream.update(index=index, signaling=None, media={}, ready=False)
    rng = random.Random(7)
    pcm = bytes(rng.getrandbits(8) for _ in range(PCM_BYTES))
    audio_head = b'{"msg_type":14,"content":{"user_id":0,"data":"' + base64.b64encode(pcm) + \
        b'","length":640,"timestamp":'
    sockets: list = []
    topology_changed = [False]
    stats = {"audio_sent": 0, "keepalive_sent": 0, "keepalive_answered": 0, "late_ticks": 0, "max_late_ms": 0}

    def send_json(transport, message) -> None:
        transport.send(WSMsgType.TEXT, orjson.dumps(message))

    class Conn(WSListener):
        def __init__(self, stream, kind):
            self.stream = stream
            self.kind = kind  # "signaling" or a media key
            self.transport = None

        def on_ws_connected(self, transport):
            self.transport = transport
            sockets.append(self)

        def on_ws_disconnected(self, transport):
            topology_changed[0] = True
            if self in sockets:
                sockets.remove(self)
            if self.stream["signaling"] is self:
                self.stream["signaling"] = None
                self.stream["ready"] = False
            if self.stream["media"].get(self.kind) is self:
                del self.stream["media"][self.kind]

        def refuse(self, msg_type, status, reason):
            send_json(self.transport, {"msg_type": msg_type, "protocol_version": 1, "status_code": status,
                                       "reason": reason})
            self.transport.send_close()
            self.transport.disconnect()

        def on_ws_frame(self, transport, frame):
            if frame.msg_type == WSMsgType.CLOSE:
                transport.send_close()
                transport.disconnect()
                return
            if frame.msg_type != WSMsgType.TEXT and frame.msg_type != WSMsgType.BINARY:
                return  # Zoom's C SDK sends its JSON in binary frames: accept both
            try:
                msg = orjson.loads(frame.get_payload_as_bytes())
                msg_type = msg["msg_type"]
            except Exception:  # noqa: BLE001 - not an RTMS JSON message: skipped, as the SDK does
                return
            stream = self.stream
            if msg_type == 13:
                stats["keepalive_answered"] += 1
            elif msg_type == 1 and self.kind == "signaling":
                expected = hmac.new(CLIENT_SECRET.encode(), f"{CLIENT_ID},{stream['meeting_uuid']},"
                                    f"{stream['rtms_stream_id']}".encode(), hashlib.sha256).hexdigest()
                if msg.get("signature") != expected:
                    return self.refuse(2, 3, "invalid signature")
                if stream["signaling"] is not None:
                    return self.refuse(2, 8, "duplicate signal request")
                stream["signaling"] = self
                base = f"ws://{args.host}:{args.port}/media/{stream['rtms_stream_id']}"
                send_json(transport, {"msg_type": 2, "protocol_version": 1, "sequence": 0, "status_code": 0,
                                      "reason": "", "media_server": {"server_urls": {
                                          key: f"{base}/{key}" for key in
                                          ("audio", "video", "deskshare", "transcript", "chat", "all")}}})
            elif msg_type == 3 and self.kind != "signaling":
                if self.kind in stream["media"]:
                    return self.refuse(4, 16, "duplicate media connection")
                stream["media"][self.kind] = self
                send_json(transport, {"msg_type": 4, "protocol_version": 1, "status_code": 0, "reason": "",
                                      "sequence": 0, "payload_encrypted": False,
                                      "media_params": msg.get("media_params") or {}})
            elif msg_type == 7 and stream["signaling"] is self:
                stream["ready"] = True
                topology_changed[0] = True
                now = int(time.time() * 1000)
                send_json(transport, {"msg_type": 8, "state": 1, "timestamp": now})
                send_json(transport, {"msg_type": 9, "state": 2, "timestamp": now,
                                      "rtms_session_id": stream["rtms_stream_id"]})
            elif msg_type == 21 and stream["signaling"] is self:
                now = int(time.time() * 1000)
                send_json(transport, {"msg_type": 22, "rtms_stream_id": stream["rtms_stream_id"],
                                      "status_code": 0, "reason": "OK", "timestamp": now})
                send_json(transport, {"msg_type": 8, "state": 4, "reason": 20, "timestamp": now})
                transport.send_close()
                transport.disconnect()

    def route(request):
        parts = request.path.decode("latin-1").split("?")[0].strip("/").split("/")
        if len(parts) >= 2 and parts[1] in by_id:
            stream = by_id[parts[1]]
            if parts[0] == "signaling" and len(parts) == 2:
                return Conn(stream, "signaling")
            if parts[0] == "media" and len(parts) == 3:
                return Conn(stream, parts[2])
        return WSUpgradeResponseWithListener(WSUpgradeResponse.create_error_response(404), None)

    transcript_period = TRANSCRIPT_EVERY_MS // FRAME_MS
    transcript_buckets: list[list[dict]] = [[] for _ in range(transcript_period)]
    for stream in streams:
        transcript_buckets[(stream["index"] * 7) % transcript_period].append(stream)
    audio_targets: list = []  # rebuilt when a stream becomes ready or a socket goes: the tick loop stays tight

    def audio_target(stream):
        if not stream["ready"]:
            return None
        return stream["media"].get("audio") or stream["media"].get("all")

    async def tick_audio(loop):
        start_ms = int(time.time() * 1000) // FRAME_MS * FRAME_MS + FRAME_MS
        tick = 0
        while True:
            due_ms = start_ms + tick * FRAME_MS
            wait = due_ms / 1000 - time.time()
            if wait > 0:
                await asyncio.sleep(wait)
            elif wait < -FRAME_MS / 1000:
                stats["late_ticks"] += 1
                stats["max_late_ms"] = max(stats["max_late_ms"], int(-wait * 1000))
            if topology_changed[0] or tick % 50 == 0:
                for conn in list(sockets):  # clients gone without a word
                    if conn.transport.underlying_transport.is_closing():
                        conn.on_ws_disconnected(conn.transport)
                topology_changed[0] = False
                audio_targets[:] = [t.transport for t in map(audio_target, streams) if t is not None]
            frame = audio_head + str(due_ms).encode() + b"}}"
            for transport in audio_targets:
                transport.send(WSMsgType.TEXT, frame)
            stats["audio_sent"] += len(audio_targets)
            for stream in transcript_buckets[-tick % transcript_period]:
                media = stream["media"]
                target = (media.get("transcript") or media.get("all")) if stream["ready"] else None
                if target is not None:
                    send_json(target.transport, {"msg_type": 17, "content": {
                        "user_id": 16778240, "user_name": "Ana", "start_time": due_ms - 2400,
                        "end_time": due_ms, "timestamp": due_ms, "language": 9,
                        "data": "The quarterly numbers look good, let us move on to hiring."}})
            tick += 1

    async def keepalives():
        sequence = 0
        while True:
            await asyncio.sleep(KEEPALIVE_S)
            sequence += 1
            now = int(time.time() * 1000)
            message = orjson.dumps({"msg_type": 12, "timestamp": now, "sequence": sequence})
            for conn in list(sockets):
                conn.transport.send(WSMsgType.TEXT, message)
                stats["keepalive_sent"] += 1

    async def main():
        server = await picows.ws_create_server(route, args.host, args.port, max_frame_size=1 << 20,
                                               websocket_handshake_timeout=60)
        port = server.sockets[0].getsockname()[1]
        args.port = port
        Path(args.ready_file).write_text(json.dumps({
            "streams": [{"meeting_uuid": s["meeting_uuid"], "rtms_stream_id": s["rtms_stream_id"],
                         "server_urls": f"ws://{args.host}:{port}/signaling/{s['rtms_stream_id']}"}
                        for s in streams]}))
        loop = asyncio.get_running_loop()
        stop = loop.create_future()
        loop.add_signal_handler(signal.SIGTERM, stop.set_result, None)
        tasks = [loop.create_task(tick_audio(loop)), loop.create_task(keepalives())]
        await stop
        for task in tasks:
            task.cancel()
        Path(args.ready_file + ".stats").write_text(json.dumps(stats))

    from rtms.client.pacing import quiet_garbage_collector

    quiet_garbage_collector()  # its collection pauses would show as lag on both clients
    _use_uvloop_if_asked(args.loop)
    asyncio.run(main())


# ================================================================================================================
# The sink work both clients do per frame (mirrors the real sink's buffering; no I/O per frame)


class Measurements:
    """Shared by every stream of a run: lag histogram, gap counts, totals. Plain ints and one list."""

    def __init__(self) -> None:
        self.lag_histogram = [0] * LAG_BUCKETS
        self.audio_frames = 0
        self.lost_frames = 0
        self.transcripts = 0
        self.pending_transcripts: list[tuple] = []

    def reset(self) -> None:
        self.lag_histogram = [0] * LAG_BUCKETS
        self.audio_frames = self.lost_frames = self.transcripts = 0

    def percentile(self, fraction: float) -> float | None:
        total = sum(self.lag_histogram)
        if not total:
            return None
        threshold = total * fraction
        running = 0
        for lag_ms, count in enumerate(self.lag_histogram):
            running += count
            if running >= threshold:
                return float(lag_ms)
        return float(LAG_BUCKETS)


AUDIO_FLUSH_BYTES = PCM_BYTES * 10  # 0.2 s of audio per write


class StreamStore:
    """One stream's audio file and buffer: PCM is copied into a fixed buffer and written every 0.2 s."""

    __slots__ = ("fd", "buffer", "view", "fill", "last_ts", "m")

    def __init__(self, directory: str, name: str, measurements: Measurements) -> None:
        self.fd = os.open(os.path.join(directory, f"{name}.pcm"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        self.buffer = bytearray(AUDIO_FLUSH_BYTES)
        self.view = memoryview(self.buffer)
        self.fill = 0
        self.last_ts = 0
        self.m = measurements

    def audio(self, timestamp_ms: int, pcm) -> None:
        m = self.m
        lag = int(time.time() * 1000) - timestamp_ms
        m.lag_histogram[lag if 0 <= lag < LAG_BUCKETS else (0 if lag < 0 else LAG_BUCKETS - 1)] += 1
        m.audio_frames += 1
        if self.last_ts and timestamp_ms - self.last_ts > FRAME_MS:
            m.lost_frames += (timestamp_ms - self.last_ts) // FRAME_MS - 1
        if timestamp_ms > self.last_ts:
            self.last_ts = timestamp_ms
        size = len(pcm)
        end = self.fill + size
        if end > AUDIO_FLUSH_BYTES:
            os.write(self.fd, self.view[:self.fill])
            self.fill, end = 0, size
        self.view[self.fill:end] = pcm
        self.fill = end

    def transcript(self, user_id, user_name, start_ms, end_ms, language, text) -> None:
        self.m.transcripts += 1
        self.m.pending_transcripts.append((self.fd, user_id, user_name, start_ms, end_ms, language, text))

    def close(self) -> None:
        os.close(self.fd)


def _flush_transcripts(measurements: Measurements) -> None:
    """What the real sink does once a second: one batched write for every pending line."""
    measurements.pending_transcripts.clear()


def _rss_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _cpu_seconds() -> float:
    times = os.times()
    return times.user + times.system


def _use_uvloop_if_asked(loop_name: str) -> None:
    if loop_name == "uvloop":
        import uvloop
        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())


# ================================================================================================================
# Our client (`rtms_receive.py _ours`)


def _run_ours(args: argparse.Namespace) -> None:
    from rtms.client import MediaType, Phase, StreamClient, StreamSink, backend_named
    from rtms.client.pacing import TICK, Pacer, quiet_garbage_collector

    streams = json.loads(Path(args.ready_file).read_text())["streams"][:args.streams]
    measurements = Measurements()
    store_dir = tempfile.mkdtemp(prefix="rtms-bench-ours-")

    class BenchSink(StreamSink):
        def __init__(self, store: StreamStore) -> None:
            self.store = store

        def on_audio(self, user_id, user_name, timestamp_ms, pcm):
            self.store.audio(timestamp_ms, pcm)

        def on_transcript(self, user_id, user_name, start_ms, end_ms, timestamp_ms, language, text):
            self.store.transcript(user_id, user_name, start_ms, end_ms, language, text)

    quiet_garbage_collector()  # as the session host does

    async def main():
        baseline_rss = _rss_bytes()
        backend = backend_named(args.backend)
        clients = []
        stores = []
        tasks = []
        for i, stream in enumerate(streams):
            store = StreamStore(store_dir, stream["rtms_stream_id"], measurements)
            stores.append(store)
            client = StreamClient(client_id=CLIENT_ID, client_secret=CLIENT_SECRET,
                                  meeting_uuid=stream["meeting_uuid"], rtms_stream_id=stream["rtms_stream_id"],
                                  server_urls=stream["server_urls"], sink=BenchSink(store),
                                  media=MediaType.AUDIO | MediaType.TRANSCRIPT, backend=backend)
            clients.append(client)
            tasks.append(asyncio.ensure_future(client.run()))
            if i % 20 == 19:
                await asyncio.sleep(0.1)  # 200 stream starts a second, as a burst of webhooks would bring
        deadline = time.monotonic() + 60 + len(streams) / 10  # a loaded machine handshakes slowly
        while sum(c.phase is Phase.READY for c in clients) < len(clients) and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        ready = sum(c.phase is Phase.READY for c in clients)

        async def flusher():
            while True:
                await asyncio.sleep(1)
                _flush_transcripts(measurements)

        flush_task = asyncio.ensure_future(flusher())
        # As the session host runs the loop (rtms/host.py): paced polling once every stream is connected.
        Pacer(asyncio.get_running_loop(), TICK, lambda: None, lambda: True).start()
        await asyncio.sleep(args.warmup)
        measurements.reset()
        reconnects_before = sum(c.counters.reconnects for c in clients)
        cpu0, wall0 = _cpu_seconds(), time.monotonic()
        await asyncio.sleep(args.duration)
        cpu1, wall1 = _cpu_seconds(), time.monotonic()
        rss = _rss_bytes()
        result = _result(args, measurements, ready, cpu1 - cpu0, wall1 - wall0, rss - baseline_rss)
        result["reconnects"] = sum(c.counters.reconnects for c in clients) - reconnects_before
        result["malformed"] = sum(c.counters.malformed for c in clients)
        result["keepalives_answered"] = sum(c.counters.keepalives for c in clients)
        flush_task.cancel()
        for client in clients:
            client.abort()
        await asyncio.gather(*tasks, return_exceptions=True)
        for store in stores:
            store.close()
        Path(args.result_file).write_text(json.dumps(result))

    _use_uvloop_if_asked(args.loop)
    try:
        asyncio.run(main())
    finally:
        shutil.rmtree(store_dir, ignore_errors=True)


def _result(args, measurements: Measurements, ready: int, cpu: float, wall: float, rss_delta: int) -> dict:
    """CPU is normalised by the audio actually received (3000 frames = one stream-minute), so a server that
    cannot deliver the full rate, or streams that never joined, do not flatter either client."""
    n = args.streams
    frames_per_stream = int(wall * 1000 / FRAME_MS)
    stream_minutes = measurements.audio_frames / (60_000 / FRAME_MS)
    return {
        "streams": n, "ready": ready, "wall_s": wall, "cpu_s": cpu,
        "cpu_per_stream_minute": cpu / stream_minutes if stream_minutes else 0.0,
        "cores": cpu / wall,
        # Every stream's client, sink and file exist whether or not it joined: divide by all of them.
        "rss_per_stream_kib": rss_delta / n / 1024 if n else 0.0,
        "audio_frames": measurements.audio_frames, "expected_frames": n * frames_per_stream,
        # Gaps inside received streams, plus everything a stream that never joined should have carried.
        "lost_frames": measurements.lost_frames + (n - ready) * frames_per_stream,
        "delivered_pct": 100.0 * measurements.audio_frames / (n * frames_per_stream) if n else 0.0,
        "transcripts": measurements.transcripts,
        "lag_p50_ms": measurements.percentile(0.50), "lag_p99_ms": measurements.percentile(0.99),
    }


# ================================================================================================================
# Zoom's official SDK (`rtms_receive.py _sdk`): one EventLoop thread holds every client


def _run_sdk(args: argparse.Namespace) -> None:
    workdir = tempfile.mkdtemp(prefix="rtms-bench-sdk-")
    os.makedirs(os.path.join(workdir, "logs"), exist_ok=True)
    os.chdir(workdir)  # the C SDK writes its native log under ./logs
    # Our Django app is also called `rtms`: import Zoom's package from site-packages, not from the project root.
    sys.path[:] = [entry for entry in sys.path if entry and Path(entry).resolve() != ROOT]
    sys.modules.pop("rtms", None)
    import rtms

    streams = json.loads(Path(args.ready_file).read_text())["streams"][:args.streams]
    measurements = Measurements()
    joined = [0]
    stores = []
    loop = rtms.EventLoop(name="bench-sdk")
    clients = []
    baseline_rss = _rss_bytes()  # after imports, before any per-stream state (Python or C)
    loop.start()
    for index, stream in enumerate(streams):
        store = StreamStore(workdir, stream["rtms_stream_id"], measurements)
        stores.append(store)
        client = rtms.Client()
        client.enable_audio(True)
        client.enable_transcript(True)
        client.set_audio_params(rtms.AudioParams(content_type=2, codec=1, sample_rate=1, channel=1, data_opt=1,
                                                 duration=20, frame_size=320))

        def on_audio(data, size, timestamp, metadata, store=store):
            store.audio(timestamp, data)

        def on_transcript(data, size, timestamp, metadata, store=store):
            store.transcript(metadata.userId, metadata.userName, metadata.startTs, metadata.endTs, 9, data)

        def on_join(reason):
            if reason == 0:
                joined[0] += 1

        client.on_audio_data(on_audio)
        client.on_transcript_data(on_transcript)
        client.on_join_confirm(on_join)
        loop.add(client)
        client.join(meeting_uuid=stream["meeting_uuid"], rtms_stream_id=stream["rtms_stream_id"],
                    server_urls=stream["server_urls"], client=CLIENT_ID, secret=CLIENT_SECRET)
        clients.append(client)
        if index % 20 == 19:
            time.sleep(0.1)  # the same pacing as our client's run
    deadline = time.monotonic() + 60 + len(streams) / 10
    while joined[0] < len(streams) and time.monotonic() < deadline:
        time.sleep(0.1)

    stop_flusher = threading.Event()

    def flusher():
        while not stop_flusher.wait(1):
            _flush_transcripts(measurements)

    threading.Thread(target=flusher, daemon=True).start()
    time.sleep(args.warmup)
    measurements.reset()
    cpu0, wall0 = _cpu_seconds(), time.monotonic()
    time.sleep(args.duration)
    cpu1, wall1 = _cpu_seconds(), time.monotonic()
    rss = _rss_bytes()
    result = _result(args, measurements, joined[0], cpu1 - cpu0, wall1 - wall0, rss - baseline_rss)
    stop_flusher.set()
    Path(args.result_file).write_text(json.dumps(result))
    sys.stdout.flush()
    shutil.rmtree(workdir, ignore_errors=True)
    os._exit(0)  # leave() from outside the SDK thread hangs or sends nothing (docs/ZOOM.md §13.7)


# ================================================================================================================
# zoomsim as the load source


def _zoomsim_streams(sim, n: int, workdir: Path) -> list[dict]:
    """Register the bench app, start n one-person meetings with a stream each, return the stream join data."""
    import requests

    app = {"name": "bench", "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET,
           "webhook_secret_token": "benchWebhookSecret", "event_url": _start_webhook_sink(workdir),
           "home_url": "http://127.0.0.1:9/home", "redirect_url": "http://127.0.0.1:9/cb",
           "account_id": "benchAccount", "media_types": ["audio", "transcript"]}
    response = sim.post("/_sim/apps", json=app)
    assert response.status_code in (200, 201), response.text
    streams = []
    http = requests.Session()
    for i in range(n):
        meeting = http.post(sim.http_url + "/_sim/meetings", timeout=30, json={
            "topic": f"bench {i}", "host": {"name": f"Host {i}", "account_id": "benchAccount"},
            "participants": [], "settings": {"share_with_apps": True, "require_host_approval": False},
            "start": True}).json()
        stream = http.post(sim.http_url + f"/_sim/meetings/{meeting['id']}/streams", timeout=30,
                           json={"client_id": CLIENT_ID, "started_by": "host"}).json()
        streams.append({"meeting_uuid": meeting["uuid"], "rtms_stream_id": stream["id"],
                        "server_urls": f"{sim.rtms_url}/signaling/{stream['id']}", "meeting_id": meeting["id"]})
    return streams


def _start_webhook_sink(workdir: Path) -> str:
    """A tiny endpoint answering Zoom's URL validation and acknowledging every delivery."""
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = json.loads(self.rfile.read(int(self.headers.get("content-length") or 0)) or b"{}")
            answer = b"{}"
            if body.get("event") == "endpoint.url_validation":
                token = body["payload"]["plainToken"]
                answer = json.dumps({"plainToken": token, "encryptedToken": hmac.new(
                    b"benchWebhookSecret", token.encode(), hashlib.sha256).hexdigest()}).encode()
            try:
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the simulator gave up on this delivery (it is shutting down)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{server.server_address[1]}/webhook"


def _zoomsim_speaker(sim, streams: list[dict], stop: threading.Event) -> None:
    """Make each meeting's host say a line every TRANSCRIPT_EVERY_MS, so transcripts flow."""
    import requests

    http = requests.Session()
    while not stop.is_set():
        started = time.monotonic()
        for stream in streams:
            if stop.is_set():
                return
            try:
                meeting = stream["meeting_id"]
                http.post(sim.http_url + f"/_sim/meetings/{meeting}/speak", timeout=5,
                          json={"key": "p1", "text": "The quarterly numbers look good."})
            except requests.RequestException:
                pass
        stop.wait(max(0.0, TRANSCRIPT_EVERY_MS / 1000 - (time.monotonic() - started)))


# ================================================================================================================
# Orchestration


def _pinned(core: int | None, argv: list[str]) -> list[str]:
    if core is None or shutil.which("taskset") is None:
        return argv
    return ["taskset", "-c", str(core)] + argv


def _measure(args: argparse.Namespace, n: int, workdir: Path) -> dict[str, dict]:
    results: dict[str, dict] = {}
    ready_file = workdir / f"server-{n}.json"
    server_core = 0 if os.cpu_count() and os.cpu_count() > 1 else None
    client_core = 1 if server_core is not None else None
    sim_context = None
    if args.server == "builtin":
        server = subprocess.Popen(_pinned(server_core, [
            sys.executable, __file__, "_serve", "--streams", str(n), "--ready-file", str(ready_file),
            "--loop", args.server_loop]), stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        while not ready_file.exists() and time.monotonic() < deadline and server.poll() is None:
            time.sleep(0.05)
    else:
        from tests.zoomsim_process import run_zoomsim
        sim_context = run_zoomsim(workdir / f"zoomsim-{n}", timeout=60)
        sim = sim_context.__enter__()
        subprocess.run(["taskset", "-p", "-c", "0", str(sim.popen.pid)], stdout=subprocess.DEVNULL, check=False)
        ready_file.write_text(json.dumps({"streams": _zoomsim_streams(sim, n, workdir)}))
        stop_speaking = threading.Event()
        speaker = threading.Thread(target=_zoomsim_speaker, args=(sim, json.loads(ready_file.read_text())[
            "streams"], stop_speaking), daemon=True)
        speaker.start()
    try:
        for impl in args.clients:
            result_file = workdir / f"result-{impl}-{n}.json"
            argv = [sys.executable, __file__, f"_{impl}", "--streams", str(n), "--ready-file", str(ready_file),
                    "--result-file", str(result_file), "--duration", str(args.duration),
                    "--warmup", str(args.warmup), "--backend", args.backend, "--loop", args.loop]
            started = time.monotonic()
            try:
                proc = subprocess.run(_pinned(client_core, argv),
                                      stdout=subprocess.DEVNULL if impl == "sdk" else None,
                                      timeout=args.duration + args.warmup + 60 + n / 10 + 120)
                returncode = proc.returncode
            except subprocess.TimeoutExpired:
                returncode = "timeout"
            if returncode == 0 and result_file.exists():
                results[impl] = json.loads(result_file.read_text())
            else:
                results[impl] = {"error": f"exit {returncode} after {time.monotonic() - started:.0f}s"}
            if sim_context is not None:
                stats = sim.get("/_sim/stats").json()
                results[impl]["server_stats"] = stats
    finally:
        if args.server == "builtin":
            server.send_signal(signal.SIGTERM)
            try:
                server.wait(10)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
            stats_file = Path(str(ready_file) + ".stats")
            if stats_file.exists():
                for impl in results:
                    results[impl]["server_stats"] = json.loads(stats_file.read_text())
        else:
            stop_speaking.set()
            sim_context.__exit__(None, None, None)
    return results


def _print_row(n: int, impl: str, r: dict, sdk: dict | None) -> None:
    if "error" in r:
        print(f"{n:>6} {impl:>6}  {r['error']}")
        return
    ratio = ""
    if sdk and "error" not in sdk and impl != "sdk" and sdk["cpu_per_stream_minute"]:
        ratio = f"{r['cpu_per_stream_minute'] / sdk['cpu_per_stream_minute']:.2f}x"
    p50 = "-" if r["lag_p50_ms"] is None else f"{r['lag_p50_ms']:.0f}"
    p99 = "-" if r["lag_p99_ms"] is None else f"{r['lag_p99_ms']:.0f}"
    print(f"{n:>6} {impl:>6} {r['ready']:>6} {r['cpu_per_stream_minute']:>12.4f} {r['cores']:>6.2f} "
          f"{r['rss_per_stream_kib']:>9.1f} {r['lost_frames']:>7} {r['delivered_pct']:>6.1f}% {r['transcripts']:>6} "
          f"{p50:>6} {p99:>6} {ratio:>7}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("mode", nargs="?", default="bench", choices=["bench", "_serve", "_ours", "_sdk"])
    parser.add_argument("--streams", default="200,500,1000", help="comma-separated N values")
    parser.add_argument("--duration", type=float, default=60.0, help="measured seconds per run")
    parser.add_argument("--warmup", type=float, default=5.0, help="seconds held before measuring")
    parser.add_argument("--server", choices=["builtin", "zoomsim"], default="builtin")
    parser.add_argument("--clients", default="ours,sdk", help="ours, sdk or both")
    parser.add_argument("--backend", choices=["picows", "websockets"], default="picows")
    parser.add_argument("--loop", choices=["asyncio", "uvloop"], default="uvloop",
                        help="our client's loop (the session host's default is uvloop)")
    parser.add_argument("--server-loop", choices=["asyncio", "uvloop"], default="uvloop")
    parser.add_argument("--ready-file")
    parser.add_argument("--result-file")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    wanted_fds = 8 * max(int(x) for x in str(args.streams).split(",")) + 256
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < wanted_fds:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, wanted_fds), hard))

    if args.mode != "bench":
        args.streams = int(args.streams)
        {"_serve": _serve, "_ours": _run_ours, "_sdk": _run_sdk}[args.mode](args)
        return

    args.clients = [c.strip() for c in args.clients.split(",") if c.strip()]
    counts = [int(x) for x in args.streams.split(",")]
    print(f"# rtms receive bench: server={args.server} backend={args.backend} loop={args.loop} "
          f"duration={args.duration:g}s warmup={args.warmup:g}s cores={os.cpu_count()} (server core 0, client 1) "
          f"load average at start {os.getloadavg()[0]:.1f}")
    print("# cpu_s/st-min: client CPU seconds per minute of one stream's audio received; KiB/strm: RSS growth per "
          "stream held; lost: 20 ms frames missing; recvd: share of the expected audio received")
    print(f"{'N':>6} {'client':>6} {'ready':>6} {'cpu_s/st-min':>12} {'cores':>6} {'KiB/strm':>9} {'lost':>7} "
          f"{'recvd':>7} {'trans':>6} {'p50ms':>6} {'p99ms':>6} {'vs_sdk':>7}", flush=True)
    workdir = Path(tempfile.mkdtemp(prefix="rtms-bench-"))
    try:
        for n in counts:
            results = _measure(args, n, workdir)
            for impl in args.clients:
                _print_row(n, impl, results[impl], results.get("sdk"))
            late = next((r.get("server_stats", {}).get("late_ticks") for r in results.values()
                         if r.get("server_stats")), None)
            if late:
                print(f"#        server late ticks (>{FRAME_MS} ms behind schedule): {late}", flush=True)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
