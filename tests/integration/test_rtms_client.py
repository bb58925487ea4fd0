"""rtms.client.StreamClient against the real simulator subprocess: handshakes, keep-alives, media, events,
reconnection after a dropped or silent socket, duplicates, graceful close, abort, and every stop reason.

The simulator runs with Zoom's windows scaled down (keep-alive every 0.2 s, reconnection windows × 0.05), and the
client with matching Timings (Zoom's 10 s and 65 s × 0.02 for keep-alives). Each client runs on its own event-loop
thread, as in a worker's session host.
"""

import asyncio
import threading
import time

import pytest

from rtms.client import MediaType, Outcome, Phase, StopReason, StreamClient, StreamSink, Timings, backend_named
from rtms.client.protocol import EventType, SessionState, StreamState
from tests.processes import wait_for
from tests.zoomsim_client import sim_world, words_lasting

KEEPALIVE = 0.2
RECONNECT_SCALE = 0.05
TIMINGS = Timings(keepalive_interval=KEEPALIVE, keepalive_timeout=6.5 * KEEPALIVE,
                  signaling_window=60 * RECONNECT_SCALE, media_window=65 * RECONNECT_SCALE, handshake_timeout=3.0,
                  backoff_base=0.05, backoff_cap=0.4, duplicate_backoff=0.1, duplicate_tries=3, close_timeout=3.0)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    with sim_world(tmp_path_factory.mktemp("zoomsim-client"),
                   {"client_id": "client-test-id", "client_secret": "client-test-secret"},
                   keepalive_interval=KEEPALIVE, reconnect_scale=RECONNECT_SCALE, retry_scale=0.0005) as world:
        yield world


class RecordingSink(StreamSink):
    """Records what a real sink would store (appends only, as the client's contract requires)."""

    def __init__(self):
        self.audio = []        # (user_id, timestamp_ms, byte count)
        self.transcripts = []  # (user_id, user_name, start, end, language, text)
        self.events = []       # (event_type, event)
        self.states = []       # (stream_state, session_state, reason)
        self.phases = []

    def on_audio(self, user_id, user_name, timestamp_ms, pcm):
        self.audio.append((user_id, timestamp_ms, len(pcm)))

    def on_transcript(self, user_id, user_name, start_ms, end_ms, timestamp_ms, language, text):
        self.transcripts.append((user_id, user_name, start_ms, end_ms, language, text))

    def on_event(self, event_type, event):
        self.events.append((event_type, event))

    def on_state(self, stream_state, session_state, reason):
        self.states.append((stream_state, session_state, reason))

    def on_connection(self, phase, detail):
        self.phases.append(phase)


class HeldStream:
    """A StreamClient running on its own event-loop thread."""

    def __init__(self, world, payload, client_secret=None, sink=None, **options):
        self.sink = sink or RecordingSink()
        self.loop = asyncio.new_event_loop()
        self.client = StreamClient(client_id=world.client_id, client_secret=client_secret or world.client_secret,
                                   meeting_uuid=payload["meeting_uuid"], rtms_stream_id=payload["rtms_stream_id"],
                                   server_urls=payload["server_urls"], sink=self.sink,
                                   timings=options.pop("timings", TIMINGS), **options)
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.running = asyncio.run_coroutine_threadsafe(self.client.run(), self.loop)

    def wait_ready(self, timeout=10.0):
        wait_for(lambda: self.client.phase is Phase.READY, timeout, "the client to be ready")

    def audio_after(self, timestamp_ms):
        return [frame for frame in list(self.sink.audio) if frame[1] > timestamp_ms]

    def close(self, timeout=10.0):
        return asyncio.run_coroutine_threadsafe(self.client.close(), self.loop).result(timeout)

    def abort(self):
        self.loop.call_soon_threadsafe(self.client.abort)

    def wait_result(self, timeout=10.0):
        return self.running.result(timeout)

    def stop_quietly(self):
        if not self.running.done():
            self.abort()
            self.running.result(5)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()


@pytest.fixture
def held_streams():
    streams = []
    yield streams
    for stream in streams:
        stream.stop_quietly()


def hold(world, held_streams, payload, **options):
    stream = HeldStream(world, payload, **options)
    held_streams.append(stream)
    return stream


def live_connections(world, stream_id, kind=None):
    return [c for c in world.stream(stream_id)["connections"]
            if c["closed_at"] is None and (kind is None or c["kind"] == kind)]


def assert_no_overlapping_signaling(world, stream_id):
    spans = sorted((c["opened_at"], c["closed_at"] or float("inf")) for c in world.stream(stream_id)["connections"]
                   if c["kind"] == "signaling" and c.get("handshake_status") == 0)
    for (_, first_end), (second_start, _) in zip(spans, spans[1:]):
        assert second_start >= first_end, f"two live signaling connections overlapped: {spans}"


@pytest.mark.parametrize("backend", ["picows", "websockets"])
def test_handshakes_keepalives_audio_transcript_and_events(world, held_streams, backend):
    meeting = world.meeting()
    payload = world.start_stream(meeting)
    held = hold(world, held_streams, payload, backend=backend_named(backend))
    held.wait_ready()
    stream_id = payload["rtms_stream_id"]

    kinds = sorted(c["kind"] for c in live_connections(world, stream_id))
    assert kinds == ["audio", "signaling", "transcript"]
    media = world.stream(stream_id)["media"]
    assert media["audio"]["codec"] == 1 and media["audio"]["sample_rate"] == 1 and media["audio"]["channel"] == 1
    assert media["audio"]["data_opt"] == 1 and media["audio"]["send_rate"] == 20

    # Nobody speaks: every socket, the audio one included, carries nothing but keep-alives (docs/ZOOM.md §6.1).
    world.wait_stream(stream_id, lambda s: all(c["keepalive_answered"] >= 3 for c in s["connections"]
                                               if c["closed_at"] is None),
                      what="three answered keep-alives on signaling, audio and transcript")
    assert held.sink.audio == []

    line = world.speak(meeting, "Hello from the client test", key="p2")
    transcript = wait_for(lambda: [t for t in held.sink.transcripts if t[5] == "Hello from the client test"],
                          what="the spoken line's transcript")[0]
    assert transcript[1] == "Ben" and transcript[2] == line["start_time"] and transcript[3] == line["end_time"]
    assert transcript[4] == 9
    # The line's mixed audio: a 20 ms frame for each 20 ms of it.
    wait_for(lambda: held.sink.audio and held.sink.audio[-1][1] == line["end_time"] - 20, what="the line's last frame")
    assert held.sink.audio == [(0, timestamp, 640) for timestamp in range(line["start_time"], line["end_time"], 20)]

    assert (StreamState.ACTIVE, None, None) in held.sink.states
    assert any(state[1] == SessionState.STARTED for state in held.sink.states)
    joined = wait_for(lambda: [e for t, e in held.sink.events if t == EventType.PARTICIPANT_JOIN],
                      what="the participant list after subscribing to joins")
    assert {"Ana Host", "Ben"} <= {p.get("user_name") for p in joined[0]["participants"]}
    assert held.client.counters.malformed == 0 and held.client.counters.keepalives >= 6
    held.close()


def test_one_all_socket_and_per_participant_audio(world, held_streams):
    meeting = world.meeting()
    payload = world.start_stream(meeting)
    held = hold(world, held_streams, payload, single_socket=True, per_participant_audio=True)
    held.wait_ready()
    assert sorted(c["kind"] for c in live_connections(world, payload["rtms_stream_id"])) == ["all", "signaling"]
    assert world.stream(payload["rtms_stream_id"])["media"]["audio"]["data_opt"] == 2
    world.sim.post(f"/_sim/meetings/{meeting['id']}/speak", json={"key": "p2", "text": "Per participant"})
    wait_for(lambda: any(t[5] == "Per participant" for t in held.sink.transcripts), what="the transcript")
    speakers = {frame[0] for frame in held.sink.audio}
    assert speakers and 0 not in speakers, "per-participant audio carries the speaker's user_id"
    held.close()


@pytest.mark.parametrize("socket", ["signaling", "audio"])
def test_dropped_socket_reconnects_and_audio_resumes(world, held_streams, socket):
    meeting = world.meeting()
    payload = world.start_stream(meeting)
    stream_id = payload["rtms_stream_id"]
    held = hold(world, held_streams, payload)
    held.wait_ready()
    world.speak(meeting, words_lasting(15))
    wait_for(lambda: held.sink.audio, what="audio before the drop")
    world.sim.post("/_sim/faults", json={"kind": "drop_socket", "stream_id": stream_id, "socket": socket})
    wait_for(lambda: held.client.counters.reconnects >= 1, what="a reconnect")
    dropped_at = time.time() * 1000
    held.wait_ready()
    wait_for(lambda: len(held.audio_after(dropped_at)) >= 10, what="audio after the reconnect")
    stream = world.stream(stream_id)
    assert stream["state"] == "active" and stream["stop_reason"] is None
    assert Phase.RECONNECTING in held.sink.phases
    assert_no_overlapping_signaling(world, stream_id)
    # Audio of the line produced while the socket was down is replayed: no 20 ms step is missing.
    timestamps = sorted({frame[1] for frame in held.sink.audio})
    gaps = [b - a for a, b in zip(timestamps, timestamps[1:]) if b - a != 20]
    assert not gaps, f"audio timestamps have gaps after the reconnect: {gaps[:5]}"
    held.close()


def test_audio_without_keepalives_keeps_the_stream(world, held_streams):
    """Zoom sends no keep-alive on a socket carrying speech: the audio frames themselves say the socket lives, for
    well past the keep-alive timeout."""
    meeting = world.meeting()
    payload = world.start_stream(meeting)
    stream_id = payload["rtms_stream_id"]
    held = hold(world, held_streams, payload)
    held.wait_ready()
    waited = 3 * TIMINGS.keepalive_timeout
    line = world.speak(meeting, words_lasting(waited + 3))
    wait_for(lambda: held.sink.audio, what="the line's first frame")
    [audio_socket] = live_connections(world, stream_id, "audio")
    frames_before = len(held.sink.audio)
    time.sleep(waited)
    assert time.time() * 1000 < line["end_time"], "the line should still be going"
    assert held.client.counters.reconnects == 0 and held.client.phase is Phase.READY
    [still_open] = live_connections(world, stream_id, "audio")
    assert still_open["id"] == audio_socket["id"], still_open
    assert still_open["keepalive_sent"] == audio_socket["keepalive_sent"], "a keep-alive while speech flowed"
    assert len(held.sink.audio) - frames_before >= waited * 50 / 2, "audio flowed all along"
    held.close()


@pytest.mark.parametrize("socket", ["signaling", "transcript"])
def test_one_silent_socket_is_detected_while_audio_flows(world, held_streams, socket):
    """Neither data nor keep-alives on one socket for the keep-alive timeout: reconnected, however much audio the
    audio socket carries meanwhile."""
    meeting = world.meeting()
    payload = world.start_stream(meeting)
    stream_id = payload["rtms_stream_id"]
    held = hold(world, held_streams, payload)
    held.wait_ready()
    world.speak(meeting, words_lasting(10))
    wait_for(lambda: held.sink.audio, what="the line's first frame")
    world.sim.post("/_sim/faults", json={"kind": "stall_keepalive", "stream_id": stream_id, "socket": socket})
    try:
        wait_for(lambda: held.client.counters.reconnects >= 1, what=f"a reconnect after {socket} went silent")
    finally:
        world.sim.delete("/_sim/faults")
    held.wait_ready()
    assert world.stream(stream_id)["state"] == "active"
    held.close()


def test_silent_server_is_detected_and_the_client_reconnects(world, held_streams):
    meeting = world.meeting()
    payload = world.start_stream(meeting)
    stream_id = payload["rtms_stream_id"]
    held = hold(world, held_streams, payload)
    held.wait_ready()
    world.speak(meeting, words_lasting(15))
    world.sim.post("/_sim/faults", json={"kind": "stall_keepalive", "stream_id": stream_id})
    try:
        wait_for(lambda: held.client.counters.reconnects >= 1, what="a reconnect after keep-alives stopped")
    finally:
        world.sim.delete("/_sim/faults")
    stalled_at = time.time() * 1000
    held.wait_ready()
    wait_for(lambda: len(held.audio_after(stalled_at)) >= 10, what="audio after the reconnect")
    assert world.stream(stream_id)["state"] == "active"
    assert_no_overlapping_signaling(world, stream_id)
    held.close()


def test_frozen_media_socket_is_detected(world, held_streams):
    meeting = world.meeting()
    payload = world.start_stream(meeting)
    stream_id = payload["rtms_stream_id"]
    held = hold(world, held_streams, payload)
    held.wait_ready()
    world.speak(meeting, words_lasting(15))
    wait_for(lambda: held.sink.audio, what="the line's first frame")
    world.sim.post("/_sim/faults", json={"kind": "freeze_socket", "stream_id": stream_id, "socket": "audio"})
    try:
        wait_for(lambda: held.client.counters.reconnects >= 1, what="a reconnect after the audio socket froze")
    finally:
        world.sim.delete("/_sim/faults")
    frozen_at = time.time() * 1000
    wait_for(lambda: len(held.audio_after(frozen_at)) >= 10, what="audio after the reconnect")
    assert world.stream(stream_id)["state"] == "active"
    held.close()


def test_graceful_close_stops_with_receiver_request_close(world, held_streams):
    payload = world.start_stream(world.meeting())
    stream_id = payload["rtms_stream_id"]
    held = hold(world, held_streams, payload)
    held.wait_ready()
    result = held.close()
    assert result.outcome is Outcome.CLOSED and result.stop_reason == StopReason.RECEIVER_REQUEST_CLOSE
    assert held.wait_result() == result
    stream = world.wait_stream(stream_id, lambda s: s["state"] == "stopped", what="the stream to stop")
    assert stream["stop_reason"] == 20
    assert not live_connections(world, stream_id)
    stopped = world.hook.wait_for("meeting.rtms_stopped", lambda d: d["body"]["payload"]["rtms_stream_id"] == stream_id)
    assert stopped["body"]["payload"]["stop_reason"] == 20


def test_every_stop_reason_surfaces(world, held_streams):
    reasons = [r for r in StopReason if r not in (StopReason.UNDEFINED, StopReason.RECEIVER_REQUEST_CLOSE)]
    payloads = [world.start_stream(world.meeting()) for _ in reasons]
    helds = [hold(world, held_streams, payload) for payload in payloads]
    for held in helds:
        held.wait_ready()
    for payload, reason in zip(payloads, reasons):
        response = world.sim.post(f"/_sim/streams/{payload['rtms_stream_id']}/stop", json={"reason": int(reason)})
        assert response.status_code in (200, 204), response.text
    for held, reason in zip(helds, reasons):
        result = held.wait_result()
        assert result.outcome is Outcome.STOPPED and result.stop_reason == reason, (reason, result)
        assert (StreamState.TERMINATED, None, reason) in held.sink.states
        assert held.client.counters.reconnects == 0, "a stopped stream is not reconnected"


def test_meeting_end_stops_the_stream_with_reason_6(world, held_streams):
    meeting = world.meeting()
    held = hold(world, held_streams, world.start_stream(meeting))
    held.wait_ready()
    world.sim.post(f"/_sim/meetings/{meeting['id']}/end")
    result = held.wait_result()
    assert result.outcome is Outcome.STOPPED and result.stop_reason == StopReason.MEETING_ENDED


def test_second_connection_for_a_held_stream_backs_off_and_gives_up(world, held_streams):
    payload = world.start_stream(world.meeting())
    stream_id = payload["rtms_stream_id"]
    first = hold(world, held_streams, payload)
    first.wait_ready()
    second = hold(world, held_streams, payload)
    result = second.wait_result()
    assert result.outcome is Outcome.DUPLICATE and result.status_code == 8
    refused = [c for c in world.stream(stream_id)["connections"]
               if c["kind"] == "signaling" and c.get("handshake_status") == 8]
    assert len(refused) == 4, "one try plus three backed-off retries, then it stops"
    assert first.client.phase is Phase.READY and world.stream(stream_id)["state"] == "active"
    first.close()


def test_abort_drops_every_socket_without_a_word(world, held_streams):
    payload = world.start_stream(world.meeting())
    stream_id = payload["rtms_stream_id"]
    held = hold(world, held_streams, payload)
    held.wait_ready()
    held.abort()
    assert held.wait_result(timeout=10).outcome is Outcome.ABORTED
    stream = world.wait_stream(stream_id, lambda s: s["state"] == "interrupted",
                               what="the simulator to see an interruption, not a stop")
    assert stream["stop_reason"] is None
    assert not live_connections(world, stream_id)
    # Another holder (after a lease takeover) picks the stream up inside Zoom's window.
    successor = hold(world, held_streams, payload)
    successor.wait_ready()
    successor.close()


@pytest.mark.parametrize("stage", ["upgrade", "signaling", "media"])
def test_a_transient_refusal_is_retried(world, held_streams, stage):
    meeting = world.meeting()
    payload = world.start_stream(meeting)
    world.sim.post("/_sim/faults", json={"kind": "refuse_handshake", "stage": stage, "status_code": 45, "count": 1})
    try:
        held = hold(world, held_streams, payload)
        held.wait_ready()
        assert world.sim.get("/_sim/faults").json() == []  # the refusal was served, and the client came back
    finally:
        world.sim.delete("/_sim/faults")
    world.speak(meeting, "Are we recording")
    wait_for(lambda: held.sink.audio, what="audio after the retried handshake")
    if stage != "upgrade":  # a refused upgrade leaves no connection record: only the handshakes do
        statuses = [c["handshake_status"] for c in world.stream(payload["rtms_stream_id"])["connections"]
                    if (c["kind"] == "signaling") == (stage == "signaling")]
        assert 45 in statuses and statuses[-1] == 0, statuses
    assert held.client.phase is Phase.READY
    held.close()


def test_wrong_secret_is_refused_with_status_3(world, held_streams):
    payload = world.start_stream(world.meeting())
    held = hold(world, held_streams, payload, client_secret="not-the-secret")
    result = held.wait_result()
    assert result.outcome is Outcome.REFUSED and result.status_code == 3


class MediaSink(RecordingSink):
    def __init__(self):
        super().__init__()
        self.video, self.deskshare, self.chat = [], [], []

    def on_video(self, user_id, user_name, timestamp_ms, data):
        self.video.append((user_name, data[:2]))

    def on_deskshare(self, user_id, user_name, timestamp_ms, data):
        self.deskshare.append((user_name, data[:2]))

    def on_chat(self, user_id, user_name, timestamp_ms, text):
        self.chat.append((user_name, text))


def test_video_deskshare_and_chat(world, held_streams):
    meeting = world.meeting()
    payload = world.start_stream(meeting)
    held = hold(world, held_streams, payload, sink=MediaSink(), media=MediaType(31))
    held.wait_ready()
    assert sorted(c["kind"] for c in live_connections(world, payload["rtms_stream_id"])) == [
        "audio", "chat", "deskshare", "signaling", "transcript", "video"]
    ref = meeting["id"]
    world.sim.post(f"/_sim/meetings/{ref}/video", json={"key": "p2", "on": True})
    world.sim.post(f"/_sim/meetings/{ref}/share", json={"key": "p2", "on": True})
    world.sim.post(f"/_sim/meetings/{ref}/chat", json={"key": "p2", "text": "link in chat"})
    wait_for(lambda: ("Ben", "link in chat") in held.sink.chat, what="the chat message")
    wait_for(lambda: held.sink.video, what="a video frame")
    wait_for(lambda: held.sink.deskshare, what="a screen-share frame")
    image_starts = {b"\xff\xd8", b"\x89P"}  # JPEG or PNG
    assert held.sink.video[0][1] in image_starts and held.sink.deskshare[0][1] in image_starts
    event_types = {t for t, _ in held.sink.events}
    assert {EventType.PARTICIPANT_VIDEO_ON, EventType.SHARING_START} <= event_types
    held.close()
