"""The media sinks: what the RTMS client hands them is buffered, stored in batches, and replays are stored once.
Fuzzed with hypothesis through the real client's frame handler (frames as a server could send them): no frame
makes the sink raise, and whatever it buffered can be written to PostgreSQL."""

import base64
import json
import wave

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rtms import metrics, sinks, storage
from rtms.client import StreamClient
from rtms.models import ParticipantEvent, StreamSession, TranscriptSegment

pytestmark = pytest.mark.django_db


class FakeConnection:
    label = "transcript"
    closed = False

    def send(self, data):
        pass

    def abort(self):
        pass


@pytest.fixture
def stream():
    return StreamSession.objects.create(rtms_stream_id="f" * 32, meeting_uuid="m==", client_id="app")


def client_for(store):
    return StreamClient(client_id="app", client_secret="secret", meeting_uuid="m==", rtms_stream_id="f" * 32,
                        server_urls="ws://127.0.0.1:9/signaling", sink=store)


def transcript(text, timestamp, user_id=16778240):
    return json.dumps({"msg_type": 17, "content": {"user_id": user_id, "user_name": "Ana",
                                                   "start_time": timestamp - 100, "end_time": timestamp,
                                                   "timestamp": timestamp, "language": 9, "data": text}})


def audio(timestamp, user_id=0):
    pcm = base64.b64encode(b"\x01\x00" * 320).decode()
    return json.dumps({"msg_type": 14, "content": {"user_id": user_id, "data": pcm, "length": 640,
                                                   "timestamp": timestamp}})


def stored_audio(files):
    """{file name: (first timestamp, last timestamp, frames Zoom sent, the WAV's samples)} of every audio segment,
    once closed and uploaded; with the samples {timestamp: sample} for a few timestamps on its timeline."""
    segments = {}
    for row in files.index_rows():
        with storage.storage().open(row["path"]) as body, wave.open(body) as wav:
            samples = wav.readframes(wav.getnframes())
        segments[row["path"].rsplit("/", 1)[1]] = (row["first_timestamp"], row["last_timestamp"], row["frames"],
                                                   len(samples) // 2, samples)
    return segments


def sample_at(segment, timestamp):
    """The sample Zoom's `timestamp` falls on in a segment (16 samples per ms)."""
    first, _, _, _, samples = segment
    index = (timestamp - first) * 16
    return int.from_bytes(samples[2 * index:2 * index + 2], "little", signed=True)


def test_audio_replayed_after_a_reconnect_is_stored_once(stream, tmp_path, settings):
    settings.MEDIA_ROOT = tmp_path
    store = sinks.StreamStore(stream.pk, stream.rtms_stream_id, stream.client_id)
    client = client_for(store)
    for ts in (1000, 1020, 1040, 1020, 1040, 1060):  # Zoom replays its buffer with the original timestamps
        client.on_text(FakeConnection(), audio(ts))
    files = sinks.StreamFiles(stream.pk, stream.rtms_stream_id, 1, tmp_path / "spool")
    sinks.write_media(files, *store.take_media())
    files.close()
    assert [row["bytes"] for row in files.index_rows()] == [4 * 640]
    assert store.replayed_frames == 2


def test_a_gap_in_the_audio_is_stored_as_silence_so_the_wav_keeps_zooms_timeline(stream, tmp_path, settings):
    """Zoom sends nothing while nobody speaks: the gaps (between two writes, and inside one) are silence in the WAV,
    whose duration is its first frame to its last plus one frame; a few ms of jitter add nothing; a replay after
    a gap is still skipped."""
    settings.MEDIA_ROOT = tmp_path
    store = sinks.StreamStore(stream.pk, stream.rtms_stream_id, stream.client_id)
    client = client_for(store)
    files = sinks.StreamFiles(stream.pk, stream.rtms_stream_id, 1, tmp_path / "spool")
    for batch in ((1000, 1020, 1043), (2000, 2020), (2040, 2500, 2520, 2000)):  # 1043: 3 ms late, not a gap
        for ts in batch:
            client.on_text(FakeConnection(), audio(ts))
        sinks.write_media(files, *store.take_media())
    files.close()
    [segment] = stored_audio(files).values()
    first, last, frames, samples, _ = segment
    assert (first, last, frames) == (1000, 2520, 8)
    assert samples == (last + 20 - first) * 16  # 1.54 s: the WAV lasts as long as Zoom's timeline
    assert [sample_at(segment, ts) for ts in (1000, 1059, 1200, 1999, 2000, 2059, 2060, 2499, 2500, 2539)] == [
        1, 1, 0, 0, 1, 1, 0, 0, 1, 1]
    assert store.replayed_frames == 1


def test_per_participant_segments_each_keep_their_own_timeline(stream, tmp_path, settings):
    """Per participant, a muted person sends nothing: each one's WAV has their own pauses as silence, whatever the
    others did meanwhile."""
    settings.MEDIA_ROOT = tmp_path
    store = sinks.StreamStore(stream.pk, stream.rtms_stream_id, stream.client_id, per_participant_audio=True)
    client = client_for(store)
    files = sinks.StreamFiles(stream.pk, stream.rtms_stream_id, 1, tmp_path / "spool")
    for ts in range(1000, 2000, 20):
        client.on_text(FakeConnection(), audio(ts, user_id=7))  # Ana speaks throughout
        if ts < 1100 or ts >= 1900:
            client.on_text(FakeConnection(), audio(ts, user_id=8))  # Ben mutes from 1100 to 1900
        sinks.write_media(files, *store.take_media())
    client.on_text(FakeConnection(), audio(2600, user_id=9))  # Cy speaks once
    sinks.write_media(files, *store.take_media())
    files.close()
    segments = stored_audio(files)
    assert {name: segment[:4] for name, segment in segments.items()} == {
        "user-7-1000-g1.wav": (1000, 1980, 50, 1000 * 16),
        "user-8-1000-g1.wav": (1000, 1980, 10, 1000 * 16),
        "user-9-2600-g1.wav": (2600, 2600, 1, 20 * 16),
    }
    ben = segments["user-8-1000-g1.wav"]
    assert [sample_at(ben, ts) for ts in (1099, 1100, 1899, 1900)] == [1, 0, 0, 1]


def test_a_gap_longer_than_a_segment_starts_a_new_segment(stream, tmp_path, settings):
    """Silence is written for at most a segment (RTMS_SEGMENT_SECONDS): a longer gap (a timestamp far ahead) ends
    the segment, and the frame after it starts the next one, named and indexed by its own timestamp."""
    settings.MEDIA_ROOT = tmp_path
    settings.RTMS_SEGMENT_SECONDS = 60
    store = sinks.StreamStore(stream.pk, stream.rtms_stream_id, stream.client_id)
    client = client_for(store)
    files = sinks.StreamFiles(stream.pk, stream.rtms_stream_id, 1, tmp_path / "spool")
    for ts in (1000, 1020, 61_040, 2**62, 2**62 + 20):  # 60 s of silence, then a jump beyond any segment
        client.on_text(FakeConnection(), audio(ts))
    sinks.write_media(files, *store.take_media())
    assert [row["first_timestamp"] for row in files.index_rows()] == [1000, 2**62]  # both still in the spool
    files.close()
    assert {name: segment[:4] for name, segment in stored_audio(files).items()} == {
        "mixed-1000-g1.wav": (1000, 61_040, 3, 60_060 * 16),
        f"mixed-{2**62}-g1.wav": (2**62, 2**62 + 20, 2, 40 * 16),
    }


def test_a_segments_index_row_spans_every_write_to_it(stream, tmp_path, settings):
    """The index row of an open segment, then of the closed one, spans its first frame to its last, over writes."""
    settings.MEDIA_ROOT = tmp_path
    store = sinks.StreamStore(stream.pk, stream.rtms_stream_id, stream.client_id)
    client = client_for(store)
    files = sinks.StreamFiles(stream.pk, stream.rtms_stream_id, 1, tmp_path / "spool")
    for batch in ((1000, 1020), (1040,), (1060, 1080, 1100)):
        for ts in batch:
            client.on_text(FakeConnection(), audio(ts))
        sinks.write_media(files, *store.take_media())
    [open_row] = list(files.index_rows())
    assert (open_row["first_timestamp"], open_row["last_timestamp"], open_row["frames"]) == (1000, 1100, 6)
    assert not open_row["stored"]
    files.roll()
    client.on_text(FakeConnection(), audio(1120))
    sinks.write_media(files, *store.take_media())
    closed, new = files.index_rows()
    assert (closed["first_timestamp"], closed["last_timestamp"], closed["bytes"], closed["stored"]) == \
        (1000, 1100, 6 * 640, True)
    assert (new["first_timestamp"], new["last_timestamp"], new["bytes"]) == (1120, 1120, 640)
    files.close()


def test_store_lag_is_exported_in_its_buckets_and_read_as_percentiles():
    """The lag histogram: a batch's frames spread over its oldest, middle and newest; buckets as Prometheus reads
    them (each bound's own count), including lags past the per-millisecond range."""
    lag = metrics.LagRecorder()
    lag.record(10_000, 10_000 - 40, 10_000 - 4, 3)  # 40, 22 and 4 ms
    lag.record(10_000, 10_000 - 3_000, 10_000 - 3_000, 1)  # 3 s
    assert lag.count == 4 and lag.sum_ms == 40 + 22 + 4 + 3_000
    buckets = dict(zip((*metrics.LagRecorder.BOUNDS_MS, "+Inf"), lag.buckets()))
    assert (buckets[5], buckets[25], buckets[50], buckets[5000]) == (1, 1, 1, 1)
    assert sum(lag.buckets()) == 4
    assert (lag.percentile(0.25), lag.percentile(0.5), lag.percentile(0.75)) == (4, 22, 40)
    assert lag.percentile(1.0) == metrics.LagRecorder.FINE_MS  # "at least 2 s"


def test_rows_are_written_in_one_batch_and_counted(stream):
    store = sinks.StreamStore(stream.pk, stream.rtms_stream_id, stream.client_id)
    client = client_for(store)
    client.on_text(FakeConnection(), transcript("Hello", 5000))
    client.on_text(FakeConnection(), json.dumps({"msg_type": 18, "content": {"user_id": 1, "user_name": "Ben",
                                                                             "timestamp": 5100, "data": "hi"}}))
    client.on_text(FakeConnection(), json.dumps({"msg_type": 6, "event": {"event_type": 3, "timestamp": 5200,
                                                 "participants": [{"user_id": 1, "user_name": "Ben"}]}}))
    sinks.write_rows([store.take_rows()])
    assert store.take_rows() is None  # taken: nothing left to write
    stream.refresh_from_db()
    assert (stream.transcript_count, stream.chat_count, stream.event_count) == (1, 1, 1)
    assert ParticipantEvent.objects.get().kind == "join"
    # The same line delivered again (a replay after a takeover) is stored once.
    client.on_text(FakeConnection(), transcript("Hello", 5000))
    sinks.write_rows([store.take_rows()])
    assert TranscriptSegment.objects.count() == 1


anything = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=10), c, max_size=3), max_leaves=8)
numbers = st.integers() | st.integers(min_value=-2**70, max_value=2**70) | anything
texts = st.text(max_size=40) | st.just("nul\x00byte") | st.just("lone \ud800 surrogate") | anything
content = st.fixed_dictionaries({}, optional={
    "user_id": numbers, "user_name": texts, "start_time": numbers, "end_time": numbers, "timestamp": numbers,
    "language": numbers, "data": texts | st.binary(max_size=20).map(lambda b: base64.b64encode(b).decode()),
    "length": numbers})
event = st.fixed_dictionaries({"event_type": numbers}, optional={
    "timestamp": numbers, "user_id": numbers, "user_name": texts,
    "participants": st.lists(st.fixed_dictionaries({}, optional={"user_id": numbers, "user_name": texts}), max_size=3)
    | anything})
frames = st.one_of(
    st.builds(lambda t, c: json.dumps({"msg_type": t, "content": c}),
              st.sampled_from([14, 15, 16, 17, 18, 23, 99]) | st.integers(), content | anything),
    st.builds(lambda e: json.dumps({"msg_type": 6, "event": e}), event | anything),
    st.builds(lambda s, r: json.dumps({"msg_type": 8, "state": s, "reason": r}), numbers, numbers),
    st.text(max_size=30), st.binary(max_size=30),
)


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(garbage=st.lists(frames, max_size=12))
def test_any_server_frame_leaves_the_sink_storable(stream, garbage):
    store = sinks.StreamStore(stream.pk, stream.rtms_stream_id, stream.client_id)
    client = client_for(store)
    for n, frame in enumerate(garbage):
        client.on_text(FakeConnection(), frame)
        client.on_text(FakeConnection(), transcript(f"good line {n}", 10_000 + n))
    assert client.counters.sink_errors == 0
    rows = store.take_rows()
    if rows is not None:  # None: no frame came, nothing buffered
        sinks.write_rows([rows])
    stored = set(TranscriptSegment.objects.filter(text__startswith="good line").values_list("text", flat=True))
    assert {f"good line {n}" for n in range(len(garbage))} <= stored


def test_retention_erases_old_streams_only(stream, tmp_path, settings):
    from datetime import timedelta

    from django.utils import timezone

    from rtms import media, tasks

    settings.MEDIA_ROOT = tmp_path
    settings.MEDIA_RETENTION_DAYS = 30
    recent = StreamSession.objects.create(rtms_stream_id="e" * 32, meeting_uuid="m==", client_id="app",
                                          state="stopped", stopped_at=timezone.now() - timedelta(days=29))
    StreamSession.objects.filter(pk=stream.pk).update(state="stopped", stopped_at=timezone.now() - timedelta(days=31))
    for kept in (stream, recent):
        media.WavFile(media.stream_dir(kept.rtms_stream_id) / "audio" / "mixed.wav").close()
        TranscriptSegment.objects.create(stream=kept, user_id=1, start_time=1, end_time=2, timestamp=2, text="x")
    assert tasks.purge_expired_media() == 1
    assert not media.stream_dir(stream.rtms_stream_id).exists() and media.stream_dir(recent.rtms_stream_id).exists()
    assert list(TranscriptSegment.objects.values_list("stream__rtms_stream_id", flat=True)) == ["e" * 32]


def test_a_retention_run_works_for_its_time_and_leaves_the_rest_to_the_next(tmp_path, settings):
    """Bounded by its own clock (rtms/stream_content.py PURGE_SECONDS), never by Celery's time limit, which would end
    the worker process and every stream it holds: with no time left, each run erases one stream and stops."""
    from datetime import timedelta

    from django.utils import timezone

    from rtms import tasks

    settings.MEDIA_ROOT = tmp_path
    settings.MEDIA_RETENTION_DAYS = 30
    for n in range(3):
        StreamSession.objects.create(rtms_stream_id=f"{n}" * 32, meeting_uuid="m==", client_id="app",
                                     state="stopped", stopped_at=timezone.now() - timedelta(days=31))
    assert [tasks.purge_expired_media(seconds=0) for _ in range(4)] == [1, 1, 1, 0]
    assert not StreamSession.objects.filter(media_deleted=False).exists()
