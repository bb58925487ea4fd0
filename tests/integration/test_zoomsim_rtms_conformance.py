"""Conformance of the simulator's RTMS servers with docs/ZOOM.md (§3 signaling, §4 media, §5 enums), message by
message, including every refusal. The client side is tests/zoomsim_client.py, written from the reference only."""

import base64
import json
import random

import pytest

from tests.zoomsim_client import SimWorld, Socket, sim_world, words_lasting


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    with sim_world(tmp_path_factory.mktemp("zoomsim-rtms"), keepalive_interval=0.25, reconnect_scale=0.05,
                   retry_scale=0.0005) as world:
        yield world


def _signaling_request(client, **overrides):
    request = {"msg_type": 1, "protocol_version": 1, "sequence": 1, "meeting_uuid": client.meeting_uuid,
               "rtms_stream_id": client.stream_id, "signature": client.signature()}
    request.update(overrides)
    return request


# -- signaling handshake -----------------------------------------------------------------------------------------

def test_signaling_handshake_returns_per_type_media_urls(world):
    payload = world.start_stream(world.meeting())
    assert payload["server_urls"].startswith(world.sim.rtms_url + "/signaling/")
    client = world.client(payload)
    response = client.handshake()
    assert response["msg_type"] == 2 and response["status_code"] == 0 and response["reason"] == ""
    urls = response["media_server"]["server_urls"]
    assert set(urls) == {"audio", "video", "deskshare", "transcript", "chat", "all"}
    assert all(url.startswith("ws://127.0.0.1:") for url in urls.values())
    client.close()


def test_handshake_accepts_what_the_official_client_sends(world):
    """§13.7: subprotocol offer, X-WebSocket-Token, Zoom's UA, alphabetical keys, random sequence, client agent."""
    payload = world.start_stream(world.meeting())
    client = world.client(payload)
    sock = Socket(payload["server_urls"], subprotocols=["websocket"], user_agent_header="Mozilla/5.0 Zoom.App",
                  additional_headers={"X-WebSocket-Token": "YWJj,ZGVm,Z2hp"})
    request = _signaling_request(client, sequence=random.randrange(2**32),
                                 rtms_client_agent="rtms_sdk_cpp-.0.20260319-python-rtms")
    sock.ws.send(json.dumps(dict(sorted(request.items()))))
    assert sock.recv_type(2)["status_code"] == 0
    record = world.stream(payload["rtms_stream_id"])["connections"][0]
    assert record["subprotocol_offered"] == "websocket"
    assert record["has_websocket_token"] is True
    assert record["client_agent"] == "rtms_sdk_cpp-.0.20260319-python-rtms"
    sock.close()


@pytest.mark.parametrize("change, status, reason_part", [
    ({"signature": "0" * 64}, 3, "invalid signature"),
    ({"msg_type": 3}, 1, "expected msg_type 1"),
    ({"protocol_version": 2}, 4, "protocol_version"),
    ({"signature": None}, 4, "required"),
    ({"meeting_uuid": "someOtherMeeting=="}, 4, "meeting_uuid"),
    ({"rtms_stream_id": "f" * 32}, 2, "rtms_stream_id"),
])
def test_signaling_handshake_refusals(world, change, status, reason_part):
    payload = world.start_stream(world.meeting())
    client = world.client(payload)
    response = client.handshake(**change)
    assert response["status_code"] == status
    assert reason_part in response["reason"]
    assert client.signaling.wait_closed() == 1000
    errors = world.stream(payload["rtms_stream_id"])["errors"]
    assert errors[-1]["status_code"] == status


def test_signaling_refuses_non_json_and_unknown_stream(world):
    payload = world.start_stream(world.meeting())
    sock = Socket(payload["server_urls"])
    sock.ws.send("this is not json")
    assert sock.recv_type(2)["status_code"] == 4
    unknown = Socket(world.sim.rtms_url + "/signaling/" + "a" * 32)
    unknown.send(_signaling_request(world.client(payload), rtms_stream_id="a" * 32))
    response = unknown.recv_type(2)
    assert response["status_code"] == 2 and "unknown" in response["reason"]


def test_terminated_stream_refuses_handshake_with_status_2(world):
    meeting = world.meeting()
    payload = world.start_stream(meeting)
    world.sim.post(f"/_sim/streams/{payload['rtms_stream_id']}/stop", json={"reason": "STREAM_CANCELED"})
    response = world.client(payload).handshake()
    assert response["status_code"] == 2 and "terminated" in response["reason"]


def test_duplicate_signaling_is_refused_with_8_while_the_first_is_alive(world):
    payload = world.start_stream(world.meeting())
    first = world.client(payload)
    assert first.handshake()["status_code"] == 0
    second = world.client(payload)
    response = second.handshake()
    assert response["status_code"] == 8
    assert "duplicate signal request" in response["reason"]
    assert second.signaling.wait_closed() == 1000
    # Once the first connection is gone, a new handshake is the reconnect path and is accepted.
    first.signaling.close()
    world.wait_stream(payload["rtms_stream_id"], lambda s: not s["signaling_connected"], what="first socket gone")
    third = world.client(payload)
    assert third.handshake()["status_code"] == 0
    accepted = [c for c in world.stream(payload["rtms_stream_id"])["connections"]
                if c["kind"] == "signaling" and c["handshake_status"] == 0]
    assert len(accepted) == 2
    assert accepted[0]["closed_at"] is not None and accepted[0]["closed_at"] <= accepted[1]["opened_at"]
    third.close()


# -- media handshake --------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def signaled(world):
    """A stream with a live signaling connection, for media handshake checks."""
    payload = world.start_stream(world.meeting())
    client = world.client(payload)
    assert client.handshake()["status_code"] == 0
    yield client
    client.close()


AUDIO = {"content_type": 2, "sample_rate": 1, "channel": 1, "codec": 1, "data_opt": 1, "send_rate": 20}


@pytest.mark.parametrize("media_type, params, status", [
    ("1", None, 7),
    (0, None, 14),
    (64, None, 14),
    (1, [], 17),
    (1, {"audio": "loud"}, 18),
    (1, {"audio": {**AUDIO, "content_type": 4}}, 19),
    (1, {"audio": {**AUDIO, "sample_rate": 7}}, 20),
    (1, {"audio": {**AUDIO, "codec": 2, "sample_rate": 1}}, 20),
    (1, {"audio": {**AUDIO, "channel": 3}}, 21),
    (1, {"audio": {**AUDIO, "codec": 9}}, 22),
    (1, {"audio": {**AUDIO, "codec": 4, "sample_rate": 3, "channel": 2}}, 22),
    (1, {"audio": {**AUDIO, "data_opt": 5}}, 23),
    (1, {"audio": {**AUDIO, "send_rate": 30}}, 24),
    (2, {"video": "hd"}, 25),
    (2, {"video": {"content_type": 2}}, 26),
    (2, {"video": {"codec": 9}}, 27),
    (2, {"video": {"resolution": 9}}, 28),
    (2, {"video": {"data_opt": 1}}, 29),
    (2, {"video": {"codec": 5, "fps": 40}}, 30),
    (2, {"video": {"codec": 5, "fps": 10}}, 30),
    (4, {"deskshare": "fhd"}, 31),
    (4, {"deskshare": {"content_type": 1}}, 32),
    (4, {"deskshare": {"codec": 1}}, 33),
    (4, {"deskshare": {"resolution": 0}}, 34),
    (4, {"deskshare": {"codec": 5, "fps": 5}}, 35),
    (8, {"transcript": "en"}, 36),
    (8, {"transcript": {"content_type": 2}}, 37),
    (8, {"transcript": {"src_language": 99}}, 43),
    (16, {"chat": "all"}, 38),
    (16, {"chat": {"content_type": 1}}, 39),
])
def test_media_handshake_refusals(world, signaled, media_type, params, status):
    response, sock = signaled.open_media("all", media_type, params)
    assert response["msg_type"] == 4
    assert response["status_code"] == status, response
    assert response["reason"]
    assert sock.wait_closed() == 1000


def test_media_handshake_bad_signature_is_refused_with_3(world, signaled):
    response, _ = signaled.open_media("audio", 1, {"audio": AUDIO}, signature="ab" * 32)
    assert response["status_code"] == 3


def test_media_type_outside_the_apps_scopes_is_refused(world):
    narrow = SimWorld(world.sim, client_id="audio-only-app", client_secret="s2", webhook_secret_token="w2",
                      media_types=["audio", "transcript"])
    try:
        payload = narrow.start_stream(narrow.meeting())
        client = narrow.client(payload)
        response = client.handshake()
        assert set(response["media_server"]["server_urls"]) == {"audio", "transcript", "all"}
        assert client.open_media("all", 2)[0]["status_code"] == 10
        assert client.open_media("all", 4)[0]["status_code"] == 11
        assert client.open_media("all", 16)[0]["status_code"] == 13
        confirmed = client.open_media("all", 32)[0]
        assert confirmed["status_code"] == 0 and set(confirmed["media_params"]) == {"audio", "transcript"}
        client.close()
    finally:
        narrow.close()


def test_defaults_are_confirmed_and_send_rate_is_clamped(world):
    payload = world.start_stream(world.meeting())
    client = world.client(payload)
    client.handshake()
    response, _ = client.open_media("audio", 1)
    assert response["media_params"] == {"audio": AUDIO}
    response, _ = client.open_media("video", 2, {"video": {"fps": 24}})
    assert response["media_params"]["video"] == {"content_type": 3, "codec": 5, "resolution": 2, "fps": 5,
                                                 "data_opt": 3}
    response, _ = client.open_media("transcript", 8, {"transcript": None})
    assert response["media_params"]["transcript"] == {"content_type": 5, "src_language": 9, "enable_lid": True}
    client.close()
    payload = world.start_stream(world.meeting())
    client = world.client(payload)
    client.handshake()
    response, _ = client.open_media("audio", 1, {"audio": {**AUDIO, "send_rate": 1500}})
    assert response["media_params"]["audio"]["send_rate"] == 1000
    client.close()


def test_duplicate_media_connection_16_and_all_while_per_type_15(world):
    payload = world.start_stream(world.meeting())
    client = world.client(payload)
    client.handshake()
    assert client.open_media("audio", 1)[0]["status_code"] == 0
    assert client.open_media("audio", 1)[0]["status_code"] == 16
    assert client.open_media("all", 9)[0]["status_code"] == 16
    assert client.open_media("all", 32)[0]["status_code"] == 15
    client.close()


def test_media_requires_a_live_signaling_connection(world):
    payload = world.start_stream(world.meeting())
    client = world.client(payload)
    client.media_urls = {"audio": world.sim.rtms_url + f"/media/{payload['rtms_stream_id']}/audio"}
    response, _ = client.open_media("audio", 1)
    assert response["status_code"] == 2


# -- data flow ---------------------------------------------------------------------------------------------------

def test_no_media_before_client_ready_ack(world):
    meeting = world.meeting()
    payload = world.start_stream(meeting)
    client = world.client(payload)
    client.handshake()
    _, audio = client.open_media("audio", 1)
    # Keep-alives still flow: wait for two of them on the audio socket, and no audio frame may arrive meanwhile.
    for _ in range(2):
        message = audio.recv(lambda m: m.get("msg_type") in (12, 14))
        assert message["msg_type"] == 12, "audio was sent before CLIENT_READY_ACK"
    client.ready()
    world.speak(meeting, "Now we can start")
    assert audio.recv_type(14)["content"]["length"] == 640
    client.close()


def test_ready_announces_stream_and_session_state_and_first_packet(world):
    payload = world.start_stream(world.meeting())
    client = world.client(payload)
    client.handshake()
    client.open_media("audio", 1)
    client.ready()
    stream_state = client.signaling.recv_type(8)
    assert stream_state["state"] == 1 and stream_state["rtms_stream_id"] == payload["rtms_stream_id"]
    session = client.signaling.recv_type(9)
    assert session["state"] == 2 and len(session["rtms_session_id"]) == 32
    first_packet = client.signaling.recv_type(6)["event"]
    assert first_packet["event_type"] == 1 and isinstance(first_packet["timestamp"], int)
    client.close()


def test_l16_audio_transcript_and_active_speaker(world):
    meeting = world.meeting()
    payload, client = world.connected(meeting, media=("audio", "transcript"), subscribe=(2,))
    line = world.speak(meeting, "Quarterly numbers look good", key="p2")
    speaker = client.signaling.recv(lambda m: m.get("msg_type") == 6 and m["event"]["event_type"] == 2)["event"]
    assert speaker["user_id"] == 16779264 and speaker["user_name"] == "Ben"
    audio = client.media["audio"]
    # Mixed audio is the line's frames, every 20 ms from its start to its end, and nothing before or after: Zoom
    # sends none in silence (docs/ZOOM.md §4.3), only keep-alives.
    frame = audio.recv_type(14)  # keep-alives sent before the line are passed over
    voiced, previous = 0, line["start_time"] - 20
    while frame["msg_type"] == 14:
        frame = frame["content"]
        assert frame["user_id"] == 0 and "user_name" not in frame
        assert frame["length"] == 640 and len(base64.b64decode(frame["data"])) == 640
        assert frame["timestamp"] - previous == 20
        previous = frame["timestamp"]
        pcm = memoryview(base64.b64decode(frame["data"])).cast("h")
        voiced += max(abs(s) for s in pcm) > 500
        frame = audio.recv(lambda m: m.get("msg_type") in (12, 14))
    assert previous == line["end_time"] - 20, "the line's last frame, then keep-alives"
    assert voiced >= 10, "the spoken line should be audible, not silence"
    transcript = client.media["transcript"].recv_type(17, timeout=10)["content"]
    assert transcript["data"] == "Quarterly numbers look good"
    assert transcript["user_id"] == 16779264 and transcript["user_name"] == "Ben"
    assert transcript["start_time"] == line["start_time"] and transcript["end_time"] == line["end_time"]
    assert transcript["language"] == 9 and transcript["timestamp"] == line["end_time"]
    client.close()


@pytest.mark.parametrize("params, length, frames_per_second", [
    ({"sample_rate": 0, "channel": 1, "codec": 1, "send_rate": 20}, 320, 50),
    ({"sample_rate": 3, "channel": 2, "codec": 1, "send_rate": 20}, 3840, 50),
    ({"sample_rate": 2, "channel": 1, "codec": 1, "send_rate": 100}, 6400, 10),
    ({"sample_rate": 0, "channel": 1, "codec": 2, "send_rate": 20}, 160, 50),
])
def test_audio_formats(world, params, length, frames_per_second):
    meeting = world.meeting()
    payload = world.start_stream(meeting)
    client = world.client(payload)
    client.handshake()
    response, audio = client.open_media("audio", 1, {"audio": {**AUDIO, **params}})
    assert response["status_code"] == 0
    client.ready()
    world.speak(meeting, words_lasting(1))
    first = audio.recv_type(14)["content"]
    second = audio.recv_type(14)["content"]
    assert first["length"] == second["length"] == length
    assert second["timestamp"] - first["timestamp"] == 1000 // frames_per_second
    client.close()


def test_per_participant_audio_names_the_speaker_and_is_silent_otherwise(world):
    meeting = world.meeting()
    payload = world.start_stream(meeting)
    client = world.client(payload)
    client.handshake()
    _, audio = client.open_media("audio", 1, {"audio": {**AUDIO, "data_opt": 2}})
    client.ready()
    for _ in range(2):  # nobody speaks: only keep-alives arrive
        assert audio.recv(lambda m: m.get("msg_type") in (12, 14))["msg_type"] == 12
    world.sim.post(f"/_sim/meetings/{meeting['id']}/speak", json={"key": "p1", "text": "Hi"})
    frame = audio.recv_type(14)["content"]
    assert frame["user_id"] == 16778240 and frame["user_name"] == "Ana Host"
    client.close()


def test_participant_events(world):
    meeting = world.meeting()
    payload, client = world.connected(meeting, subscribe=(3, 4, 5, 6, 8, 9))
    sig = client.signaling

    def event(event_type):
        return sig.recv(lambda m: m.get("msg_type") == 6 and m["event"]["event_type"] == event_type)["event"]

    present = event(3)  # the subscription is answered with who is already there
    assert {p["user_name"] for p in present["participants"]} == {"Ana Host", "Ben"}
    cleo = world.sim.post(f"/_sim/meetings/{meeting['id']}/join", json={"name": "Cleo"}).json()
    assert event(3)["participants"] == [{"user_id": cleo["rtms_user_id"], "user_name": "Cleo"}]
    world.sim.post(f"/_sim/meetings/{meeting['id']}/video", json={"key": cleo["key"], "on": True})
    assert event(8)["participants"] == [{"user_id": cleo["rtms_user_id"]}]
    world.sim.post(f"/_sim/meetings/{meeting['id']}/share", json={"key": cleo["key"], "on": True})
    sharing = event(5)
    assert sharing["user_id"] == cleo["rtms_user_id"] and sharing["user_name"] == "Cleo"
    world.sim.post(f"/_sim/meetings/{meeting['id']}/share", json={"key": cleo["key"], "on": False})
    assert "timestamp" in event(6)
    world.sim.post(f"/_sim/meetings/{meeting['id']}/video", json={"key": cleo["key"], "on": False})
    assert event(9)["participants"] == [{"user_id": cleo["rtms_user_id"]}]
    world.sim.post(f"/_sim/meetings/{meeting['id']}/leave", json={"key": cleo["key"]})
    assert event(4)["participants"] == [{"user_id": cleo["rtms_user_id"]}]
    client.close()


def test_event_subscription_errors_are_recorded(world):
    payload, client = world.connected(world.meeting())
    client.signaling.send({"msg_type": 5, "events": [{"event_type": 99, "subscribe": True},
                                                     {"event_type": "join"}]})
    client.signaling.send({"msg_type": 5, "events": "all"})
    stream = world.wait_stream(payload["rtms_stream_id"], lambda s: len(s["errors"]) >= 3, what="3 errors")
    assert [e["status_code"] for e in stream["errors"]] == [6, 42, 5]
    client.close()


def test_video_and_share_frames_are_jpeg(world):
    meeting = world.meeting()
    payload, client = world.connected(meeting, media=("video", "deskshare"))
    world.sim.post(f"/_sim/meetings/{meeting['id']}/video", json={"key": "p2", "on": True})
    # The simulator encodes each new picture in pure Python, which takes seconds on a loaded machine.
    frame = client.media["video"].recv_type(15, timeout=30)["content"]
    data = base64.b64decode(frame["data"])
    assert data[:2] == b"\xff\xd8" and data[-2:] == b"\xff\xd9" and frame["length"] == len(data)
    assert frame["user_name"] == "Ben"
    world.sim.post(f"/_sim/meetings/{meeting['id']}/share", json={"key": "p1", "on": True})
    share = client.media["deskshare"].recv_type(16, timeout=30)["content"]
    assert base64.b64decode(share["data"])[:2] == b"\xff\xd8" and share["user_name"] == "Ana Host"
    client.close()


def test_individual_video_subscription(world):
    meeting = world.meeting()
    payload = world.start_stream(meeting)
    client = world.client(payload)
    client.handshake()
    client.open_media("video", 2, {"video": {"data_opt": 4, "codec": 6, "fps": 2}})
    client.ready()
    world.sim.post(f"/_sim/meetings/{meeting['id']}/video", json={"key": "p2", "on": True})
    request = {"msg_type": 28, "user_id": 16779264, "subscribe": True, "timestamp": 1}
    client.signaling.send(request)
    assert client.signaling.recv_type(29)["status_code"] == 0
    frame = client.media["video"].recv_type(15)["content"]
    assert base64.b64decode(frame["data"])[:4] == b"\x89PNG" and frame["user_id"] == 16779264
    client.signaling.send(request)
    assert client.signaling.recv_type(29)["status_code"] == 44
    client.close()


def test_chat_message(world):
    meeting = world.meeting()
    payload, client = world.connected(meeting, media=("chat",))
    world.sim.post(f"/_sim/meetings/{meeting['id']}/chat", json={"key": "p2", "text": "link in chat"})
    chat = client.media["chat"].recv_type(18)["content"]
    assert chat["data"] == "link in chat" and chat["user_name"] == "Ben" and chat["user_id"] == 16779264
    client.close()


def test_unified_all_socket_carries_every_type(world):
    meeting = world.meeting()
    payload = world.start_stream(meeting)
    client = world.client(payload)
    client.handshake()
    response, everything = client.open_media("all", 32, {"audio": AUDIO})
    assert set(response["media_params"]) == {"audio", "video", "deskshare", "transcript", "chat"}
    client.ready()
    world.sim.post(f"/_sim/meetings/{meeting['id']}/chat", json={"key": "p1", "text": "hello"})
    world.speak(meeting, "Hello")
    seen = {}
    while len(seen) < 2:
        message = everything.recv(lambda m: m.get("msg_type") in (14, 18))
        seen.setdefault(message["msg_type"], message["content"])
    assert seen[14]["length"] == 640 and seen[18]["data"] == "hello"
    client.close()


def test_state_requests(world):
    payload, client = world.connected(world.meeting())
    session_id = world.stream(payload["rtms_stream_id"])["session_id"]
    client.signaling.send({"msg_type": 10, "rtms_session_id": session_id})
    answer = client.signaling.recv_type(11)
    assert answer["state"] == 2 and answer["status_code"] == 0
    client.signaling.send({"msg_type": 10, "rtms_session_id": "nope"})
    assert client.signaling.recv_type(11)["status_code"] == 40
    client.signaling.send({"msg_type": 19, "rtms_stream_id": payload["rtms_stream_id"]})
    answer = client.signaling.recv_type(20)
    assert answer["state"] == 1 and answer["rtms_stream_id"] == payload["rtms_stream_id"]
    client.close()
