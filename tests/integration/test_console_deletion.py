"""Deleting a meeting's data when storage refuses: the admin is told what was not deleted and to try again, the
audit log says "partial" or "failed" and why (never "deleted" before anything was), what storage kept keeps its
rows, and trying again erases the rest. Local storage made to refuse (a directory whose files cannot be removed),
and moto's S3 server refusing keys of a batch delete (a bucket policy), as S3 does in the 200 answer's Errors."""

import contextlib
import html
import json
import os
import secrets
import subprocess
import time

import boto3
import pytest
from django.conf import settings

from rtms import media, stream_content
from rtms.models import StreamSession, TranscriptSegment
from rtms.storage import StorageError, storage, stream_key
from tests.console_support import post_form
from tests.integration.test_console_security import admins, apps  # noqa: F401 - fixtures
from tests.processes import wait_for
from tests.s3_server import s3_bucket, s3_server  # noqa: F401 - fixtures
from zoomapp.consent import meetings
from zoomapp.consent.models import AuditEntry
from zoomapp.console import lifecycle
from zoomapp.console.auth import ConsoleAdmin

pytestmark = pytest.mark.django_db(transaction=True)


def stored_stream(app, meeting, operator="hostA"):
    """A stopped stream of the meeting with a file in storage and a transcript line."""
    stream = StreamSession.objects.create(rtms_stream_id=secrets.token_hex(16), meeting_uuid=meeting.uuid,
                                          client_id=app.client_id, operator_id=operator, state="stopped",
                                          transcript_count=1)
    storage().put_bytes(stream_key(stream.rtms_stream_id, "transcript.jsonl"), b'{"text": "kept"}\n')
    TranscriptSegment.objects.create(stream=stream, user_id=1, start_time=1, end_time=2, timestamp=1, text="kept")
    return stream


@contextlib.contextmanager
def undeletable(stream):
    """The stream's local directory keeps its files: immutable for root (whom permissions do not stop), read-only
    for anyone else."""
    directory = media.stream_dir(stream.rtms_stream_id, root=settings.MEDIA_ROOT)
    as_root = os.geteuid() == 0
    if as_root:
        subprocess.run(["chattr", "+i", str(directory)], check=True)
    else:
        directory.chmod(0o555)
    try:
        yield directory
    finally:
        if as_root:
            subprocess.run(["chattr", "-i", str(directory)], check=True)
        else:
            directory.chmod(0o755)


def test_a_deletion_storage_refuses_is_reported_audited_as_partial_and_done_when_tried_again(
        daphne, apps, admins):  # noqa: F811
    notetaker, _ = apps
    olive, _, people = admins
    meeting = meetings.get_meeting(notetaker, f"{secrets.token_hex(11)}==", host_user_id="hostA",
                                   account_id="acctA", topic="Board")
    erasable, refusing = stored_stream(notetaker, meeting), stored_stream(notetaker, meeting)
    delete = {"meeting_uuid": meeting.uuid, "client_id": notetaker.client_id, "confirm": "yes"}

    with undeletable(refusing) as directory:
        answer = post_form(olive, f"{daphne.url}/console/meetings/delete-data", delete)
        assert answer.status_code == 302 and answer.headers["Location"] == "/console/meetings"
        told = html.unescape(olive.get(daphne.url + answer.headers["Location"], timeout=10).text)
        assert "Storage did not delete the data of 1 stream(s) of “Board”: could not delete" in told
        assert "1 other stream(s) were deleted. What was not deleted is still stored: try again" in told
        assert list(directory.iterdir())  # its file is still there, and so are its rows
    assert TranscriptSegment.objects.filter(stream=refusing).count() == 1
    assert not StreamSession.objects.get(pk=refusing.pk).media_deleted
    assert StreamSession.objects.get(pk=erasable.pk).media_deleted
    (entry,) = AuditEntry.objects.filter(kind="meeting_data_deleted")
    assert (entry.outcome, entry.actor_user_id, entry.account_id) == ("partial", people["olive"], "acctA")
    assert f"storage refused: stream {refusing.rtms_stream_id}: could not delete" in entry.reason
    assert entry.detail["erased"] == [erasable.rtms_stream_id]
    assert list(entry.detail["failed"]) == [refusing.rtms_stream_id]

    again = post_form(olive, f"{daphne.url}/console/meetings/delete-data", delete)
    assert "Deleted the stored data of 1 stream(s) of “Board”" in html.unescape(
        olive.get(daphne.url + again.headers["Location"], timeout=10).text)
    assert not TranscriptSegment.objects.filter(stream=refusing).exists()
    assert storage().keys(refusing.rtms_stream_id) == []
    done = AuditEntry.objects.filter(kind="meeting_data_deleted").latest("id")
    assert (done.outcome, done.detail["erased"], done.detail["failed"]) == ("deleted", [refusing.rtms_stream_id], {})
    # The stream erased the first time was not erased again.
    assert AuditEntry.objects.filter(kind="media_deleted", rtms_stream_id=erasable.rtms_stream_id).count() == 1


def test_s3_refusing_keys_of_a_batch_delete_fails_the_deletion_and_keeps_the_rows(
        s3_server, s3_bucket, app, settings):  # noqa: F811
    notetaker = app
    settings.MEDIA_STORAGE, settings.MEDIA_S3_BUCKET, settings.MEDIA_S3_ENDPOINT_URL = "s3", s3_bucket, s3_server
    meeting = meetings.get_meeting(notetaker, f"{secrets.token_hex(11)}==", host_user_id="hostA",
                                   account_id="acctA", topic="Board")
    stream = stored_stream(notetaker, meeting)
    bucket = boto3.client("s3", endpoint_url=s3_server, region_name="us-east-1")
    bucket.put_bucket_policy(Bucket=s3_bucket, Policy=json.dumps({"Version": "2012-10-17", "Statement": [{
        "Effect": "Deny", "Principal": "*", "Action": "s3:DeleteObject",
        "Resource": f"arn:aws:s3:::{s3_bucket}/rtms/{stream.rtms_stream_id}/*"}]}))
    with pytest.raises(StorageError, match="S3 did not delete 1 of the stream's 1 objects .*AccessDenied"):
        storage().delete_stream(stream.rtms_stream_id)

    admin = ConsoleAdmin("adminA", "acctA", "Admin", "Ada", notetaker.client_id)
    deletion = lifecycle.delete_meeting_data(admin, meeting, "127.0.0.1")
    assert (deletion.outcome, deletion.erased, list(deletion.failed)) == ("failed", [], [stream.rtms_stream_id])
    assert storage().keys(stream.rtms_stream_id) == [stream_key(stream.rtms_stream_id, "transcript.jsonl")]
    assert TranscriptSegment.objects.filter(stream=stream).count() == 1
    assert not StreamSession.objects.get(pk=stream.pk).media_deleted
    entry = AuditEntry.objects.get(kind="meeting_data_deleted")
    assert entry.outcome == "failed" and "AccessDenied" in entry.reason

    bucket.delete_bucket_policy(Bucket=s3_bucket)
    assert lifecycle.delete_meeting_data(admin, meeting, "127.0.0.1").outcome == "deleted"
    assert storage().keys(stream.rtms_stream_id) == []
    assert StreamSession.objects.get(pk=stream.pk).media_deleted


def test_a_purge_goes_on_past_a_stream_whose_storage_refuses(app):
    meeting = meetings.get_meeting(app, f"{secrets.token_hex(11)}==", host_user_id="hostA", account_id="acctA")
    refusing, erasable = stored_stream(app, meeting), stored_stream(app, meeting)
    with undeletable(refusing):
        assert stream_content.erase_until([refusing, erasable], "retention", time.monotonic() + 60) == (1, True)
    assert TranscriptSegment.objects.filter(stream=refusing).count() == 1
    assert not StreamSession.objects.get(pk=refusing.pk).media_deleted
    assert StreamSession.objects.get(pk=erasable.pk).media_deleted
    assert stream_content.erase_until([refusing], "retention", time.monotonic() + 60) == (1, True)


@pytest.mark.parametrize("erasure", ["revoked", "deauthorized"])
def test_an_erasure_storage_refuses_is_tried_again_by_the_worker_until_done(worker, app, erasure):
    """Zoom revoking a stream, a user removing the app: their content must go. Storage refusing (an outage) has
    the worker try again, backing off, until it answers."""
    from rtms.tasks import delete_stream_media
    from zoomapp.console.tasks import delete_user_data

    meeting = meetings.get_meeting(app, f"{secrets.token_hex(11)}==", host_user_id="hostA", account_id="acctA")
    stream = stored_stream(app, meeting, operator="userU")
    refused = f'msg="stream content not erased: storage refused" stream={stream.rtms_stream_id}'
    with undeletable(stream):
        if erasure == "revoked":
            delete_stream_media.delay(stream.rtms_stream_id)
        else:
            delete_user_data.delay(app.client_id, "userU", "acctA")
        wait_for(lambda: worker.log_text().count(refused) >= 2, 30, "the worker to be refused, twice",
                 process=worker)
        assert not StreamSession.objects.get(pk=stream.pk).media_deleted
    wait_for(lambda: StreamSession.objects.get(pk=stream.pk).media_deleted, 60, "the erasure to be done",
             process=worker)
    assert storage().keys(stream.rtms_stream_id) == []
    assert TranscriptSegment.objects.filter(stream=stream).count() == 0
