"""Pure-Python asyncio RTMS client (no Django here: it is benchmarked and tested standalone).

Interface::

    from rtms.client import StreamClient, StreamSink, MediaType, Timings

    class Sink(StreamSink):                       # override what you store; plain sync calls, append to buffers
        def on_audio(self, user_id, user_name, timestamp_ms, pcm): ...
        def on_video(self, user_id, user_name, timestamp_ms, data): ...
        def on_deskshare(self, user_id, user_name, timestamp_ms, data): ...
        def on_transcript(self, user_id, user_name, start_ms, end_ms, timestamp_ms, language, text): ...
        def on_chat(self, user_id, user_name, timestamp_ms, text): ...
        def on_event(self, event_type, event): ...              # EVENT_UPDATE, event = the "event" object
        def on_state(self, stream_state, session_state, reason): ...   # STREAM/SESSION state updates
        def on_connection(self, phase, detail): ...              # Phase: connecting/ready/reconnecting/finished

    client = StreamClient(client_id=..., client_secret=..., meeting_uuid=..., rtms_stream_id=...,
                          server_urls="wss://…",          # webhook's comma-separated string; first ws/wss used
                          sink=Sink(),
                          media=MediaType.AUDIO | MediaType.TRANSCRIPT,  # per-type sockets by default
                          single_socket=False,             # True: one `all` socket
                          per_participant_audio=False,     # audio data_opt 2 instead of mixed
                          timings=Timings(),               # Zoom's windows; Timings().scaled(0.1) in tests
                          allowed_hosts=HostAllowList(["*.zoom.us"]))  # where sockets may go; None: anywhere
    result = await client.run()    # StreamResult(outcome, stop_reason, status_code, detail)
    await client.close()           # graceful: STREAM_CLOSE_REQ, wait for 22 / state update; returns the result
    client.abort()                 # fencing: drop every socket now, send nothing; run() returns ABORTED
    client.move_to(server_urls)    # Zoom's RTMS server failed, a re-sent rtms_started names another: go there now
    client.verify_signaling()      # Zoom said rtms_interrupted: no answer to STREAM_STATE_REQ → reconnect all
    client.counters                # StreamCounters: plain ints (frames/bytes per media, reconnects, malformed…)
    client.phase, client.stream_state, client.session_state, client.session_id

``run()`` does the signaling handshake (HMAC signature), the media handshake(s) (L16 16 kHz mono 20 ms audio,
transcript content_type 5 / English), CLIENT_READY_ACK, EVENT_SUBSCRIPTION; answers every keep-alive on every
socket; reconnects inside Zoom's 60 s / 65 s windows (docs/STREAMS.md): at once, then after 3 s doubling to 30 s,
reset after a good handshake; a closed media socket (or Zoom's MEDIA_CONNECTION_INTERRUPTED) redoes only that media
socket with signaling kept; a dropped signaling socket, or any socket on which nothing at all (no frame, no
keep-alive) arrived for 65 s, redoes everything; backs off on status 8 (duplicate) 1.5 s·2ⁿ at most 3 times; retries
statuses 16 and 45 inside the window; stops on any other non-zero status or when the server terminates the stream.
Malformed frames are counted, logged at most every 10 s, and skipped; a sink that raises is counted and logged the
same way and never costs the connection.

Outcomes (``StreamResult.outcome``): STOPPED (server ended it; ``stop_reason``), CLOSED (our close(); reason 20),
ABORTED (abort()), DUPLICATE (status 8 on every try), REFUSED (fatal status in ``status_code``), GAVE_UP (no
reconnect inside the window), NOT_ALLOWED (a signaling or media URL outside ``allowed_hosts``; never connected).

The WebSocket layer is picows when importable (2 KiB read buffers, reads capped so a loop stall cannot grow them
for good), else websockets; ``backend=backend_named("websockets")`` forces the fallback. Any asyncio loop works.
"""

from .allowlist import HostAllowList, URLNotAllowed
from .protocol import EventType, MediaType, MsgType, SessionState, Status, StopReason, StreamState, handshake_signature
from .stream import Outcome, Phase, StreamClient, StreamCounters, StreamResult, StreamSink, Timings
from .transport import backend_named, default_backend

__all__ = [
    "EventType", "HostAllowList", "MediaType", "MsgType", "Outcome", "Phase", "SessionState", "Status", "StopReason",
    "StreamClient", "StreamCounters", "StreamResult", "StreamSink", "StreamState", "Timings",
    "URLNotAllowed", "backend_named", "default_backend", "handshake_signature",
]
