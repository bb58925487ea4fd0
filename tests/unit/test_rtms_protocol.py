"""RTMS wire codec: enums match the reference, requests are what Zoom expects, the parser refuses bad frames."""

import base64
import hashlib
import hmac
import json

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rtms.client import protocol as p
from rtms.client.protocol import MalformedFrame, MediaType, MsgType


def test_enumerations_match_the_reference_tables():
    assert MsgType.KEEP_ALIVE_REQ == 12 and MsgType.STREAM_CLOSE_REQ == 21 and MsgType.VIDEO_SUBSCRIPTION_RESP == 29
    assert len(MsgType) == 30
    assert p.Status.DUPLICATE_SIGNAL_REQUEST == 8 and p.Status.INTERNAL_EXCEPTION == 45
    assert p.Status.CHAT_SESSION_KEY_NOT_AVAILABLE == 47 and len(p.Status) == 48
    assert p.StopReason.MEETING_ENDED == 6 and p.StopReason.STREAM_REVOKED == 8
    assert p.StopReason.RECEIVER_REQUEST_CLOSE == 20 and p.StopReason.KEEP_ALIVE_TIMEOUT == 24
    assert len(p.StopReason) == 27
    assert p.StreamState.TERMINATED == 4 and p.SessionState.STOPPED == 5
    assert MediaType.AUDIO | MediaType.TRANSCRIPT == 9 and MediaType.ALL == 32


def test_signature_is_lowercase_hex_hmac_of_client_meeting_stream():
    signature = p.handshake_signature("cid", "secret", "4444AAAiAAAAAiAiAiiAii==", "03db7045")
    expected = hmac.new(b"secret", b"cid,4444AAAiAAAAAiAiAiiAii==,03db7045", hashlib.sha256).hexdigest()
    assert signature == expected and signature == signature.lower() and len(signature) == 64


def test_signaling_handshake_request():
    sent = json.loads(p.signaling_handshake("m==", "s1", "ab12", sequence=7))
    assert sent == {"msg_type": 1, "protocol_version": 1, "sequence": 7, "meeting_uuid": "m==",
                    "rtms_stream_id": "s1", "signature": "ab12", "buffer_data": True}


def test_media_handshake_asks_explicitly_for_l16_16k_mono_mixed_20ms_and_english_transcript():
    params = p.media_params_for(MediaType.AUDIO | MediaType.TRANSCRIPT)
    sent = json.loads(p.data_handshake("m==", "s1", "ab12", 7, MediaType.AUDIO | MediaType.TRANSCRIPT, params))
    assert sent["msg_type"] == 3 and sent["media_type"] == 9 and sent["payload_encryption"] is False
    assert sent["media_params"]["audio"] == {"content_type": 2, "codec": 1, "sample_rate": 1, "channel": 1,
                                             "data_opt": 1, "send_rate": 20}
    assert sent["media_params"]["transcript"] == {"content_type": 5, "src_language": 9, "enable_lid": True}
    assert "video" not in sent["media_params"]


def test_per_participant_audio_and_every_media_type():
    params = p.media_params_for(MediaType(31), per_participant_audio=True)
    assert params["audio"]["data_opt"] == 2
    assert set(params) == {"audio", "video", "deskshare", "transcript", "chat"}
    assert params["video"]["codec"] == p.Codec.JPG and params["chat"] == {"content_type": 5}


def test_small_requests():
    assert json.loads(p.client_ready_ack("s1")) == {"msg_type": 7, "rtms_stream_id": "s1"}
    assert json.loads(p.stream_close_request("s1")) == {"msg_type": 21, "rtms_stream_id": "s1"}
    assert json.loads(p.event_subscription([2, 3])) == {
        "msg_type": 5, "events": [{"event_type": 2, "subscribe": True}, {"event_type": 3, "subscribe": True}]}
    assert json.loads(p.keep_alive_response(1732520010000, 4)) == {"msg_type": 13, "timestamp": 1732520010000,
                                                                   "sequence": 4}
    assert json.loads(p.keep_alive_response(1732520010000)) == {"msg_type": 13, "timestamp": 1732520010000}


def test_signaling_url_is_the_first_websocket_url():
    assert p.pick_signaling_url("https://x.zoom.us, wss://rtms.zoom.us/a,ws://b") == "wss://rtms.zoom.us/a"
    assert p.pick_signaling_url("ws://127.0.0.1:9101/signaling/abc") == "ws://127.0.0.1:9101/signaling/abc"
    with pytest.raises(ValueError):
        p.pick_signaling_url("https://only.http")


def test_audio_frame_parses_to_pcm():
    pcm = bytes(range(256)) * 2 + bytes(128)
    frame = orjson.dumps({"msg_type": 14, "content": {"user_id": 0, "data": base64.b64encode(pcm).decode(),
                                                      "length": 640, "timestamp": 1732520001020}})
    message = p.decode_frame(memoryview(frame))
    assert p.parse_binary_media(message) == (0, None, 1732520001020, pcm)


def _by_the_general_path(payload):
    return p.parse_binary_media(p.decode_frame(payload))


def _by_the_fast_path(payload):
    audio = p.decode_audio_frame(payload).content
    return audio.user_id, audio.user_name, audio.timestamp, audio.data


@pytest.mark.parametrize("frame", [
    b'{"msg_type":14,"content":{"user_id":16778240,"user_name":"Ana","timestamp":1732520001020,"data":"AAECAw=="}}',
    b'{"content":{"data":"AAECAw==","timestamp":5,"user_id":0},"msg_type":14,"extra":[1,{"a":2}]}',
    b'{"msg_type":14,"content":{"user_id":0,"user_name":null,"timestamp":-5,"data":"","length":0}}',
])
def test_audio_fast_path_reads_what_the_general_path_reads(frame):
    assert _by_the_fast_path(memoryview(frame)) == _by_the_general_path(memoryview(frame))


@pytest.mark.parametrize("frame", [
    b'{"msg_type":14,"content":{"user_id":0,"timestamp":1,"data":"data:audio/l16;base64,AAECAw=="}}',
    b'{"msg_type":14,"content":{"user_id":9223372036854775808,"timestamp":1,"data":"AAAA"}}',
    b'{"msg_type":15,"content":{"user_id":0,"timestamp":1,"data":"AAAA"}}',
    b'{"msg_type":14,"content":{"user_id":0,"timestamp":1,"data":"AAA"}}',
    b'{"msg_type":14,"content":{"user_id":true,"timestamp":1,"data":"AAAA"}}',
    b'{"msg_type":14.0,"content":{"user_id":0,"timestamp":1,"data":"AAAA"}}',
    b'{"msg_type":12,"timestamp":5,"sequence":2}',
    b"{not json",
])
def test_everything_else_is_left_to_the_general_path(frame):
    """Other kinds, a data-URL prefix, integers wider than int64, malformed audio: the general path judges them
    (and names the field at fault when it refuses)."""
    with pytest.raises(p.NotAWellFormedAudioFrame):
        p.decode_audio_frame(frame)


def test_share_frame_with_data_url_prefix():
    message = {"msg_type": 16, "content": {"user_id": 5, "user_name": "Ana", "timestamp": 1,
                                           "data": "data:image/jpeg;base64," + base64.b64encode(b"\xff\xd8").decode()}}
    assert p.parse_binary_media(message) == (5, "Ana", 1, b"\xff\xd8")


def test_transcript_chat_event_and_state_frames():
    transcript = {"msg_type": 17, "content": {"user_id": 16778240, "user_name": "Ana", "start_time": 1000,
                                              "end_time": 3400, "timestamp": 3400, "language": 9,
                                              "data": "Hello everyone", "extra": [1]}}
    assert p.parse_transcript(transcript) == (16778240, "Ana", 1000, 3400, 3400, 9, "Hello everyone")
    chat = {"msg_type": 18, "content": {"user_id": 1, "user_name": "Ben", "timestamp": 4000, "data": "link"}}
    assert p.parse_chat(chat) == (1, "Ben", 4000, "link")
    event = {"msg_type": 6, "event": {"event_type": 3, "timestamp": 1, "participants": [{"user_id": 1}]}}
    assert p.parse_event(event) == (3, event["event"])
    assert p.parse_state_update({"msg_type": 8, "state": 4, "reason": 6}) == (4, 6)
    assert p.parse_state_update({"msg_type": 9, "state": 5, "stop_reason": 6}) == (5, 6)
    assert p.parse_state_update({"msg_type": 9, "state": 2}) == (2, None)


def test_handshake_response_media_urls_keep_only_strings():
    response = {"msg_type": 2, "status_code": 0, "reason": "",
                "media_server": {"server_urls": {"audio": "ws://a", "all": "ws://all", "video": None, "x": 3}}}
    assert p.parse_status(response) == (0, "")
    assert p.parse_media_server_urls(response) == {"audio": "ws://a", "all": "ws://all"}
    with pytest.raises(MalformedFrame):
        p.parse_media_server_urls({"msg_type": 2, "status_code": 0})


@pytest.mark.parametrize("frame, kind", [
    (b"{not json", "bad_json"),
    (b"\xff\xfe", "bad_json"),
    (b"[1,2]", "not_an_object"),
    (b'{"content":{}}', "bad_msg_type"),
    (b'{"msg_type":"14"}', "bad_msg_type"),
    (b'{"msg_type":true}', "bad_msg_type"),
    (b'{"msg_type":14.0}', "bad_msg_type"),
])
def test_undecodable_frames_are_refused(frame, kind):
    with pytest.raises(MalformedFrame) as refused:
        p.decode_frame(frame)
    assert refused.value.kind == kind


@pytest.mark.parametrize("content, kind", [
    (None, "missing_content"),
    ({"user_id": 0, "timestamp": 1}, "bad_data"),
    ({"user_id": 0, "timestamp": "1", "data": "AAAA"}, "bad_timestamp"),
    ({"timestamp": 1, "data": "AAAA"}, "bad_user_id"),
    ({"user_id": 0, "timestamp": 1, "data": "AAA*"}, "bad_base64"),
    ({"user_id": 0, "timestamp": 1, "data": "AAA"}, "bad_base64"),
    ({"user_id": 0, "user_name": 5, "timestamp": 1, "data": "AAAA"}, "bad_user_name"),
    ({"user_id": 0, "timestamp": 2 ** 64 - 1, "data": "AAAA"}, "bad_timestamp"),  # beyond a BIGINT column
    ({"user_id": -2 ** 63 - 1, "timestamp": 1, "data": "AAAA"}, "bad_user_id"),
])
def test_bad_audio_frames_are_refused(content, kind):
    with pytest.raises(MalformedFrame) as refused:
        p.parse_binary_media({"msg_type": 14, "content": content})
    assert refused.value.kind == kind and refused.value.msg_type == 14


def test_transcript_without_times_is_refused():
    with pytest.raises(MalformedFrame):
        p.parse_transcript({"msg_type": 17, "content": {"user_id": 1, "timestamp": 2, "end_time": 2, "data": "x"}})


@pytest.mark.parametrize("message, kind", [
    ({"msg_type": 17, "content": {"user_id": 1, "start_time": 1, "end_time": 2, "timestamp": 2 ** 63, "data": "x"}},
     "bad_timestamp"),
    ({"msg_type": 17, "content": {"user_id": 1, "start_time": 1, "end_time": 2, "timestamp": 2, "language": 2 ** 31,
                                  "data": "x"}}, "bad_language"),
    ({"msg_type": 18, "content": {"user_id": 2 ** 63, "timestamp": 2, "data": "x"}}, "bad_user_id"),
    ({"msg_type": 6, "event": {"event_type": 2 ** 31}}, "bad_event_type"),
])
def test_numbers_beyond_their_columns_are_refused(message, kind):
    parse = {17: p.parse_transcript, 18: p.parse_chat, 6: p.parse_event}[message["msg_type"]]
    with pytest.raises(MalformedFrame) as refused:
        parse(message)
    assert refused.value.kind == kind


def test_a_stop_reason_beyond_any_reason_is_no_reason():
    assert p.parse_state_update({"msg_type": 8, "state": 4, "reason": 2 ** 40}) == (4, None)
    assert p.parse_state_update({"msg_type": 9, "state": 5, "stop_reason": 6}) == (5, 6)


def test_keep_alive_is_always_answerable():
    assert p.parse_keep_alive({"msg_type": 12, "timestamp": 5, "sequence": 2}) == (5, 2)
    assert p.parse_keep_alive({"msg_type": 12, "timestamp": "x", "sequence": "y"}) == (None, None)


# --- property tests: whatever the server sends, the codec either returns or raises MalformedFrame -------------

_json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-2**63, 2**64) | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=12)
_field_values = _json_values | st.text(alphabet="ABCDEFGHabcdefgh0123456789+/=*-_ ", max_size=40)
_content = st.fixed_dictionaries({}, optional={
    "user_id": _field_values, "user_name": _field_values, "data": _field_values, "timestamp": _field_values,
    "start_time": _field_values, "end_time": _field_values, "language": _field_values, "length": _field_values})
_messages = st.fixed_dictionaries(
    {"msg_type": st.integers(-3, 40) | _json_values},
    optional={"content": _content | _json_values, "event": _json_values | st.fixed_dictionaries(
        {"event_type": _field_values}), "state": _field_values, "reason": _field_values,
        "stop_reason": _field_values, "status_code": _field_values, "timestamp": _field_values,
        "sequence": _field_values, "media_server": _json_values})

_PARSERS = {14: p.parse_binary_media, 15: p.parse_binary_media, 16: p.parse_binary_media,
            17: p.parse_transcript, 18: p.parse_chat, 6: p.parse_event, 8: p.parse_state_update,
            9: p.parse_state_update, 2: p.parse_status, 4: p.parse_status, 12: p.parse_keep_alive}


def _parse_like_the_client(payload):
    message = p.decode_frame(payload)
    parser = _PARSERS.get(message["msg_type"])
    if parser is not None:
        parser(message)
        if message["msg_type"] == 2:
            p.parse_media_server_urls(message)


@settings(max_examples=1200, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(_messages)
def test_random_structured_frames_never_raise_anything_but_malformed(message):
    try:
        payload = orjson.dumps(message, option=orjson.OPT_NON_STR_KEYS)
    except (TypeError, orjson.JSONEncodeError):
        return  # integers beyond 64 bits: not representable on the wire either
    try:
        _parse_like_the_client(payload)
    except MalformedFrame:
        pass


@settings(max_examples=1000, deadline=None)
@given(st.binary(max_size=300) | st.text(max_size=300).map(str.encode))
def test_random_bytes_never_raise_anything_but_malformed(payload):
    try:
        _parse_like_the_client(payload)
    except MalformedFrame:
        pass


def _fast_path_agrees(payload):
    """Whatever the fast path accepts, the general path accepts with the same reading."""
    try:
        fast = _by_the_fast_path(payload)
    except p.NotAWellFormedAudioFrame:
        return
    assert fast == _by_the_general_path(payload)


# A valid audio frame with at most one field replaced by anything: both readings are compared on every field.
_valid_audio_content = st.fixed_dictionaries(
    {"user_id": st.integers(-2**63, 2**63 - 1), "timestamp": st.integers(-2**63, 2**63 - 1),
     "data": st.binary(max_size=12).map(lambda raw: base64.b64encode(raw).decode())},
    optional={"user_name": st.none() | st.text(max_size=8), "length": _json_values})
_near_audio = st.builds(
    lambda content, field, value: {"msg_type": 14, "content": {**content, **({field: value} if field else {})}},
    _valid_audio_content, st.sampled_from(["user_id", "timestamp", "data", "user_name", None]),
    _field_values | st.integers(-2**64, 2**64))


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(_near_audio | _messages)
def test_the_audio_fast_path_never_accepts_what_the_general_path_refuses(message):
    try:
        payload = orjson.dumps(message, option=orjson.OPT_NON_STR_KEYS)
    except (TypeError, orjson.JSONEncodeError):
        return
    _fast_path_agrees(payload)


@settings(max_examples=1000, deadline=None)
@given(st.binary(max_size=300) | st.text(max_size=300).map(str.encode))
def test_the_audio_fast_path_agrees_on_random_bytes(payload):
    _fast_path_agrees(payload)
