"""A stream's erasure against its holder's uploads and index writes running alongside it (docs/ARCHITECTURE.md,
"An erasure and the uploads running alongside it"): whenever an upload lands, before the erasure's commit or after
it, and whichever path uploads (a segment rolled, one uploaded again after failing), nothing of the stream stays in
storage and its media index stays empty, the holder's index writes after the erasure and during it included.
Against PostgreSQL and the real storage backends (the local filesystem, moto's S3 server); the storage is the edge
where the test decides what lands when."""

import concurrent.futures
import threading

import pytest

from rtms import sinks, storage, stream_content
from rtms.host import close_thread_connections
from rtms.models import MediaFile, StreamSession
from tests.locks_support import run_queued_behind, thread_with_its_own_connection
from tests.s3_server import s3_bucket, s3_server  # noqa: F401 - fixtures

pytestmark = pytest.mark.django_db(transaction=True)  # the holder's threads read what the erasure committed

FRAME = b"\x01\x00" * 320  # 20 ms of 16 kHz mono L16
STREAM_ID = "e" * 32


@pytest.fixture
def backend(storage_backend):
    """The storage class in use, whose calls a test holds back to decide what lands when."""
    return type(storage.storage())


@pytest.fixture
def uploader():
    """A holder's upload pool of one thread, whose connection (its look for an erasure) is closed at the end."""
    with concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="test-uploads") as pool:
        yield pool
        close_thread_connections(pool, 1)


def held_stream(tmp_path, failed_uploads=None):
    """A stream and its holder's files, with a segment of audio written and indexed as the holder does."""
    stream = StreamSession.objects.create(rtms_stream_id=STREAM_ID, meeting_uuid="m==", client_id="app")
    files = sinks.StreamFiles(stream.pk, STREAM_ID, 1, tmp_path / "spool", "node-a:1", failed_uploads=failed_uploads)
    store = sinks.StreamStore(stream.pk, STREAM_ID, "app")
    for n in range(30):
        store.on_audio(0, None, 1000 + 20 * n, FRAME)
        sinks.write_media(files, *store.take_media())
    sinks.write_index([(files, list(files.index_rows()))])
    assert MediaFile.objects.filter(stream=stream).exists()
    return stream, files


def the_erasure_waits_after_its_first_deletion_for(upload_done, backend, monkeypatch):
    """The erasure's storage deletion, then `upload_done()` before the erasure goes on to its commit; uploads
    (put_file) wait for that first deletion. Returns the event set once it is done."""
    deleted_once = threading.Event()
    delete_stream, put_file = backend.delete_stream, backend.put_file

    def delete_then_let_the_upload_land(self, stream_id):
        delete_stream(self, stream_id)
        if not deleted_once.is_set():
            deleted_once.set()
            upload_done()

    def put_once_deleted(self, key, local_path):
        assert deleted_once.wait(10)
        put_file(self, key, local_path)

    monkeypatch.setattr(backend, "delete_stream", delete_then_let_the_upload_land)
    monkeypatch.setattr(backend, "put_file", put_once_deleted)
    return deleted_once


def assert_nothing_of_it_stays(stream, files):
    sinks.write_index([(files, list(files.index_rows()))])  # the holder's next index write
    assert storage.storage().keys(STREAM_ID) == []
    assert not MediaFile.objects.filter(stream=stream).exists()
    assert StreamSession.objects.get(pk=stream.pk).media_deleted
    assert not [key for key in files.uploaded if (files.spool / key).exists()], "uploaded segments left in the spool"


def test_a_segment_uploaded_before_the_erasure_leaves_the_spool_at_the_next_index_write(backend, tmp_path, uploader):
    # Deauthorization erases a stream its holder still holds: what it uploaded and had not yet indexed as stored
    # must not stay on the worker's disk.
    stream, files = held_stream(tmp_path)
    concurrent.futures.wait(files.roll(uploader=uploader), timeout=10)
    [uploaded] = files.uploaded
    stream_content.erase_stream_content(stream, why="deauthorized")
    assert_nothing_of_it_stays(stream, files)
    assert not (files.spool / uploaded).exists()


def test_a_segment_rolled_and_uploaded_between_the_erasures_deletion_and_its_commit_is_not_kept(
        backend, tmp_path, monkeypatch, uploader):
    stream, files = held_stream(tmp_path)
    uploads = files.roll(uploader=uploader)  # RTMS_SEGMENT_SECONDS passed: the segment goes to storage
    the_erasure_waits_after_its_first_deletion_for(
        lambda: concurrent.futures.wait(uploads, timeout=10), backend, monkeypatch)

    stream_content.erase_stream_content(stream, why="stream_revoked")
    assert all(upload.done() for upload in uploads)
    assert_nothing_of_it_stays(stream, files)


def test_a_segment_rolled_before_the_erasure_and_landing_after_its_commit_is_not_kept(
        backend, tmp_path, monkeypatch, uploader):
    stream, files = held_stream(tmp_path)
    erased = threading.Event()
    put_file = backend.put_file

    def put_once_erased(self, key, local_path):
        assert erased.wait(10)
        put_file(self, key, local_path)

    monkeypatch.setattr(backend, "put_file", put_once_erased)
    uploads = files.roll(uploader=uploader)
    stream_content.erase_stream_content(stream, why="retention")
    erased.set()
    concurrent.futures.wait(uploads, timeout=10)
    assert_nothing_of_it_stays(stream, files)


def test_a_segment_uploaded_again_between_the_erasures_deletion_and_its_commit_is_not_kept(
        backend, tmp_path, monkeypatch):
    now = [1000.0]
    failed = sinks.FailedUploads(clock=lambda: now[0])
    put_file = backend.put_file

    def refused(self, key, local_path):
        raise OSError("storage unreachable")

    monkeypatch.setattr(backend, "put_file", refused)
    stream, files = held_stream(tmp_path, failed_uploads=failed)
    files.roll()
    assert len(failed) == 1
    monkeypatch.setattr(backend, "put_file", put_file)  # storage answers again

    uploaded_again = []
    retry = thread_with_its_own_connection(lambda: uploaded_again.extend(failed.retry()))  # the spool thread's pass
    now[0] += sinks.FailedUploads.RETRY_FIRST
    the_erasure_waits_after_its_first_deletion_for(lambda: retry.join(10), backend, monkeypatch)
    retry.start()

    stream_content.erase_stream_content(stream, why="console")
    assert not retry.is_alive()
    for files_, row in uploaded_again:  # the holder indexes what the pass uploaded (rtms/host.py)
        sinks.write_index([(files_, [row])])
    assert_nothing_of_it_stays(stream, files)


def test_an_index_write_under_way_during_the_erasure_leaves_no_row(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    stream, files = held_stream(tmp_path)
    MediaFile.objects.filter(stream=stream).delete()  # the holder's next write inserts its rows anew
    threads = [
        thread_with_its_own_connection(sinks.write_index, [(files, list(files.index_rows()))]),
        thread_with_its_own_connection(stream_content.erase_stream_content, stream, "stream_revoked"),
    ]
    # Another transaction holds the stream's row: the index write and then the erasure each wait for it where they
    # first lock it, both under way at once.
    run_queued_behind(lambda: StreamSession.objects.select_for_update().get(pk=stream.pk), threads)
    assert not MediaFile.objects.filter(stream=stream).exists()
    assert StreamSession.objects.get(pk=stream.pk).media_deleted
