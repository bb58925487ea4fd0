"""Media building blocks of the simulator: handshake parameter validation against the reference's enums, audio
formats, speech-like audio, and the JPEG/PNG frames."""

import array
import struct
import zlib
from types import SimpleNamespace

import pytest

from zoomsim.images import jpeg, png
from zoomsim.media import AudioFormat, MediaTicker, _tone_speech
from zoomsim.media_params import MediaParamError, confirm_media_params, parse_media_type
from zoomsim.protocol import handshake_signature, stop_reason_from

ALL = ["audio", "video", "deskshare", "transcript", "chat"]


def test_media_type_bitmask():
    assert parse_media_type(9, ALL) == ("audio", "transcript")
    assert parse_media_type(32, ALL) == tuple(ALL)
    assert parse_media_type(32, ["audio"]) == ("audio",)
    for value, status in ((True, 7), (None, 7), (0, 14), (33, 14), (-1, 14)):
        with pytest.raises(MediaParamError) as error:
            parse_media_type(value, ALL)
        assert error.value.status == status
    with pytest.raises(MediaParamError) as error:
        parse_media_type(2, ["audio"])
    assert error.value.status == 10


def test_audio_defaults_follow_the_reference_decision():
    assert confirm_media_params(None, ("audio",)) == {"audio": {
        "content_type": 2, "sample_rate": 1, "channel": 1, "codec": 1, "data_opt": 1, "send_rate": 20}}
    partial = confirm_media_params({"audio": {"sample_rate": 3, "send_rate": 40}}, ("audio",))["audio"]
    assert partial["sample_rate"] == 3 and partial["send_rate"] == 40 and partial["codec"] == 1


def test_booleans_are_not_enum_values():
    with pytest.raises(MediaParamError) as error:
        confirm_media_params({"audio": {"sample_rate": True}}, ("audio",))
    assert error.value.status == 20


@pytest.mark.parametrize("codec, rate, channels, chunk", [(1, 16000, 1, 640), (1, 48000, 2, 3840),
                                                          (1, 8000, 1, 320), (2, 8000, 1, 160)])
def test_audio_formats_cut_20_ms_chunks(codec, rate, channels, chunk):
    audio_format = AudioFormat(codec, rate, channels)
    assert audio_format.chunk_bytes == chunk == len(audio_format.silence)
    pcm, source_rate = _tone_speech("hello there", 140)
    converted = audio_format.convert(pcm, source_rate)
    expected = len(pcm) // 2 * rate // source_rate * channels * (1 if codec == 2 else 2)
    assert abs(len(converted) - expected) <= 8


def test_tone_speech_is_audible_with_pauses():
    pcm, rate = _tone_speech("Quarterly numbers look good", 150)
    samples = array.array("h", pcm)
    assert len(samples) / rate > 1.0
    assert max(samples) > 5000 and min(samples) < -5000
    assert samples.count(0) > rate * 0.1  # gaps between syllables and words


def _jpeg_segments(data):
    assert data[:2] == b"\xff\xd8" and data[-2:] == b"\xff\xd9"
    position, markers = 2, {}
    while data[position] == 0xFF and data[position + 1] != 0xDA:
        marker = data[position + 1]
        length = struct.unpack(">H", data[position + 2:position + 4])[0]
        markers.setdefault(marker, []).append(data[position + 4:position + 2 + length])
        position += 2 + length
    return markers


def test_jpeg_is_a_baseline_frame_of_the_requested_size():
    markers = _jpeg_segments(jpeg(1280, 720, (40, 90, 160)))
    precision, height, width, components = struct.unpack(">BHHB", markers[0xC0][0][:6])
    assert (precision, width, height, components) == (8, 1280, 720, 3)
    assert len(markers[0xC4]) == 4 and len(markers[0xDB]) == 1


def test_png_decodes_to_the_avatar_colours():
    data = png(64, 48, (200, 60, 60))
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    assert (width, height) == (64, 48)
    idat_length = struct.unpack(">I", data[33:37])[0]
    raw = zlib.decompress(data[41:41 + idat_length])
    row = 1 + width * 3
    assert raw[1:4] == bytes((200, 60, 60))  # corner: background
    middle = (height // 2) * row + 1 + (width // 2) * 3
    assert raw[middle:middle + 3] == bytes((255, 150, 150))  # centre: the lighter disc


def test_handshake_signature_matches_the_reference_formula():
    import hashlib
    import hmac

    expected = hmac.new(b"secret", b"client,meeting==,stream", hashlib.sha256).hexdigest()
    assert handshake_signature("client", "secret", "meeting==", "stream") == expected


def test_stop_reason_names():
    assert stop_reason_from("STOP_BC_MEETING_ENDED") == 6 == stop_reason_from("meeting_ended") == stop_reason_from(6)
    with pytest.raises(KeyError):
        stop_reason_from("NOPE")


def test_an_overloaded_ticker_skips_live_audio_but_keeps_the_buffer_of_a_dropped_audio_socket():
    ticker = MediaTicker(SimpleNamespace(config=SimpleNamespace(clock_scale=1, max_catchup=1.0)))
    live = SimpleNamespace(audio_next_tick=101, media={"audio": SimpleNamespace(ready=True)})
    dropped = SimpleNamespace(audio_next_tick=101, media={})  # its audio socket closed since the last tick
    ticker.streams = [live, dropped]
    ticker._skip_overload(done=100, now_tick=200)  # the simulator was starved for 2 s
    assert live.audio_next_tick == 200 and ticker.skipped_frames == 99
    assert dropped.audio_next_tick == 101  # replayed from where it dropped once the socket is back
