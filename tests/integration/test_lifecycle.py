"""Deauthorization and revocation remove exactly the right data, and the audit log says so.

Against the simulator, daphne, a real Celery worker holding real streams, Redis and the database: Dana removes
the app (Zoom's `app_deauthorized`, and her running stream stops with STREAM_REVOKED). Her tokens for that app
and everything her streams with that app stored are gone; Eve's data in the same meeting, and Dana's grant for
another app, are untouched.
"""

import secrets
from datetime import timedelta

import pytest

from tests.integration.streams_stack import streams_stack, wait_for_row


@pytest.fixture(scope="module")
def stack(stack_env, tmp_path_factory, django_db_blocker):
    with streams_stack(stack_env, tmp_path_factory.mktemp("datalife"), "datalife", django_db_blocker) as stack:
        yield stack


def grant(app, user_id, account_id):
    from django.utils import timezone

    from zoomapp.marketplace.models import UserAuthorization

    return UserAuthorization.objects.create(app=app, user_id=user_id, account_id=account_id, role_name="Member",
                                            access_token="tok", refresh_token="ref",
                                            expires_at=timezone.now() + timedelta(hours=1))


def past_stream(stack, user_id, media_root):
    """A stream of an earlier meeting, stopped, with a transcript line, a chat line and an audio file on disk."""
    from django.utils import timezone

    from rtms import media
    from rtms.models import ChatMessage, MediaFile, StreamSession, TranscriptSegment

    stream = StreamSession.objects.create(
        rtms_stream_id=secrets.token_hex(16), meeting_uuid=f"past-{secrets.token_hex(4)}==",
        client_id=stack.app.client_id, operator_id=user_id, state="stopped", stopped_at=timezone.now(),
        transcript_count=1, chat_count=1)
    TranscriptSegment.objects.create(stream=stream, user_id=1, start_time=1, end_time=2, timestamp=1, text="old line")
    ChatMessage.objects.create(stream=stream, timestamp=1, text="old chat")
    wav = media.stream_dir(stream.rtms_stream_id) / "audio" / "mixed.wav"
    wav.parent.mkdir(parents=True, exist_ok=True)
    wav.write_bytes(b"RIFF" + bytes(40))
    MediaFile.objects.create(stream=stream, kind="audio_mixed", path=f"rtms/{stream.rtms_stream_id}/audio/mixed.wav",
                             bytes=44, stored=True)
    return stream, wav


def test_deauthorization_deletes_that_users_tokens_and_data_only(stack, django_db_blocker, settings):
    from rtms.models import StreamSession, TranscriptSegment
    from zoomapp.consent.models import AuditEntry
    from zoomapp.marketplace.models import UserAuthorization, ZoomApp

    settings.MEDIA_ROOT = stack.media_root  # our past streams' files live where the worker erases them
    dana, eve, account = f"dana{secrets.token_hex(3)}", f"eve{secrets.token_hex(3)}", "acctDataLife"
    with django_db_blocker.unblock():
        other_app = ZoomApp.objects.create(name="Other", client_id=f"other{secrets.token_hex(4)}",
                                           client_secret="s", webhook_secret_token="w")
        grant(stack.app, dana, account), grant(stack.app, eve, account), grant(other_app, dana, account)
        dana_past, dana_wav = past_stream(stack, dana, stack.media_root)
        eve_past, eve_wav = past_stream(stack, eve, stack.media_root)

    meeting = stack.sim.post("/_sim/meetings", json={
        "topic": "Data lifecycle", "host": {"user_id": dana, "name": "Dana", "account_id": account},
        "participants": [{"user_id": eve, "name": "Eve", "account_id": account}],
        "settings": {"share_with_apps": True, "require_host_approval": False}, "start": True}).json()
    keys = {p["name"]: p["key"] for p in meeting["participants"]}
    dana_live = stack.start_stream(meeting, keys["Dana"])
    eve_live = stack.start_stream(meeting, keys["Eve"])
    for stream_id in (dana_live, eve_live):
        wait_for_row(django_db_blocker, lambda s=stream_id: StreamSession.objects.filter(
            rtms_stream_id=s, state="active").exists(), "both live streams held and active", timeout=30)
    stack.speak(meeting, "Numbers for the quarter look good", who="Dana")
    for stream_id in (dana_live, eve_live):
        wait_for_row(django_db_blocker, lambda s=stream_id: TranscriptSegment.objects.filter(
            stream__rtms_stream_id=s).exists(), "the line stored on both streams")

    assert stack.sim.post(f"/_sim/apps/{stack.app.client_id}/deauthorize", json={"user_id": dana}).ok

    wait_for_row(django_db_blocker, lambda: AuditEntry.objects.filter(kind="user_data_deleted",
                                                                      subject_user_id=dana).exists(),
                 "the deletion of Dana's data to be recorded", timeout=30)
    wait_for_row(django_db_blocker, lambda: StreamSession.objects.filter(
        rtms_stream_id=dana_live, state="stopped", stop_reason=8, media_deleted=True).exists(),
        "Dana's running stream stopped with STREAM_REVOKED and erased", timeout=30)
    wait_for_row(django_db_blocker, lambda: not TranscriptSegment.objects.filter(
        stream__operator_id=dana, stream__client_id=stack.app.client_id).exists(), "no transcript of Dana's left")

    with django_db_blocker.unblock():
        # Dana: the grant for this app and every stored line and file of her streams with it are gone.
        assert not UserAuthorization.objects.filter(app=stack.app, user_id=dana).exists()
        assert not dana_wav.exists()
        dana_past.refresh_from_db()
        assert dana_past.media_deleted and not dana_past.transcript.exists() and not dana_past.chat.exists()
        # Not Dana's, or not this app: untouched.
        assert UserAuthorization.objects.filter(app=other_app, user_id=dana).exists()
        assert UserAuthorization.objects.filter(app=stack.app, user_id=eve).exists()
        assert eve_wav.exists() and eve_past.transcript.count() == 1 and eve_past.chat.count() == 1
        assert StreamSession.objects.get(rtms_stream_id=eve_live).state == "active"
        assert TranscriptSegment.objects.filter(stream__rtms_stream_id=eve_live).exists()

        # The audit log: tokens, each of Dana's streams, and the whole deletion; nothing about Eve.
        tokens = AuditEntry.objects.get(kind="tokens_deleted", subject_user_id=dana)
        assert tokens.detail["authorizations"] == 1 and tokens.source == "webhook"
        erased = AuditEntry.objects.filter(kind="media_deleted", subject_user_id=dana)
        assert {e.rtms_stream_id for e in erased} == {dana_past.rtms_stream_id, dana_live}
        assert {e.reason for e in erased} <= {"app_deauthorized", "stream_revoked"}
        past_entry = erased.filter(rtms_stream_id=dana_past.rtms_stream_id).first()
        assert past_entry.detail["counts"] == {"media_files": 1, "transcript_segments": 1, "chat_messages": 1,
                                               "participant_events": 0}
        summary = AuditEntry.objects.get(kind="user_data_deleted", subject_user_id=dana)
        assert set(summary.detail["streams"]) == {dana_past.rtms_stream_id, dana_live}
        assert not AuditEntry.objects.filter(kind__in=("media_deleted", "tokens_deleted"), subject_user_id=eve).exists()

    assert stack.sim.post(f"/_sim/meetings/{meeting['id']}/end").ok
