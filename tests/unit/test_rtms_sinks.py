"""The media sinks: what the RTMS client hands them is buffered, stored in batches, and replays are stored once.
Fuzzed with hypothesis through the real client's frame handler (frames as a server could send them): no frame
makes the sink raise, and whatever it buffered can be written to PostgreSQL."""

import base64
import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rtms import metrics, sinks
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
