"""An admin deletes one meeting's stored data from the console; per-app retention set in the console.

Against daphne and the simulator's Zoom OAuth. Exactly that meeting's content goes, the audit log records who
did it, and a meeting whose streams still run is refused.
"""

from datetime import timedelta

import pytest
from django.utils import timezone

from rtms.models import ChatMessage, StreamSession, TranscriptSegment
from tests.consent_support import add_sim_user, make_app, meeting_uuid, register_with_sim
from tests.console_support import post_form, sign_in
from zoomapp.consent import meetings
from zoomapp.consent.models import AuditEntry
from zoomapp.console import lifecycle
from zoomapp.console.models import AppRetention
from zoomapp.webhooks.models import WebhookDelivery

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def admin_session(daphne, zoomsim):
    app = make_app("Notetaker")
    register_with_sim(zoomsim, daphne.url, app)
    add_sim_user(zoomsim, "adminL", "Lena Admin", account_id="acctL", role="admin")
    session, response = sign_in(daphne.url, app.client_id, "adminL")
    assert response.status_code == 302
    return app, session


def meeting_with_stream(app, topic, state="stopped", stopped_days_ago=0, account_id="acctL"):
    meeting = meetings.get_meeting(app, meeting_uuid(), host_user_id="hostL", account_id=account_id, topic=topic)
    stream = StreamSession.objects.create(
        rtms_stream_id=meeting.uuid.encode().hex()[:32], meeting_uuid=meeting.uuid, client_id=app.client_id,
        operator_id="hostL", state=state, transcript_count=1,
        stopped_at=timezone.now() - timedelta(days=stopped_days_ago) if state == "stopped" else None)
    TranscriptSegment.objects.create(stream=stream, user_id=1, start_time=1, end_time=2, timestamp=1, text=topic)
    ChatMessage.objects.create(stream=stream, timestamp=1, text=topic)
    return meeting, stream


def test_admin_deletes_exactly_one_meetings_data_and_it_is_audited(daphne, admin_session):
    app, session = admin_session
    doomed, doomed_stream = meeting_with_stream(app, "Board review")
    kept, kept_stream = meeting_with_stream(app, "Team lunch")

    page = session.get(f"{daphne.url}/console/meetings", timeout=10)
    assert "Board review" in page.text and "Delete this meeting's data" in page.text

    unconfirmed = post_form(session, f"{daphne.url}/console/meetings/delete-data",
                            {"meeting_uuid": doomed.uuid, "client_id": app.client_id})
    assert unconfirmed.status_code == 302 and TranscriptSegment.objects.filter(stream=doomed_stream).exists()
    for meeting in (doomed, kept):  # what Zoom sent about each meeting, as received: names and emails
        WebhookDelivery.objects.create(app=app, event="meeting.participant_joined", body_sha256=meeting.uuid,
                                       payload={"object": {"uuid": meeting.uuid}}, outcome="accepted",
                                       meeting_uuid=meeting.uuid)

    done = post_form(session, f"{daphne.url}/console/meetings/delete-data",
                     {"meeting_uuid": doomed.uuid, "client_id": app.client_id, "confirm": "yes"})
    assert done.status_code == 302
    assert not TranscriptSegment.objects.filter(stream=doomed_stream).exists()
    assert not ChatMessage.objects.filter(stream=doomed_stream).exists()
    assert StreamSession.objects.get(pk=doomed_stream.pk).media_deleted
    assert TranscriptSegment.objects.filter(stream=kept_stream).count() == 1
    assert ChatMessage.objects.filter(stream=kept_stream).count() == 1
    assert list(WebhookDelivery.objects.values_list("meeting_uuid", flat=True)) == [kept.uuid]

    who = AuditEntry.objects.get(kind="meeting_data_deleted", meeting_uuid=doomed.uuid)
    assert (who.meeting_uuid, who.actor_user_id, who.actor_role, who.source) == (doomed.uuid, "adminL", "admin",
                                                                                 "console")
    assert who.source_address and who.detail["streams"] == [doomed_stream.rtms_stream_id]
    what = AuditEntry.objects.get(kind="media_deleted", meeting_uuid=doomed.uuid)
    assert what.rtms_stream_id == doomed_stream.rtms_stream_id and what.reason == "admin_deleted_meeting_data"
    assert what.detail["counts"]["transcript_segments"] == 1

    log = session.get(f"{daphne.url}/console/audit", params={"meeting": doomed.uuid}, timeout=10).text
    assert 'data-kind="meeting_data_deleted"' in log and 'data-kind="media_deleted"' in log


def test_a_meeting_still_streaming_is_refused(daphne, admin_session):
    app, session = admin_session
    live, live_stream = meeting_with_stream(app, "Live call", state="active")
    response = post_form(session, f"{daphne.url}/console/meetings/delete-data",
                         {"meeting_uuid": live.uuid, "client_id": app.client_id, "confirm": "yes"})
    assert response.status_code == 302
    follow = session.get(f"{daphne.url}/console/meetings", timeout=10).text
    assert "Streams are still running in this meeting" in follow
    assert TranscriptSegment.objects.filter(stream=live_stream).exists()
    assert not AuditEntry.objects.filter(kind="meeting_data_deleted", meeting_uuid=live.uuid).exists()


def test_per_app_retention_set_in_the_console_erases_only_that_accounts_old_media(daphne, admin_session, settings):
    app, session = admin_session
    other_app = make_app("Recorder")
    old, old_stream = meeting_with_stream(app, "Old", stopped_days_ago=10)
    recent, recent_stream = meeting_with_stream(app, "Recent", stopped_days_ago=2)
    other_account, other_stream = meeting_with_stream(app, "Elsewhere", stopped_days_ago=10, account_id="acctZ")
    _, other_app_stream = meeting_with_stream(other_app, "Other app", stopped_days_ago=10)

    too_long = post_form(session, f"{daphne.url}/console/apps/retention",
                         {"app": app.client_id, "days": settings.MEDIA_RETENTION_DAYS + 1})
    assert too_long.status_code == 302 and not AppRetention.objects.exists()
    assert post_form(session, f"{daphne.url}/console/apps/retention", {"app": app.client_id, "days": 7}).ok
    assert AppRetention.objects.get().account_id == "acctL"

    assert lifecycle.purge_by_app_retention() == 1
    assert not TranscriptSegment.objects.filter(stream=old_stream).exists()
    for kept in (recent_stream, other_stream, other_app_stream):
        assert TranscriptSegment.objects.filter(stream=kept).exists()
    entry = AuditEntry.objects.get(kind="media_deleted", rtms_stream_id=old_stream.rtms_stream_id)
    assert entry.rtms_stream_id == old_stream.rtms_stream_id and entry.reason.startswith("retention (7 days")
    assert AuditEntry.objects.filter(kind="retention_changed", actor_user_id="adminL").count() == 1


def test_zooms_deliveries_go_after_their_retention(settings, monkeypatch):
    """Kept WEBHOOK_DELIVERY_RETENTION_DAYS (participants' names and emails are in them), then deleted by the purge
    on beat, a bounded run at a time."""
    from zoomapp.webhooks import tasks

    settings.WEBHOOK_DELIVERY_RETENTION_DAYS = 7
    app = make_app()
    for n, days in enumerate((8, 8, 8, 6)):
        delivery = WebhookDelivery.objects.create(app=app, event="meeting.participant_joined", body_sha256=f"{n}",
                                                  payload={}, outcome="accepted")
        WebhookDelivery.objects.filter(pk=delivery.pk).update(received_at=timezone.now() - timedelta(days=days))
    monkeypatch.setattr(tasks, "BATCH", 2)
    assert tasks.purge_old_deliveries(seconds=0) == 2  # no time left: one batch, the rest at the next run
    assert tasks.purge_old_deliveries() == 1
    assert list(WebhookDelivery.objects.values_list("body_sha256", flat=True)) == ["3"]
