"""Zoom's "Share real-time meeting content with apps": one setting of the whole meeting, which every app's panel
shows as its toggle (docs/CONSENT.md rule 8 and "One toggle for the meeting").

Whoever turns it, the host in any app's panel or Zoom (a stream stopped with reason 9, an in-client start answered
"apps_disabled"), the row of the app that heard it changes under its lock; after commit, every other app's row of
the meeting in the same account follows, each in its own transaction under its own lock.
"""

from django.db import transaction
from django.utils import timezone

from zoomapp.consent import audit, meetings
from zoomapp.consent.actions.starting import stop_after_commit
from zoomapp.consent.models import Meeting, Share, ShareRequest
from zoomapp.consent.push import mark_changed

Status = Share.Status


def sharing_turned(meeting, actor):
    """Under the meeting's lock, once its row's toggle changed and was audited: turned off, every app stops and every
    requester reads "Apps sharing meeting content have been disabled." (rule 8); after commit, the other apps' rows
    of the meeting follow. The caller publishes this row's change."""
    if not meeting.share_with_apps:
        _disable_everything(meeting, actor)
    if meeting.account_id:  # a row whose account is unknown names no meeting of anyone's to follow it
        source = (meeting.pk, meeting.uuid, meeting.account_id, meeting.share_with_apps)
        transaction.on_commit(lambda: _other_apps_follow(*source, actor), robust=True)


def _disable_everything(meeting, actor):
    now = timezone.now()
    ShareRequest.objects.filter(share__meeting=meeting, status=ShareRequest.Status.PENDING).update(
        status=ShareRequest.Status.WITHDRAWN, decided_at=now, decided_by=actor.user_id
    )
    for share in Share.objects.select_for_update().filter(meeting=meeting, status__in=(*Share.ACTIVE, Status.PENDING)):
        stream_to_stop = share.rtms_stream_id if share.is_active else ""
        share.set_status(Status.APPS_DISABLED, stop_intent=Status.APPS_DISABLED)
        audit.record_in_meeting("disable_all", meeting, actor, share=share, outcome=Status.APPS_DISABLED)
        if stream_to_stop:
            stop_after_commit(share, actor)


def _other_apps_follow(source_pk, uuid, account_id, share_with_apps, actor):
    """Only rows of the same account: each app's row is claimed by that app's own inputs, and one claimed for
    another account (a forged input can claim one, docs/SECURITY.md "Tenancy") is never moved from here. Not in
    the source's transaction: Zoom stops every app's stream with reason 9 at once, and two apps' rows each locked
    while waiting for the other's would deadlock."""
    others = Meeting.objects.filter(uuid=uuid, account_id=account_id, ended_at=None).exclude(
        pk=source_pk).exclude(share_with_apps=share_with_apps).values_list("pk", flat=True)
    for meeting_pk in others:
        do_follow_other_app(meeting_pk, source_pk, share_with_apps, actor=actor)


@transaction.atomic
def do_follow_other_app(meeting_pk, source_pk, share_with_apps, *, actor):
    """This app's row of the meeting takes the toggle another app's row of it took (its own push follows)."""
    meeting = meetings.lock(Meeting(pk=meeting_pk))
    source = Meeting.objects.filter(pk=source_pk).values_list("share_with_apps", "app__name").first()
    if meeting.ended_at is not None or meeting.share_with_apps == share_with_apps or source is None \
            or source[0] != share_with_apps:
        return meeting  # nothing to change, or the source changed again since: its own follow-up carries that
    Meeting.objects.filter(pk=meeting.pk).update(share_with_apps=share_with_apps)
    meeting.share_with_apps = share_with_apps
    audit.record_in_meeting("set_toggles", meeting, actor, reason=f"the meeting's setting, changed in {source[1]}",
                            detail={"share_with_apps": share_with_apps})
    if not share_with_apps:
        _disable_everything(meeting, actor)
    mark_changed(meeting)
    return meeting
