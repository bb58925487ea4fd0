"""Who is in the meeting: verified panels opening, Zoom's join/leave events, and the meeting ending."""

import time

from django.db import connection, transaction
from django.utils import timezone

from rtms.compiled_read import CompiledRead
from zoomapp.consent import audit, meetings
from zoomapp.consent.models import Meeting, Participant, Share, ShareRequest
from zoomapp.consent.permissions import HOST_ROLES, ZOOM, role_of
from zoomapp.consent.push import mark_changed
from zoomapp.marketplace.app_context import CLOCK_SKEW_MS

Status = Share.Status


def do_panel_opened(meeting, user_id, role, name="", *, actor, made_ms=None):
    """A verified app context arrived: bind what Zoom told us about this user (role, presence). `made_ms` is when
    Zoom made the context (its ts; now by default): a role Zoom set after that stands (_bind_under_lock). Most panels
    change nothing another panel shows (a guest; an attendee already known as such, or seen for the first time):
    those take no meeting lock, so a thousand panels opening at a meeting's start do not queue behind one another
    for it (bench/panel_fanout.py, docs/ARCHITECTURE.md "Pushing state")."""
    if not user_id:
        return meeting  # a guest: nothing of theirs to bind
    made_ms = _now_ms() if made_ms is None else made_ms
    attendee = role not in HOST_ROLES and user_id != meeting.host_user_id
    if attendee and _attendee_bound(meeting, user_id, role, name, made_ms):
        return meeting
    return _bind_under_lock(meeting, user_id, role, name, made_ms, actor)


def _now_ms():
    return int(time.time() * 1000)


# What an attendee's Home URL checks of them: once per panel's opening (rtms/compiled_read.py).
_KNOWN_ATTENDEE = CompiledRead(
    lambda meeting_pk, user_id: Participant.objects.filter(meeting_id=meeting_pk, user_id=user_id).values_list(
        "role", "name", "present"),
    -1, "user id stand-in")


def _attendee_bound(meeting, user_id, role, name, made_ms):
    """An attendee's panel, without the meeting's lock: True when nothing needed changing or they were new and
    are now inserted; False leaves it to the locked path (a role, presence or name to change; an insert that
    met a concurrent one)."""
    known = _KNOWN_ATTENDEE.one(meeting.pk, user_id)
    if known is None:
        return _inserted_if_new(meeting, user_id, name, role, made_ms)
    known_role, known_name, present = known
    return known_role == role and present and bool(known_name or not name)


_NEW_PARTICIPANT_COLUMNS = ("meeting", "user_id", "name", "role", "role_as_of_ms", "present", "updated")
_INSERT_IF_NEW = "INSERT INTO {} ({}) VALUES ({}) ON CONFLICT ({}, {}) DO NOTHING RETURNING {}".format(
    connection.ops.quote_name(Participant._meta.db_table),
    ", ".join(connection.ops.quote_name(Participant._meta.get_field(name).column) for name in _NEW_PARTICIPANT_COLUMNS),
    ", ".join(["%s"] * len(_NEW_PARTICIPANT_COLUMNS)),
    *(connection.ops.quote_name(Participant._meta.get_field(name).column) for name in ("meeting", "user_id", "id")))


def _inserted_if_new(meeting, user_id, name, role, made_ms):
    """The person's row, inserted unless a concurrent panel of theirs inserted it first (then False): one statement
    on the unique (meeting, user_id), where a create() in a transaction of its own took three (BEGIN, INSERT,
    COMMIT) on every new attendee's Home URL (docs/ARCHITECTURE.md "Pushing state")."""
    now = connection.ops.adapt_datetimefield_value(timezone.now())
    with connection.cursor() as cursor:
        cursor.execute(_INSERT_IF_NEW, [meeting.pk, user_id, name[:200], role, made_ms, True, now])
        return cursor.fetchone() is not None


@transaction.atomic
def _bind_under_lock(meeting, user_id, role, name, made_ms, actor):
    meeting = meetings.lock(meeting)
    known = Participant.objects.filter(meeting=meeting, user_id=user_id).values_list(
        "role", "name", "present", "role_as_of_ms").first()
    known_role, known_name, was_present, role_as_of_ms = known or (None, "", True, None)
    if role_as_of_ms is not None and made_ms <= role_as_of_ms:
        # Zoom set the role after it made this context (a co-host demoted since, posting the context of before):
        # the later word stands (docs/SECURITY.md "Roles follow Zoom's latest word").
        role, made_ms = known_role, role_as_of_ms
    # The screen name the panel reports is only a fallback: the name in Zoom's webhooks wins.
    meetings.upsert_participant(meeting, user_id, "" if known_name else name, role, role_as_of_ms=made_ms)
    if role == Participant.Role.HOST and not meeting.host_user_id:
        Meeting.objects.filter(pk=meeting.pk).update(host_user_id=user_id)
        meeting.host_user_id = user_id
    # Panels show who the hosts are and close the departed ones: an attendee opening the app changes neither,
    # so a meeting's start with a thousand panels opening pushes nothing for them.
    hosts_changed = (known_role in HOST_ROLES) != (role in HOST_ROLES) or user_id == meeting.host_user_id
    if role == Participant.Role.HOST and not meeting.host_present and meeting.ended_at is None:
        _host_joined(meeting, actor)
    elif known_role != role and hosts_changed or not was_present:
        mark_changed(meeting)
    return meeting


def _host_joined(meeting, actor):
    Meeting.objects.filter(pk=meeting.pk).update(host_present=True)
    meeting.host_present = True
    # Rule 3: nothing was queued; tell those who were turned away that they can ask now.
    Share.objects.filter(meeting=meeting, status=Status.HOST_NOT_JOINED).update(
        status=Status.HOST_JOINED, updated=timezone.now()
    )
    audit.record_in_meeting("host_joined", meeting, actor)
    mark_changed(meeting)


# Zoom's join, leave and role events come out of order (a retried delivery arrives minutes late): each is taken
# at its `event_ts`, Zoom's clock in ms like an app context's `ts`, and one older than what it would undo changes
# nothing (docs/SECURITY.md "Roles follow Zoom's latest word", "Presence follows Zoom's latest word"). Without an
# event_ts (an action called directly) the event is taken as happening now.
def left_since(meeting, user_id, event_ts):
    """Whether `user_id` left the meeting after `event_ts`: a join (or role change) Zoom made before that leave
    is a late delivery."""
    return _presence_since(meeting, user_id, event_ts, present=False)


def _joined_since(meeting, user_id, event_ts):
    """Whether `user_id` joined again after `event_ts`: a leave Zoom made before that join is a late delivery."""
    return _presence_since(meeting, user_id, event_ts, present=True)


def _presence_since(meeting, user_id, event_ts, present):
    if event_ts is None or not user_id:
        return False
    return Participant.objects.filter(meeting=meeting, user_id=user_id, present=present,
                                      presence_as_of_ms__gt=event_ts).exists()


def _left_audited(kind, meeting, actor, user_id, event_ts, **detail):
    detail = {"user_id": user_id, **detail}
    if event_ts is not None:
        detail["event_ts"] = event_ts
    audit.record_in_meeting(kind, meeting, actor, detail=detail)


@transaction.atomic
def do_host_joined(meeting, host_user_id, name="", *, actor=ZOOM, event_ts=None):
    """The host joined (her participant_joined) or the meeting started. Ignored on an ended meeting (Zoom gives
    each occurrence a new uuid: an ended one never comes back) and when she left after Zoom made this event."""
    meeting = meetings.lock(meeting)
    if meeting.ended_at is not None or left_since(meeting, host_user_id, event_ts):
        return meeting
    if host_user_id:
        meetings.upsert_participant(meeting, host_user_id, name, Participant.Role.HOST, presence_as_of_ms=event_ts)
    if not meeting.host_present:
        _host_joined(meeting, actor)
    return meeting


def _host_left(meeting, host_user_id, actor, event_ts):
    if _joined_since(meeting, host_user_id, event_ts):
        return meeting  # she came back after Zoom made this leave: a late delivery
    if host_user_id:
        _mark_gone(meeting, host_user_id, event_ts)
    still_here = Participant.objects.filter(meeting=meeting, role=Participant.Role.HOST, present=True).exists()
    if meeting.host_present and not still_here:
        Meeting.objects.filter(pk=meeting.pk).update(host_present=False)
        meeting.host_present = False
        # Nobody is left to decide: pending requests are withdrawn and their requesters told, in rule 3's words,
        # that a request waits for the host; when she is back they hear they can ask again (_host_joined).
        withdrawn = ShareRequest.objects.filter(share__meeting=meeting, status=ShareRequest.Status.PENDING).update(
            status=ShareRequest.Status.WITHDRAWN, decided_at=timezone.now(), decided_by="zoom")
        Share.objects.filter(meeting=meeting, status=Status.PENDING).update(
            status=Status.HOST_NOT_JOINED, updated=timezone.now())
        _left_audited("host_left", meeting, actor, host_user_id, event_ts, requests_withdrawn=withdrawn)
        mark_changed(meeting)
    return meeting


def _mark_gone(meeting, user_id, event_ts):
    gone = {"present": False} if event_ts is None else {"present": False, "presence_as_of_ms": event_ts}
    Participant.objects.filter(meeting=meeting, user_id=user_id).update(**gone)


@transaction.atomic
def do_participant_joined(meeting, user_id, name, *, actor=ZOOM, event_ts=None):
    """Zoom's join event names no role: a co-host learnt earlier (a role change, a panel) stays one, anyone else joins
    as a participant. Decided on the row as it is under the meeting's lock, so a role a panel bound meanwhile is
    not overwritten with one read before it. Ignored on an ended meeting and when the person left after Zoom made
    this join (a late delivery)."""
    meeting = meetings.lock(meeting)
    if meeting.ended_at is not None or left_since(meeting, user_id, event_ts):
        return meeting
    known = Participant.objects.filter(meeting=meeting, user_id=user_id).values_list("role", "present").first()
    role = Participant.Role.CO_HOST if known and known[0] == Participant.Role.CO_HOST else Participant.Role.PARTICIPANT
    meetings.upsert_participant(meeting, user_id, name, role, presence_as_of_ms=event_ts)
    if known != (role, True):
        mark_changed(meeting)
    return meeting


@transaction.atomic
def do_role_changed(meeting, user_id, name, role, *, actor=ZOOM, event_ts=None):
    """Zoom's meeting.participant_role_changed, as of its event_ts: a change older than the role's `as of` time
    (an earlier change delivered late, or an app context Zoom made after it) changes nothing, and an app context
    made no later than it does not change the role back (_bind_under_lock, docs/SECURITY.md "Roles follow Zoom's
    latest word"). Without an event_ts it is taken as heard now, plus the clock skew an app context may have."""
    meeting = meetings.lock(meeting)
    if meeting.ended_at is not None:
        return meeting
    as_of_ms = _now_ms() + CLOCK_SKEW_MS if event_ts is None else event_ts
    known = Participant.objects.filter(meeting=meeting, user_id=user_id).values_list(
        "role", "present", "role_as_of_ms").first()
    if known and known[2] is not None and as_of_ms < known[2]:
        return meeting
    # A change Zoom made before the person's last leave sets their role, not their presence.
    present = not (known and not known[1] and left_since(meeting, user_id, event_ts))
    meetings.upsert_participant(meeting, user_id, name, role, present=present, role_as_of_ms=as_of_ms)
    if role == Participant.Role.HOST and present and not meeting.host_present:
        _host_joined(meeting, actor)
    elif known is None or known[:2] != (role, present):
        mark_changed(meeting)
    return meeting


@transaction.atomic
def do_person_left(meeting, user_id, *, is_host=False, actor=ZOOM, event_ts=None):
    """Zoom's participant_left: the host's leave (the meeting's host_id, or whoever our row says is the host) or
    anyone else's, decided under the meeting's lock, so a role change the lock made us wait for counts."""
    meeting = meetings.lock(meeting)
    if is_host or role_of(meeting, user_id) == Participant.Role.HOST:
        return _host_left(meeting, user_id, actor, event_ts)
    return _participant_left(meeting, user_id, actor, event_ts)


def _participant_left(meeting, user_id, actor, event_ts):
    """Continuous meeting sharing (Zoom's default since 2026-10): the user's apps keep running; hosts manage them.
    Their pending requests are withdrawn, as never made (the share back to "stopped" with no stream: back in the
    meeting they read no outcome and may ask again; only a cancel they made reads as one, docs/REQUESTS.md), and
    their panels close (consumers.PanelConsumer). A leave Zoom made before the person joined again (a late
    delivery) changes nothing."""
    if _joined_since(meeting, user_id, event_ts):
        return meeting
    _mark_gone(meeting, user_id, event_ts)
    withdrawn = ShareRequest.objects.filter(
        share__meeting=meeting, share__user_id=user_id, status=ShareRequest.Status.PENDING
    ).update(status=ShareRequest.Status.WITHDRAWN, decided_at=timezone.now(), decided_by="zoom")
    if withdrawn:
        Share.objects.filter(meeting=meeting, user_id=user_id, status=Status.PENDING).update(status=Status.STOPPED)
    _left_audited("participant_left", meeting, actor, user_id, event_ts, requests_withdrawn=withdrawn)
    mark_changed(meeting)
    return meeting


@transaction.atomic
def do_meeting_ended(meeting, *, actor=ZOOM):
    meeting = meetings.lock(meeting)
    if meeting.ended_at is not None:
        return meeting
    now = timezone.now()
    Meeting.objects.filter(pk=meeting.pk).update(ended_at=now, host_present=False)
    meeting.ended_at = now
    ShareRequest.objects.filter(share__meeting=meeting, status=ShareRequest.Status.PENDING).update(
        status=ShareRequest.Status.WITHDRAWN, decided_at=now, decided_by="zoom"
    )
    Share.objects.filter(meeting=meeting, status__in=(*Share.ACTIVE, Status.PENDING)).update(
        status=Status.STOPPED, stop_reason=6, updated=now
    )
    audit.record_in_meeting("meeting_ended", meeting, actor)
    mark_changed(meeting)
    return meeting
