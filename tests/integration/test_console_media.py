"""The console serves a stream's stored media from storage (rtms/storage.py), to the admins of the account whose
meeting it is, from a link on the meetings page to the stream's files, and says so when a segment is not in
storage yet; a stream waiting for a worker with room shows so in the live streams' table."""

import re
import secrets
import wave
from io import BytesIO

import pytest
import redis

from rtms import placement, sinks
from rtms.models import MediaFile, StreamSession
from rtms.redis_connection import key
from tests.integration.test_console_security import admins, apps  # noqa: F401 - fixtures
from zoomapp.consent import meetings
from zoomapp.consent.models import AuditEntry

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def stream(apps, tmp_path):  # noqa: F811
    notetaker, _ = apps
    uuid = f"{secrets.token_hex(11)}=="
    meetings.get_meeting(notetaker, uuid, host_user_id="hostA", account_id="acctA", topic="Board")
    stream = StreamSession.objects.create(rtms_stream_id=secrets.token_hex(16), meeting_uuid=uuid,
                                          client_id=notetaker.client_id, operator_id="hostA", state="stopped")
    files = sinks.StreamFiles(stream.pk, stream.rtms_stream_id, 1, tmp_path / "spool", "node-a:1")
    sinks.write_media(files, {0: [[b"\x01\x00" * 320] * 10, 1000, 1180, None, 1210]}, [])
    files.close()
    sinks.write_index([(files, list(files.index_rows()))])
    return stream


def link(page, text):
    """The href of the page's link whose text starts with `text` (the console's links carry no query strings)."""
    found = re.search(r'<a href="([^"]+)"[^>]*>' + re.escape(text), page)
    assert found, f"no link {text!r} on the page"
    return found.group(1)


def test_an_admin_downloads_a_streams_stored_audio_from_the_meetings_page_and_another_account_cannot(
        daphne, admins, stream):  # noqa: F811
    olive, bert, people = admins
    segment = MediaFile.objects.get(stream=stream)

    meetings_page = olive.get(f"{daphne.url}/console/meetings", timeout=10).text
    files_url = daphne.url + link(meetings_page, "Media files of")
    assert files_url == f"{daphne.url}/console/streams/{stream.rtms_stream_id}/media"
    files_page = olive.get(files_url, timeout=10)
    assert files_page.status_code == 200 and "Audio of everyone" in files_page.text
    url = daphne.url + link(files_page.text, "Download")
    assert url == f"{daphne.url}/console/streams/{stream.rtms_stream_id}/media/{segment.pk}"

    assert not AuditEntry.objects.filter(kind="media_downloaded").exists()  # listing them is not downloading
    response = olive.get(url, timeout=10)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "audio/wav"
    with wave.open(BytesIO(response.content)) as wav:
        assert (wav.getframerate(), wav.getnframes()) == (16000, 3200)
    (downloaded,) = AuditEntry.objects.filter(kind="media_downloaded")
    assert (downloaded.account_id, downloaded.actor_user_id, downloaded.actor_role, downloaded.source,
            downloaded.source_address, downloaded.meeting_uuid, downloaded.app.client_id) == (
        "acctA", people["olive"], "owner", "console", "127.0.0.1", stream.meeting_uuid, stream.client_id)
    assert downloaded.detail == {"account_id": "acctA", "rtms_stream_id": stream.rtms_stream_id,
                                 "media_id": segment.pk, "media_kind": "audio_mixed",
                                 "file": segment.path.rsplit("/", 1)[-1]}
    audit = olive.get(f"{daphne.url}/console/audit", params={"kind": "media_downloaded"}, timeout=10).text
    assert "Media downloaded" in audit and f"{downloaded.detail['file']} of stream {stream.rtms_stream_id}" in audit

    assert "Media files of" not in bert.get(f"{daphne.url}/console/meetings", timeout=10).text
    for refused in (bert.get(files_url, timeout=10), bert.get(url, timeout=10)):
        assert refused.status_code == 404 and "in your account" in refused.text

    MediaFile.objects.filter(pk=segment.pk).update(stored=False)  # still in a worker's spool
    pending = olive.get(url, timeout=10)
    assert pending.status_code == 404 and "still being recorded, or deleted" in pending.text
    # Only what was sent is recorded: neither another account's refused tries nor a segment not in storage.
    assert AuditEntry.objects.filter(kind="media_downloaded").count() == 1
    assert "No segment is in storage yet" in olive.get(files_url, timeout=10).text


def test_a_stream_waiting_for_capacity_says_so_in_the_live_streams(stream, settings):
    from zoomapp.console import streams_feed

    # A namespace of its own: a worker of this test run with room would place the stream at its next heartbeat.
    settings.REDIS_NAMESPACE = f"{settings.REDIS_NAMESPACE}-waiting{secrets.token_hex(3)}"
    StreamSession.objects.filter(pk=stream.pk).update(state="starting", stopped_at=None)
    # Placement found every worker process full (tests/integration/test_placement.py shows how it decides).
    redis.Redis.from_url(settings.REDIS_URL).zadd(key("rtms", "fleet", "waiting"), {stream.rtms_stream_id: 1})
    try:
        rows = streams_feed.streams_snapshot("acctA")["streams"]  # what the page and its socket show
        row = next(row for row in rows if row["stream_id"] == stream.rtms_stream_id)
        assert row["worker"] == "Waiting for a worker with room"
    finally:
        placement.stop_waiting([stream.rtms_stream_id])
