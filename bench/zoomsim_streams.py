"""How many concurrent real-time RTMS streams the Zoom simulator holds, and how steadily.

Starts `python -m zoomsim` (or uses --http-url/--rtms-url of a running one), opens N meetings that keep talking
(a spoken line every few seconds per meeting, so audio is real speech and transcripts flow), starts one RTMS
stream per meeting, and holds every stream with a minimal picows client: signaling + audio + transcript sockets,
keep-alives answered. Prints the simulator's CPU share, the simulator's tick lateness, and what the clients saw:
audio frame inter-arrival jitter and send->receive lag (now - frame timestamp).

    python bench/zoomsim_streams.py --streams 200 --seconds 20
"""

import argparse
import asyncio
import hashlib
import hmac
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
import picows
import psutil
from aiohttp import web

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.zoomsim_process import run_zoomsim

CLIENT_ID, CLIENT_SECRET, WEBHOOK_SECRET = "bench-app", "bench-secret", "bench-webhook-secret"
LINES = ["Let's go over the quarterly numbers", "Revenue is up eleven percent", "Can everyone hear me",
         "I will share my screen in a minute", "Next item on the agenda", "Thanks, that's all from me"]


class Stats:
    def __init__(self):
        self.measuring = False
        self.jitter_ms = []
        self.lag_ms = []
        self.frames = 0
        self.transcripts = 0
        self.keepalives = 0
        self.closed_early = 0


class RtmsSocket(picows.WSListener):
    def __init__(self, stats, on_message=None, audio=False):
        self.stats = stats
        self.on_message = on_message
        self.audio = audio
        self.last_arrival = None
        self.transport = None

    def on_ws_connected(self, transport):
        self.transport = transport

    def send(self, message):
        self.transport.send(picows.WSMsgType.TEXT, json.dumps(message).encode())

    def on_ws_frame(self, transport, frame):
        if frame.msg_type != picows.WSMsgType.TEXT:
            return
        now = time.time() * 1000
        raw = frame.get_payload_as_bytes()
        stats = self.stats
        if raw.startswith(b'{"msg_type":14,'):
            # Audio is most of the traffic: read only the timestamp, so the client stays cheap.
            if stats.measuring:
                stats.frames += 1
                start = raw.rindex(b'"timestamp":') + 12
                stats.lag_ms.append(now - int(raw[start:raw.index(b"}", start)]))
                if self.last_arrival is not None:
                    stats.jitter_ms.append(abs(now - self.last_arrival - 20))
            self.last_arrival = now
            return
        message = json.loads(raw)
        msg_type = message.get("msg_type")
        if msg_type == 12:
            stats.keepalives += 1
            self.send({"msg_type": 13, "timestamp": message["timestamp"], "sequence": message.get("sequence")})
        elif msg_type == 17 and stats.measuring:
            stats.transcripts += 1
        if self.on_message is not None:
            self.on_message(message)

    def on_ws_disconnected(self, transport):
        if self.stats.measuring:
            self.stats.closed_early += 1


async def hold_stream(payload, stats, ready_event, connecting):
    async with connecting:  # a bounded number of streams connect at once
        return await _connect_stream(payload, stats, ready_event)


async def _connect_stream(payload, stats, ready_event):
    signature = hmac.new(CLIENT_SECRET.encode(), f"{CLIENT_ID},{payload['meeting_uuid']},"
                         f"{payload['rtms_stream_id']}".encode(), hashlib.sha256).hexdigest()
    ids = {"meeting_uuid": payload["meeting_uuid"], "rtms_stream_id": payload["rtms_stream_id"],
           "signature": signature}
    answers = asyncio.Queue()
    _, signaling = await picows.ws_connect(lambda: RtmsSocket(stats, answers.put_nowait), payload["server_urls"],
                                           websocket_handshake_timeout=30)
    # buffer_data false: measure the steady state, not the replay of audio buffered while streams were connecting.
    signaling.send({"msg_type": 1, "protocol_version": 1, "sequence": 1, "buffer_data": False, **ids})
    response = await answers.get()
    urls = response["media_server"]["server_urls"]
    sockets = [signaling]
    for kind, media_type, params in (
            ("audio", 1, {"audio": {"content_type": 2, "sample_rate": 1, "channel": 1, "codec": 1, "data_opt": 1,
                                    "send_rate": 20}}),
            ("transcript", 8, {"transcript": {"content_type": 5, "src_language": 9}})):
        media_answers = asyncio.Queue()
        _, sock = await picows.ws_connect(
            lambda answers=media_answers, audio=kind == "audio": RtmsSocket(stats, answers.put_nowait, audio),
            urls[kind], websocket_handshake_timeout=30)
        sock.send({"msg_type": 3, "protocol_version": 1, "sequence": 2, "media_type": media_type,
                   "media_params": params, **ids})
        while (await media_answers.get()).get("msg_type") != 4:
            pass
        sock.on_message = None
        sockets.append(sock)
    signaling.on_message = None
    signaling.send({"msg_type": 7, "rtms_stream_id": payload["rtms_stream_id"]})
    ready_event.set()
    return sockets


async def run(args, http_url, sim_pid):
    stats = Stats()
    started = asyncio.Queue()

    async def webhook(request):
        body = await request.json()
        if body["event"] == "endpoint.url_validation":
            plain = body["payload"]["plainToken"]
            return web.json_response({"plainToken": plain, "encryptedToken": hmac.new(
                WEBHOOK_SECRET.encode(), plain.encode(), hashlib.sha256).hexdigest()})
        if body["event"] == "meeting.rtms_started":
            started.put_nowait(body["payload"])
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/webhook", webhook)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    hook_url = f"http://127.0.0.1:{runner.addresses[0][1]}/webhook"

    async with aiohttp.ClientSession(http_url) as http:
        async def call(method, path, **kwargs):
            async with http.request(method, path, **kwargs) as response:
                assert response.status < 300, await response.text()
                return await response.json()

        await call("POST", "/_sim/apps", json={"name": "Bench", "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET,
                                               "webhook_secret_token": WEBHOOK_SECRET, "event_url": hook_url})
        meetings = []
        for index in range(args.streams):
            meetings.append(await call("POST", "/_sim/meetings", json={
                "topic": f"bench {index}", "host": {"name": f"Host {index}"},
                "participants": [{"name": f"Guest {index}"}], "start": True}))
        setup_began = time.monotonic()
        for meeting in meetings:
            await call("POST", f"/_sim/meetings/{meeting['id']}/streams", json={"client_id": CLIENT_ID})
        ready = []
        holders = []
        connecting = asyncio.Semaphore(32)
        for _ in meetings:
            payload = await started.get()
            event = asyncio.Event()
            ready.append(event)
            holders.append(asyncio.create_task(hold_stream(payload, stats, event, connecting)))
        await asyncio.gather(*holders)
        setup_s = time.monotonic() - setup_began

        async def talk(meeting, offset):
            await asyncio.sleep(offset)
            turn = 0
            while True:
                speaker = meeting["participants"][turn % 2]["key"]
                await call("POST", f"/_sim/meetings/{meeting['id']}/speak",
                           json={"key": speaker, "text": LINES[turn % len(LINES)]})
                turn += 1
                await asyncio.sleep(args.line_every)

        talkers = [asyncio.create_task(talk(m, i * args.line_every / len(meetings))) for i, m in enumerate(meetings)]
        await asyncio.sleep(args.warmup)
        sim_process = psutil.Process(sim_pid)
        bench_process = psutil.Process(os.getpid())
        sim_cpu0 = sum(sim_process.cpu_times()[:2])
        bench_cpu0 = sum(bench_process.cpu_times()[:2])
        ticker0 = await call("GET", "/_sim/stats")
        wall0 = time.monotonic()
        stats.measuring = True
        await asyncio.sleep(args.seconds)
        stats.measuring = False
        wall = time.monotonic() - wall0
        sim_cpu = sum(sim_process.cpu_times()[:2]) - sim_cpu0
        bench_cpu = sum(bench_process.cpu_times()[:2]) - bench_cpu0
        ticker = await call("GET", "/_sim/stats")
        for task in talkers:
            task.cancel()

    def pct(values, p):
        values = sorted(values)
        return values[min(len(values) - 1, int(p * len(values)))] if values else float("nan")

    expected = args.streams * wall * 50
    print(f"zoomsim_streams: {args.streams} streams (L16 16 kHz mono, 20 ms) + transcripts, {wall:.1f} s measured, "
          f"setup {setup_s:.1f} s; machine load average {os.getloadavg()[0]:.1f} on {psutil.cpu_count()} cores")
    print(f"  simulator CPU: {100 * sim_cpu / wall:.1f}% of one core "
          f"({1e6 * sim_cpu / max(1, ticker['frames_sent'] - ticker0['frames_sent']):.1f} us per frame sent); "
          f"bench client CPU: {100 * bench_cpu / wall:.1f}%")
    print(f"  simulator tick lateness ms: p50 {ticker['lateness_ms']['p50']} p99 {ticker['lateness_ms']['p99']} "
          f"max {ticker['lateness_ms']['max']}; late ticks {ticker['late_ticks'] - ticker0['late_ticks']} of "
          f"{ticker['ticks'] - ticker0['ticks']}; busy per tick "
          f"{1000 * (ticker['busy_s'] - ticker0['busy_s']) / max(1, ticker['ticks'] - ticker0['ticks']):.2f} ms")
    print(f"  simulator overload: {ticker['overload_skips'] - ticker0['overload_skips']} skips, "
          f"{ticker['skipped_frames'] - ticker0['skipped_frames']} frames skipped")
    print(f"  audio frames received: {stats.frames} ({100 * stats.frames / expected:.1f}% of real time), "
          f"transcripts: {stats.transcripts}, keep-alives answered: {stats.keepalives}, "
          f"sockets lost: {stats.closed_early}")
    print(f"  inter-arrival jitter ms: p50 {pct(stats.jitter_ms, 0.5):.2f} p99 {pct(stats.jitter_ms, 0.99):.2f} "
          f"max {max(stats.jitter_ms, default=float('nan')):.2f}; mean {statistics.fmean(stats.jitter_ms or [0]):.2f}")
    print(f"  send->receive lag ms: p50 {pct(stats.lag_ms, 0.5):.2f} p99 {pct(stats.lag_ms, 0.99):.2f} "
          f"max {max(stats.lag_ms, default=float('nan')):.2f}")
    await runner.cleanup()


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--streams", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--warmup", type=float, default=3)
    parser.add_argument("--line-every", type=float, default=4.0, help="seconds between lines in each meeting")
    parser.add_argument("--voice", default="tones", help="espeak or tones (the simulator's --voice)")
    parser.add_argument("--max-catchup", type=float, default=1.0, help="the simulator's --max-catchup")
    parser.add_argument("--attach", metavar="READY_FILE:PID", help="use a running simulator instead of starting one")
    args = parser.parse_args()
    if args.attach:
        ready_file, pid = args.attach.rsplit(":", 1)
        asyncio.run(run(args, json.loads(Path(ready_file).read_text())["http_url"], int(pid)))
        return
    with tempfile.TemporaryDirectory() as tmp:
        with run_zoomsim(tmp, voice=args.voice, max_catchup=args.max_catchup, log_level="WARNING") as sim:
            asyncio.run(run(args, sim.http_url, sim.popen.pid))


if __name__ == "__main__":
    main()
