"""Media in storage (rtms/storage.py), against the local filesystem and a real S3-API server (moto's, on
127.0.0.1): a stream's audio written in segments by two holders is complete across them and readable from any
node, deleting a stream removes its whole prefix and nothing else, a killed process's spool is uploaded by the
next process of its node (another host's only once its writer is silent in Redis too), a segment that failed to
upload is uploaded by its living process once the storage answers again, and keys come only from valid stream
ids."""

import concurrent.futures
import fcntl
import io
import json
import secrets
import socket
import wave

import boto3
import pytest
from django.db import connection

from rtms import media, sinks, spool, storage, stream_content
from rtms.host import close_thread_connections
from rtms.models import MediaFile, StreamSession
from rtms.redis_connection import redis_client
from tests.processes import free_port
from tests.s3_server import CREDENTIALS, s3_bucket, s3_server  # noqa: F401 - fixtures

pytestmark = pytest.mark.django_db

FRAME = b"\x01\x00" * 320  # 20 ms of 16 kHz mono L16


def make_stream(stream_id="a" * 32):
    return StreamSession.objects.create(rtms_stream_id=stream_id, meeting_uuid="m==", client_id="app")


def speak(files, first_ts, frames):
    """`frames` audio frames from `first_ts`, 20 ms apart, as the host hands them to the file thread."""
    store = sinks.StreamStore(files.stream_pk, files.stream_id, "app")
    for n in range(frames):
        store.on_audio(0, None, first_ts + 20 * n, FRAME)
        sinks.write_media(files, *store.take_media())


def read_wav(key):
    with storage.storage().open(key) as body:
        data = body.read()
    with wave.open(io.BytesIO(data)) as wav:
        return wav.getnframes() // 320, wav.getframerate()  # 320 samples in a 20 ms frame


def test_audio_in_segments_of_two_holders_is_complete_in_storage(storage_backend, tmp_path):
    stream = make_stream()
    first = sinks.StreamFiles(stream.pk, stream.rtms_stream_id, 1, tmp_path / "node-a", "node-a:1")
    speak(first, 1000, 30)
    first.roll()  # RTMS_SEGMENT_SECONDS passed
    speak(first, 1600, 20)
    sinks.write_index([(first, list(first.index_rows()))])
    first.close()  # the handover: the open segment is uploaded
    sinks.write_index([(first, list(first.index_rows()))])
    second = sinks.StreamFiles(stream.pk, stream.rtms_stream_id, 2, tmp_path / "node-b", "node-b:2")
    speak(second, 2000, 50)
    second.close()
    sinks.write_index([(second, list(second.index_rows()))])

    segments = list(MediaFile.objects.filter(stream=stream, kind="audio_mixed").order_by("first_timestamp"))
    assert [(s.first_timestamp, s.last_timestamp, s.frames, s.node) for s in segments] == [
        (1000, 1580, 30, "node-a:1"), (1600, 1980, 20, "node-a:1"), (2000, 2980, 50, "node-b:2")]
    assert all(s.stored for s in segments)
    assert [read_wav(s.path) for s in segments] == [(30, 16000), (20, 16000), (50, 16000)]
    body, name = storage.open_media(segments[2])  # what the console serves
    with body:
        assert body.read()[44:] == FRAME * 50 and name == "mixed-2000-g2.wav"
    stream.refresh_from_db()
    assert stream.audio_bytes == 100 * 640
    assert not any((tmp_path / "node-a").rglob("*.wav")) and not any((tmp_path / "node-b").rglob("*.wav"))


def test_a_segment_indexed_as_stored_is_not_written_again(storage_backend, tmp_path):
    """A long meeting's closed segments are in the database once their index says stored: each later index write
    (every few seconds per stream) carries only the segments still open or uploading, not one row per segment
    of the meeting so far, and the stream's totals still count them all."""
    stream = make_stream()
    files = sinks.StreamFiles(stream.pk, stream.rtms_stream_id, 1, tmp_path / "node-a", "node-a:1")
    for minute in range(3):  # three segments closed and uploaded, then indexed
        speak(files, 1000 + 600 * minute, 30)
        files.roll()
    sinks.write_index([(files, list(files.index_rows()))])
    speak(files, 2800, 10)

    assert [row["first_timestamp"] for row in files.index_rows()] == [2800]  # only the open segment
    sinks.write_index([(files, list(files.index_rows()))])
    stored = MediaFile.objects.filter(stream=stream, stored=True).order_by("first_timestamp")
    assert [(s.first_timestamp, s.frames) for s in stored] == [(1000, 30), (1600, 30), (2200, 30)]
    stream.refresh_from_db()
    assert stream.audio_bytes == 100 * 640  # the stored segments and the open one


def test_erasing_a_stream_deletes_its_prefix_from_any_node(storage_backend, tmp_path):
    erased, kept = make_stream("b" * 32), make_stream("c" * 32)
    for stream, node in ((erased, "node-a"), (kept, "node-b")):
        files = sinks.StreamFiles(stream.pk, stream.rtms_stream_id, 1, tmp_path / node)
        speak(files, 1000, 5)
        sinks.write_media(files, {}, [(MediaFile.Kind.VIDEO, 7, 1010, b"\xff\xd8jpeg")])
        files.close()
        sinks.write_index([(files, list(files.index_rows()))])
    assert len(storage.storage().keys(erased.rtms_stream_id)) == 3  # a WAV, a frame and its index

    storage._storage.cache_clear()  # another node: its own client, the same storage
    stream_content.erase_stream_content(erased, why="stream_revoked")
    assert storage.storage().keys(erased.rtms_stream_id) == []
    assert len(storage.storage().keys(kept.rtms_stream_id)) == 3
    assert not MediaFile.objects.filter(stream=erased).exists()


@pytest.mark.parametrize("uploaded", [False, True], ids=["open segment", "uploaded, not yet indexed as stored"])
def test_a_killed_process_spool_is_uploaded_by_the_next_process_of_its_node(storage_backend, tmp_path, uploaded):
    stream = make_stream()
    spool_root = tmp_path / "spool"
    dead_spool = spool_root / socket.gethostname() / "p999999"
    dead = sinks.StreamFiles(stream.pk, stream.rtms_stream_id, 3, dead_spool, "node-a:999999")
    speak(dead, 5000, 40)
    dead.sync()
    sinks.write_index([(dead, list(dead.index_rows()))])  # the last index write: the segment still open
    if uploaded:  # RTMS_SEGMENT_SECONDS passed: closed and uploaded; the next index write would say stored
        with concurrent.futures.ThreadPoolExecutor(1) as uploader:
            concurrent.futures.wait(dead.roll(uploader=uploader))
            close_thread_connections(uploader, 1)  # its look for an erasure: back to the pool
    assert not MediaFile.objects.get(stream=stream).stored  # kill -9 here

    assert sinks.recover_spool(spool_root, "node-a:1000") == 1
    segment = MediaFile.objects.get(stream=stream)
    assert (segment.stored, segment.frames, segment.first_timestamp) == (True, 40, 5000)
    assert read_wav(segment.path) == (40, 16000)
    assert not dead_spool.exists()


def test_a_recovered_segment_keeps_the_timeline_written_after_its_last_index(storage_backend, tmp_path):
    """Killed after a pause and more speech that no index row has seen: the recovered segment ends where its WAV
    does, the pause included as silence, and it counts at most the frames its bytes can hold."""
    stream = make_stream()
    spool_root = tmp_path / "spool"
    dead = sinks.StreamFiles(stream.pk, stream.rtms_stream_id, 3, spool_root / socket.gethostname() / "p999999")
    speak(dead, 5000, 40)  # 5000 … 5780
    sinks.write_index([(dead, list(dead.index_rows()))])
    speak(dead, 6800, 10)  # after a second nobody spoke: 6800 … 6980
    dead.sync()  # kill -9 here

    assert sinks.recover_spool(spool_root, "node-a:1000") == 1
    segment = MediaFile.objects.get(stream=stream)
    assert (segment.first_timestamp, segment.last_timestamp) == (5000, 6980)
    assert read_wav(segment.path) == ((6980 + 20 - 5000) // 20, 16000)
    assert 50 <= segment.frames <= 100


def test_another_hosts_spool_is_recovered_only_once_its_writer_is_silent(storage_backend, tmp_path, settings):
    """Workers of several containers or machines may share one RTMS_SPOOL_DIR: a spool whose lock is free is not
    another host's to take while its writer still says it is alive in Redis (a lock may not cross machines)."""
    settings.REDIS_NAMESPACE = f"{settings.REDIS_NAMESPACE}-spools-{secrets.token_hex(3)}"
    stream = make_stream()
    spool_root = tmp_path / "spool"
    other = sinks.StreamFiles(stream.pk, stream.rtms_stream_id, 2, spool_root / "worker-b" / "p7", "worker-b:7")
    speak(other, 5000, 10)
    other.sync()
    spool.keep_alive("worker-b:7", redis_client())  # its renewal thread, on the other machine

    assert sinks.recover_spool(spool_root, "worker-a:7") == 0
    assert (spool_root / "worker-b" / "p7").exists() and not MediaFile.objects.filter(stream=stream).exists()

    redis_client().delete(spool._owner_key("worker-b:7"))  # silent for OWNER_SILENT_TTLS lease ttls: gone
    assert sinks.recover_spool(spool_root, "worker-a:7") == 1
    segment = MediaFile.objects.get(stream=stream)
    assert (segment.stored, segment.frames, segment.node) == (True, 10, "worker-b:7")
    assert not (spool_root / "worker-b" / "p7").exists()


def test_a_segment_that_failed_to_upload_is_uploaded_once_the_storage_answers(s3_server, settings, tmp_path,  # noqa: F811
                                                                              monkeypatch):
    """An S3 outage (here: the bucket not created yet) leaves the segment in the spool, indexed as not stored;
    the living process tries again with a backoff, and once the bucket answers it is stored, indexed so, and out
    of the spool."""
    for name, value in CREDENTIALS.items():
        monkeypatch.setenv(name, value)
    settings.MEDIA_STORAGE, settings.MEDIA_S3_ENDPOINT_URL = "s3", s3_server
    settings.MEDIA_S3_BUCKET = bucket = f"later-{secrets.token_hex(4)}"
    now = [1000.0]
    failed = sinks.FailedUploads(clock=lambda: now[0])
    stream = make_stream()
    files = sinks.StreamFiles(stream.pk, stream.rtms_stream_id, 1, tmp_path / "spool", "node-a:1",
                              failed_uploads=failed)
    speak(files, 1000, 30)
    files.roll()
    sinks.write_index([(files, list(files.index_rows()))])
    assert len(failed) == 1 and not MediaFile.objects.get(stream=stream).stored

    assert failed.retry() == []  # within its first delay: not tried yet
    now[0] += sinks.FailedUploads.RETRY_FIRST
    assert failed.retry() == [] and len(failed) == 1  # tried: the bucket is still missing; it waits twice as long
    boto3.client("s3", endpoint_url=s3_server, region_name="us-east-1").create_bucket(Bucket=bucket)
    now[0] += sinks.FailedUploads.RETRY_FIRST
    assert failed.retry() == []
    now[0] += sinks.FailedUploads.RETRY_FIRST

    assert [(done, row["stored"]) for done, row in failed.retry()] == [(files, True)] and len(failed) == 0
    sinks.write_index([(files, list(files.index_rows()))])  # the next index write of the stream
    segment = MediaFile.objects.get(stream=stream)
    assert segment.stored and read_wav(segment.path) == (30, 16000)
    assert not any((tmp_path / "spool").rglob("*.wav"))


@pytest.mark.parametrize("revoked", [False, True], ids=["ended", "revoked"])
def test_a_stream_no_longer_held_leaves_nothing_in_the_spool(storage_backend, tmp_path, revoked):
    stream = make_stream()
    files = sinks.StreamFiles(stream.pk, stream.rtms_stream_id, 1, tmp_path / "spool" / "p1", "node-a:1")
    speak(files, 1000, 30)
    files.roll()  # uploaded; it stays in the spool until an index write says it is stored
    speak(files, 1600, 20)
    if revoked:  # STREAM_REVOKED before that index write: as the session host ends it
        files.close(upload=False)
        files.discard_spool()
    else:
        files.close()
        sinks.write_index([(files, list(files.index_rows()))])  # its last index, then (file thread) its directories
        files.remove_empty_spool_dirs()
        assert MediaFile.objects.filter(stream=stream, stored=True).count() == 2
    assert not list((tmp_path / "spool" / "p1" / "rtms").iterdir())  # neither its files nor its directories


def test_storage_keys_come_only_from_valid_stream_ids(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    for bad in ("../x", "a/b", "x\x00", "a" * 10_240, ""):
        with pytest.raises(media.OutsideMediaRoot):
            storage.stream_key(bad, "audio")
    local = storage.LocalStorage(tmp_path / "media")
    for key in ("rtms/../../etc/passwd", "rtms/" + "a" * 32 + "/../x", "other/key", "/etc/passwd"):
        with pytest.raises(media.OutsideMediaRoot):
            local.open(key)


def test_a_stopped_streams_transcript_and_chat_are_exported_beside_its_media(storage_backend):
    from rtms import tasks
    from rtms.models import ChatMessage, TranscriptSegment

    stream = make_stream("d" * 32)
    TranscriptSegment.objects.create(stream=stream, user_id=7, user_name="Ana", start_time=1, end_time=2,
                                     timestamp=2, language=9, text="Numbers look good")
    ChatMessage.objects.create(stream=stream, user_id=8, user_name="Ben", timestamp=3, text="agreed")
    assert tasks.export_stream_text(stream.rtms_stream_id) == {"transcript": 1, "chat": 1}
    with storage.storage().open(f"rtms/{'d' * 32}/transcript.jsonl") as body:
        assert json.loads(body.read()) == {"user_id": 7, "user_name": "Ana", "start_time": 1, "end_time": 2,
                                           "timestamp": 2, "language": 9, "text": "Numbers look good"}
    stream_content.erase_stream_content(stream, why="retention")  # the prefix takes the text too
    assert storage.storage().keys(stream.rtms_stream_id) == []


def test_a_spool_of_before_spools_were_kept_per_host_is_recovered_not_deleted(storage_backend, tmp_path):
    """Upgrading: a process of the old layout (`RTMS_SPOOL_DIR/p<pid>/`, lock `p<pid>.lock`) killed before it
    could upload has its segment uploaded and indexed; one still running (a rolling deploy) is left alone, and
    so is a directory whose contents are not a spool's."""
    stream, running_stream = make_stream(), make_stream("b" * 32)
    spool_root = tmp_path / "spool"
    dead = sinks.StreamFiles(stream.pk, stream.rtms_stream_id, 3, spool_root / "p999999", "node-a:999999")
    speak(dead, 5000, 40)
    dead.sync()  # killed before its first index write
    running = sinks.StreamFiles(running_stream.pk, running_stream.rtms_stream_id, 1, spool_root / "p999998")
    speak(running, 5000, 10)
    running.sync()
    (spool_root / "p999997").mkdir()
    (spool_root / "p999997" / "notes.txt").write_text("not a segment")

    with open(spool_root / "p999998.lock", "w") as old_worker_lock:
        fcntl.flock(old_worker_lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        assert sinks.recover_spool(spool_root, "node-a:1000") == 1

    segment = MediaFile.objects.get(stream=stream)
    assert (segment.stored, segment.frames, segment.node) == (True, 40, f"{socket.gethostname()}:999999")
    assert read_wav(segment.path) == (40, 16000)
    assert not (spool_root / "p999999").exists()
    assert list((spool_root / "p999998").rglob("*.wav")) and not MediaFile.objects.filter(stream=running_stream)
    assert (spool_root / "p999997" / "notes.txt").exists()


def test_a_worker_of_before_spools_were_kept_per_host_finds_this_hosts_spools_locked(tmp_path):
    """Its look at `RTMS_SPOOL_DIR/<name>`: a directory whose `<name>.lock` it can lock is a dead process's spool,
    deleted; while a process of this host writes its spool, that lock is held."""
    spool_root = tmp_path / "spool"
    directory, locks = spool.open_process_spool(spool_root)
    try:
        with open(spool_root / f"{directory.parent.name}.lock", "a") as old_worker_look:
            with pytest.raises(BlockingIOError):
                fcntl.flock(old_worker_look, fcntl.LOCK_EX | fcntl.LOCK_NB)
    finally:
        for lock in locks:
            lock.close()


def failing_uploads(settings, tmp_path, streams):
    """A spooled segment of each stream, its upload refused (the local storage's root is not a directory), in a
    FailedUploads whose clock the caller moves; then the storage answers again."""
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.MEDIA_ROOT.write_text("not a directory")
    now = [1000.0]
    failed = sinks.FailedUploads(clock=lambda: now[0])
    for stream in streams:
        files = sinks.StreamFiles(stream.pk, stream.rtms_stream_id, 1, tmp_path / "spool", "node-a:1",
                                  failed_uploads=failed)
        speak(files, 1000, 30)
        files.roll()
    assert len(failed) == len(streams)
    settings.MEDIA_ROOT.unlink()
    return failed, now


@pytest.mark.django_db(transaction=True)
def test_the_database_unreachable_during_an_upload_retry_keeps_every_segment_queued(settings, tmp_path):
    streams = [make_stream(), make_stream("b" * 32)]
    failed, now = failing_uploads(settings, tmp_path, streams)
    now[0] += sinks.FailedUploads.RETRY_FIRST
    reachable = connection.settings_dict
    connection.close()
    # PostgreSQL briefly unreachable: a new connection (not from the pool, which has live ones) is refused
    options = {name: value for name, value in reachable.get("OPTIONS", {}).items() if name != "pool"}
    connection.settings_dict = {**reachable, "PORT": free_port(), "OPTIONS": options}
    try:
        assert failed.retry() == []
    finally:
        connection.close()
        connection.settings_dict = reachable
    assert len(failed) == 2

    now[0] += 2 * sinks.FailedUploads.RETRY_FIRST  # the backoff doubled
    assert sorted(files.stream_id for files, _ in failed.retry()) == ["a" * 32, "b" * 32]
    assert len(failed) == 0 and all(storage.storage().keys(stream.rtms_stream_id) for stream in streams)


def test_a_stream_erased_while_its_segment_is_uploaded_again_keeps_nothing_in_storage(settings, tmp_path,
                                                                                      monkeypatch):
    """A retry pass after an outage may take minutes: Zoom's revocation erasing the stream meanwhile, during
    the upload of its segment, is not undone by that upload (nothing stored, nothing to index)."""
    stream = make_stream()
    failed, now = failing_uploads(settings, tmp_path, [stream])
    put_file = storage.LocalStorage.put_file

    def erased_during_upload(self, key, local_path):
        put_file(self, key, local_path)
        stream_content.erase_stream_content(StreamSession.objects.get(pk=stream.pk), "revoked")

    monkeypatch.setattr(storage.LocalStorage, "put_file", erased_during_upload)
    now[0] += sinks.FailedUploads.RETRY_FIRST
    assert failed.retry() == [] and len(failed) == 0
    assert storage.storage().keys(stream.rtms_stream_id) == []
    assert not any((tmp_path / "spool").rglob("*.wav"))
