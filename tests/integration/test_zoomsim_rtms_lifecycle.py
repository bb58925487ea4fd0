"""Stream lifecycle on the simulator (docs/ZOOM.md §5.3, §6): keep-alive and the 3-miss rule, interruption and
reconnection windows, buffered audio replay, pause/resume, STREAM_CLOSE_REQ, stop reasons, and fault injection.
Windows are scaled down (--keepalive-interval 1.0, --reconnect-scale 0.04: 60 s -> 2.4 s, 65 s -> 2.6 s). Three missed
keep-alives then take 3 s: at 0.2 s and then 0.5 s, a test client's reader thread answering late on a loaded machine
(load average 6) timed a stream out in the middle of another test (a stop-reason test saw the socket closed without
its stop)."""

import base64
import time

import pytest

from tests.zoomsim_client import Socket, sim_world, words_lasting


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    with sim_world(tmp_path_factory.mktemp("zoomsim-life"), keepalive_interval=1.0, reconnect_scale=0.04,
                   retry_scale=0.0005) as world:
        yield world


def _stopped_webhook(world, stream_id):
    return world.hook.wait_for("meeting.rtms_stopped",
                               lambda d: d["body"]["payload"]["rtms_stream_id"] == stream_id)["body"]["payload"]


def _assert_stopped_on_the_wire(client, reason):
    state = client.signaling.recv(lambda m: m.get("msg_type") == 8 and m.get("state") == 4)
    assert state["reason"] == reason
    session = client.signaling.recv(lambda m: m.get("msg_type") == 9 and m.get("state") == 5)
    assert session["stop_reason"] == reason
    assert client.signaling.wait_closed() == 1000
    for sock in client.media.values():
        assert sock.wait_closed() == 1000


def _socket(stream, kind):
    return next(c for c in stream["connections"] if c["kind"] == kind)


def test_keepalives_go_to_every_socket_carrying_nothing_else_and_keep_the_stream(world):
    """Zoom sends keep-alives only in silence (docs/ZOOM.md §6.1): while nobody speaks every socket, the audio one
    included, carries nothing but keep-alives; while someone speaks the audio socket carries 20 ms frames and gets
    none, and the others still do."""
    meeting = world.meeting()
    payload, client = world.connected(meeting, media=("audio", "transcript"))
    stream_id = payload["rtms_stream_id"]
    stream = world.wait_stream(stream_id, lambda s: all(c["keepalive_answered"] >= 2 for c in s["connections"]),
                               what="2 answered keep-alives on signaling, audio and transcript")
    assert stream["frames_sent"].get("audio", 0) == 0, "mixed audio while nobody speaks"
    request = client.media["audio"].recv_type(12)
    assert isinstance(request["timestamp"], int) and isinstance(request["sequence"], int)

    line = world.speak(meeting, words_lasting(5))
    speaking = world.wait_stream(stream_id, lambda s: s["frames_sent"].get("audio", 0) >= 1, what="the first frame")
    stream = world.wait_stream(stream_id, lambda s: s["frames_sent"]["audio"] >= 150, what="3 s of audio")
    assert time.time() * 1000 < line["end_time"], "the line should still be going"
    assert _socket(stream, "audio")["keepalive_sent"] == _socket(speaking, "audio")["keepalive_sent"]
    assert _socket(stream, "signaling")["keepalive_sent"] > _socket(speaking, "signaling")["keepalive_sent"]
    assert stream["state"] == "active"
    client.close()


def test_three_missed_signaling_keepalives_interrupt_then_stop_with_24(world):
    payload, client = world.connected(world.meeting())
    client.signaling.answer_keepalive = False
    interrupted = world.hook.wait_for("meeting.rtms_interrupted",
                                      lambda d: d["body"]["payload"]["rtms_stream_id"] == payload["rtms_stream_id"])
    assert interrupted["body"]["payload"]["meeting_uuid"] == payload["meeting_uuid"]
    assert client.signaling.wait_closed() == 1000
    assert client.media["audio"].wait_closed() == 1000
    assert client.signaling.keepalives >= 3
    assert _stopped_webhook(world, payload["rtms_stream_id"])["stop_reason"] == 24


def test_three_missed_media_keepalives_close_that_socket_then_stop_with_24(world):
    payload, client = world.connected(world.meeting(), media=("audio", "transcript"))
    client.media["transcript"].answer_keepalive = False  # nobody speaks: only keep-alives come on it
    interrupted = client.signaling.recv(lambda m: m.get("msg_type") == 6 and m["event"]["event_type"] == 7)
    assert isinstance(interrupted["event"]["timestamp"], int)
    assert client.media["transcript"].wait_closed() == 1000
    _assert_stopped_on_the_wire(client, 24)
    assert _stopped_webhook(world, payload["rtms_stream_id"])["stop_reason"] == 24


def test_reconnect_within_the_window_replays_buffered_audio(world):
    meeting = world.meeting()
    payload, client = world.connected(meeting)
    stream_id = payload["rtms_stream_id"]
    world.sim.post("/_sim/faults", json={"kind": "drop_socket", "stream_id": stream_id, "socket": "signaling"})
    world.hook.wait_for("meeting.rtms_interrupted", lambda d: d["body"]["payload"]["rtms_stream_id"] == stream_id)
    assert client.media["audio"].wait_closed() == 1000  # Zoom interrupts the media connections too
    line = world.sim.post(f"/_sim/meetings/{meeting['id']}/speak", json={"key": "p2", "text": "while you were away"})
    line = line.json()
    # Reconnect once 400 ms of the line have been produced while nobody was connected.
    world.wait_stream(stream_id, lambda s: time.time() * 1000 > line["start_time"] + 400, what="400 ms of speech")
    reconnected_at = time.time() * 1000
    again = world.client(payload)
    assert again.handshake()["status_code"] == 0
    again.open_media("audio", 1)
    again.ready()
    assert again.signaling.recv_type(8)["state"] == 1
    voiced = 0
    while True:
        frame = again.media["audio"].recv_type(14)["content"]
        pcm = memoryview(base64.b64decode(frame["data"])).cast("h")
        if line["start_time"] <= frame["timestamp"] < reconnected_at:
            voiced += max(abs(s) for s in pcm) > 500
        if frame["timestamp"] + 20 >= line["end_time"]:  # the line's last frame
            break
    assert voiced >= 5, "audio spoken during the outage is replayed after the reconnect"
    stream = world.stream(stream_id)
    assert stream["state"] == "active" and stream["stop_reason"] is None
    assert not world.hook.events("meeting.rtms_stopped") or all(
        d["body"]["payload"]["rtms_stream_id"] != stream_id for d in world.hook.events("meeting.rtms_stopped"))
    again.close()


def test_no_reconnect_within_the_window_stops_with_19(world):
    payload, client = world.connected(world.meeting())
    client.signaling.close()
    assert _stopped_webhook(world, payload["rtms_stream_id"])["stop_reason"] == 19
    assert world.stream(payload["rtms_stream_id"])["state"] == "stopped"


def test_pause_and_resume(world):
    meeting = world.meeting()
    payload, client = world.connected(meeting)
    stream_id = payload["rtms_stream_id"]
    world.speak(meeting, words_lasting(10))  # still speaking on resume: no media while paused is the pause's doing
    client.media["audio"].recv_type(14)
    world.sim.post(f"/_sim/streams/{stream_id}/pause")
    paused = client.signaling.recv_type(8)
    assert paused["state"] == 5
    assert client.signaling.recv_type(9)["state"] == 3
    audio = client.media["audio"]
    # Frames sent before the pause may still be on their way (a loaded machine reads them late, after an earlier
    # keep-alive): the first keep-alive sent after the pause closes them. Timestamps are whole milliseconds, and a
    # frame's is its tick's, which the simulator sends at that time or later: one stamped with the pause's own
    # millisecond was sent before it (a fresh clone's run met one).
    while (message := audio.recv(lambda m: m.get("msg_type") in (12, 14)))["msg_type"] == 14 \
            or message["timestamp"] <= paused["timestamp"]:
        assert message["msg_type"] == 12 or message["content"]["timestamp"] <= paused["timestamp"], \
            "a frame produced while paused"
    for _ in range(2):
        assert audio.recv(lambda m: m.get("msg_type") in (12, 14))["msg_type"] == 12, "no media while paused"
    world.sim.post(f"/_sim/streams/{stream_id}/resume")
    assert client.signaling.recv_type(8)["state"] == 6
    assert client.signaling.recv_type(9)["state"] == 4
    assert audio.recv_type(14)["content"]["length"] == 640
    client.close()


def test_stream_close_request(world):
    payload, client = world.connected(world.meeting())
    client.signaling.send({"msg_type": 21, "rtms_stream_id": payload["rtms_stream_id"]})
    response = client.signaling.recv_type(22)
    assert response["status_code"] == 0 and response["rtms_stream_id"] == payload["rtms_stream_id"]
    _assert_stopped_on_the_wire(client, 20)
    assert _stopped_webhook(world, payload["rtms_stream_id"])["stop_reason"] == 20


def _end(world, meeting, stream_id):
    world.sim.post(f"/_sim/meetings/{meeting['id']}/end")


def _disable_app(world, meeting, stream_id):
    world.sim.post(f"/_sim/meetings/{meeting['id']}/apps/{world.client_id}/disable")


def _sharing_off(world, meeting, stream_id):
    world.sim.post(f"/_sim/meetings/{meeting['id']}/settings", json={"share_with_apps": False})


def _eject_operator(world, meeting, stream_id):
    world.sim.post(f"/_sim/meetings/{meeting['id']}/leave", json={"key": "p2", "ejected": True})


def _operator_leaves_without_continuous_sharing(world, meeting, stream_id):
    world.sim.post(f"/_sim/meetings/{meeting['id']}/settings", json={"continuous_sharing": False})
    world.sim.post(f"/_sim/meetings/{meeting['id']}/leave", json={"key": "p2"})


def _admin_disables_sharing(world, meeting, stream_id):
    world.sim.put(f"/_sim/settings/account/{meeting['account_id']}", json={"share_with_apps": False})


def _user_removes_the_app(world, meeting, stream_id):
    operator = world.stream(stream_id)["operator_id"]
    world.sim.post(f"/_sim/apps/{world.client_id}/deauthorize", json={"user_id": operator})


def _control_stop(world, meeting, stream_id):
    world.sim.post(f"/_sim/streams/{stream_id}/stop", json={"reason": "STREAM_CANCELED"})


@pytest.mark.parametrize("action, reason", [
    (_end, 6), (_disable_app, 5), (_sharing_off, 9), (_eject_operator, 4),
    (_operator_leaves_without_continuous_sharing, 3), (_admin_disables_sharing, 9), (_user_removes_the_app, 8),
    (_control_stop, 7),
])
def test_stop_reasons(world, action, reason):
    meeting = world.meeting(host={"name": "Dana", "account_id": f"acct-{action.__name__}"})
    payload, client = world.connected(meeting, key="p2")
    action(world, meeting, payload["rtms_stream_id"])
    _assert_stopped_on_the_wire(client, reason)
    assert _stopped_webhook(world, payload["rtms_stream_id"])["stop_reason"] == reason


def test_operator_leaving_keeps_the_stream_with_continuous_sharing(world):
    meeting = world.meeting()
    payload, client = world.connected(meeting, key="p2", subscribe=(4,))
    world.sim.post(f"/_sim/meetings/{meeting['id']}/leave", json={"key": "p2"})
    client.signaling.recv(lambda m: m.get("msg_type") == 6 and m["event"]["event_type"] == 4)
    assert world.stream(payload["rtms_stream_id"])["state"] == "active"
    client.close()


# -- faults ---------------------------------------------------------------------------------------------------

def test_fault_delay_frames(world):
    meeting = world.meeting()
    payload, client = world.connected(meeting)
    world.speak(meeting, words_lasting(5))
    world.sim.post("/_sim/faults", json={"kind": "delay_frames", "stream_id": payload["rtms_stream_id"],
                                         "media": "audio", "delay_ms": 300})
    audio = client.media["audio"]
    frame = audio.recv(lambda m: m.get("msg_type") == 14 and m["_received_ms"] - m["content"]["timestamp"] > 250)
    assert frame["content"]["length"] == 640
    world.sim.delete("/_sim/faults")
    client.close()


def test_fault_reorder_frames(world):
    meeting = world.meeting()
    payload, client = world.connected(meeting)
    world.speak(meeting, words_lasting(12))
    world.sim.post("/_sim/faults", json={"kind": "reorder_frames", "stream_id": payload["rtms_stream_id"]})
    audio = client.media["audio"]
    # Read until a frame comes after a later one: the frames sent before the fault (as many as the reader thread
    # is behind on a loaded machine) come first and in order.
    previous = audio.recv_type(14)["content"]["timestamp"]
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        current = audio.recv_type(14)["content"]["timestamp"]
        if current < previous:
            break
        previous = current
    else:
        pytest.fail("frames stayed in order for 10 s")
    world.sim.delete("/_sim/faults")
    client.close()


def test_fault_refuse_handshakes(world):
    payload = world.start_stream(world.meeting())
    world.sim.post("/_sim/faults", json={"kind": "refuse_handshake", "stage": "signaling", "status_code": 45})
    response = world.client(payload).handshake()
    assert response["status_code"] == 45
    assert world.client(payload).handshake()["status_code"] == 0  # one-shot
    world.sim.post("/_sim/faults", json={"kind": "refuse_handshake", "stage": "upgrade"})
    with pytest.raises(Exception, match="503"):
        Socket(payload["server_urls"])


def test_fault_stall_keepalive_silences_requests(world):
    payload, client = world.connected(world.meeting(), media=("transcript",))
    world.sim.post("/_sim/faults", json={"kind": "stall_keepalive", "stream_id": payload["rtms_stream_id"],
                                         "socket": "signaling"})
    sent = world.stream(payload["rtms_stream_id"])["connections"][0]["keepalive_sent"]
    world.wait_stream(payload["rtms_stream_id"], lambda s: s["connections"][1]["keepalive_sent"] >= 8,
                      what="transcript keep-alives to continue")
    assert world.stream(payload["rtms_stream_id"])["connections"][0]["keepalive_sent"] <= sent + 1
    world.sim.delete("/_sim/faults")
    client.close()


def test_fault_ignore_keepalive_responses_times_the_signaling_out(world):
    payload, client = world.connected(world.meeting())
    world.sim.post("/_sim/faults", json={"kind": "ignore_keepalive_resp", "stream_id": payload["rtms_stream_id"],
                                         "socket": "signaling"})
    world.hook.wait_for("meeting.rtms_interrupted",
                        lambda d: d["body"]["payload"]["rtms_stream_id"] == payload["rtms_stream_id"])
    world.sim.delete("/_sim/faults")
    assert _stopped_webhook(world, payload["rtms_stream_id"])["stop_reason"] == 24


def test_media_socket_reconnect_while_signaling_lives(world):
    meeting = world.meeting()
    payload, client = world.connected(meeting)
    stream_id = payload["rtms_stream_id"]
    world.speak(meeting, words_lasting(5))
    client.media["audio"].recv_type(14)
    world.sim.post("/_sim/faults", json={"kind": "drop_socket", "stream_id": stream_id, "socket": "audio"})
    event = client.signaling.recv(lambda m: m.get("msg_type") == 6 and m["event"]["event_type"] == 7)
    assert isinstance(event["event"]["timestamp"], int)
    time.sleep(0.3)  # the line goes on for a while (15 audio ticks) with the audio socket down
    reconnected_at = time.time() * 1000
    response, audio = client.open_media("audio", 1)
    assert response["status_code"] == 0
    client.ready()
    frame = audio.recv_type(14)["content"]
    # audio produced while the socket was down is replayed first, with its original timestamp
    assert frame["timestamp"] < reconnected_at - 100
    stream = world.stream(stream_id)
    assert stream["state"] == "active" and stream["stop_reason"] is None
    assert client.signaling.recv(lambda m: m.get("msg_type") in (8, 12))["msg_type"] == 12  # no new state
    client.close()
