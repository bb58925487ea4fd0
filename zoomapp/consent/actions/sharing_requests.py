"""Asking to share the meeting's content with an app, auto-start, and the host's decisions (docs/CONSENT.md rules
1–6 and 9)."""

import logging

from django.db import transaction
from django.utils import timezone

from zoomapp import texts
from zoomapp.consent import audit, meetings, policy
from zoomapp.consent.actions.sharing_with_apps import sharing_turned
from zoomapp.consent.actions.starting import begin_start
from zoomapp.consent.actions.streams import stop_was_chosen
from zoomapp.consent.models import Meeting, Share, ShareRequest
from zoomapp.consent.permissions import ZOOM, Actor, Refused, is_host, require_host, require_live
from zoomapp.consent.push import mark_changed

log = logging.getLogger("zoomapp.consent")

Status = Share.Status


def _sharing_gate(meeting):
    """Rules 1 and 2: why nothing may start in this meeting now (outcome, reason), or None."""
    if meeting.host_user_id and not policy.sharing_allowed_for_host(meeting.host_user_id, meeting.account_id):
        return Status.HOST_CANNOT_APPROVE, "admin policy disables sharing with apps for the host"
    if not meeting.share_with_apps:
        return Status.APPS_DISABLED, "the host turned off sharing with apps"
    return None


@transaction.atomic
def do_request(meeting, *, actor, source=ShareRequest.Source.PARTICIPANT):
    """A user asks to share the meeting's content with the meeting's app (rules 1-5). Returns the Share."""
    if not actor.user_id:
        raise Refused("guest", texts.REFUSED_GUEST_REQUEST)
    meeting = meetings.lock(meeting)
    require_live(meeting)
    share = meetings.share_for(meeting, actor.user_id, actor.name)
    if share.status in (Status.PENDING, *Share.ACTIVE):
        return share  # already asked or already sharing: asking twice changes nothing

    def refuse(outcome, reason):
        share.set_status(outcome, started_by="", start_path="")
        audit.record_in_meeting("request", meeting, actor, share=share, outcome=outcome, reason=reason)
        mark_changed(meeting)
        return share

    gate = _sharing_gate(meeting)
    if gate:
        return refuse(*gate)
    if not meeting.host_present and not meeting.host_user_id and source != ShareRequest.Source.AUTO:
        # Nothing Zoom told this app names the meeting's host (no meeting event reached it: Zoom may send them only
        # for hosts who added the app; she has not opened the panel): whether she is here is Zoom's to say, in its
        # answer to the requester's in-client start (rtms.request_status host_not_joined, rule 3's text).
        audit.record_in_meeting("request", meeting, actor, share=share, outcome=Status.STARTING,
                                reason="the host is unknown here: Zoom decides")
        begin_in_client_start(meeting, share, actor=actor, reason="the host is unknown here")
        return share
    if not meeting.host_present:
        return refuse(Status.HOST_NOT_JOINED, "the host has not joined")
    if is_host(meeting, actor.user_id):
        audit.record_in_meeting("request", meeting, actor, share=share, outcome=Status.STARTING,
                                reason="requester is a host")
        begin_start(meeting, share, actor.user_id)
        return share
    if not meeting.require_host_approval and source != ShareRequest.Source.AUTO:
        # Our panel says no approval, but only Zoom knows whether its own setting asks the host: Zoom decides. An
        # auto-start has no client of its user to ask Zoom through (they have not opened the app): the host is.
        audit.record_in_meeting("request", meeting, actor, share=share, outcome=Status.STARTING,
                                reason="host approval not required here: Zoom's own setting decides")
        begin_in_client_start(meeting, share, actor=actor, reason="host approval not required in the panel")
        return share
    ShareRequest.objects.create(share=share, source=source)
    share.set_status(Status.PENDING, started_by="", start_path="")
    audit.record_in_meeting("request", meeting, actor, share=share, outcome=Status.PENDING, detail={"source": source})
    mark_changed(meeting)
    return share


def begin_in_client_start(meeting, share, *, actor, reason):
    """The requester's own panel calls zoomSdk.startRTMS(), so Zoom applies its own settings: it starts at once
    when Zoom does not require the host's approval, else Zoom asks the host in its modal (docs/CONSENT.md rule 10:
    the app never starts with a host's token what the host did not approve)."""
    share.set_status(Status.STARTING, started_by=Share.StartedBy.HOST, start_path=Share.StartPath.IN_CLIENT,
                     stop_intent="", stop_reason=None, rtms_stream_id="", start_attempt=share.start_attempt + 1)
    audit.record_in_meeting("start_in_client", meeting, actor, share=share, outcome=Status.STARTING, reason=reason)
    mark_changed(meeting)


# Zoom's answer to an in-client request (rtms.request_status) -> the requester's outcome.
ZOOM_REQUEST_OUTCOMES = {
    "pending": Status.PENDING,
    "denied": Status.DENIED,
    "host_not_joined": Status.HOST_NOT_JOINED,
    "apps_disabled": Status.APPS_DISABLED,
    "host_cannot_approve": Status.HOST_CANNOT_APPROVE,
    "not_eligible": Status.HOST_CANNOT_APPROVE,
    "concurrency_limited": Status.STREAM_LIMIT,
}


@transaction.atomic
def do_zoom_request_status(meeting, requester_id, status, *, actor=ZOOM):
    """Zoom told us how it answered a participant's in-client request (rtms.request_status): the outcome names its
    real cause, and where it reveals Zoom's own host settings, the meeting's toggles follow them (rule 10)."""
    meeting = meetings.lock(meeting)
    share = Share.objects.select_for_update().filter(meeting=meeting, user_id=requester_id).first()
    outcome = ZOOM_REQUEST_OUTCOMES.get(status)
    if share is None or outcome is None or share.is_active and share.rtms_stream_id:
        return share  # approved (Zoom's rtms_started follows), or a stream already runs: nothing to say
    # Zoom retries deliveries and its events arrive out of order: an answer after the meeting ended, or a "pending"
    # for a request decided since (Zoom asks its host only about a start the panel made: "Starting…"), is late and
    # changes nothing (docs/CONSENT.md "Starting and stopping").
    late = meeting.ended_at is not None or (outcome == Status.PENDING
                                            and share.status not in (Status.STARTING, Status.PENDING))
    if late:
        log.info("Zoom's request status arrived late, ignored", extra={
            "meeting": meeting.uuid, "user": requester_id,
            "request_status": status, "status": share.status, "ended": meeting.ended_at is not None})
        return share
    mirrored = {}
    if status == "apps_disabled" and meeting.share_with_apps:
        mirrored["share_with_apps"] = False
    if status in ("pending", "denied") and not meeting.require_host_approval:  # Zoom asked the host
        mirrored["require_host_approval"] = True
    if mirrored:
        Meeting.objects.filter(pk=meeting.pk).update(**mirrored)
        for key, value in mirrored.items():
            setattr(meeting, key, value)
        audit.record_in_meeting("set_toggles", meeting, actor, reason="Zoom's host settings", detail=mirrored)
    changed = share.status != outcome
    if changed:
        share.set_status(outcome, started_by="" if outcome != Status.PENDING else share.started_by)
        audit.record_in_meeting("zoom_request_status", meeting, actor, share=share, outcome=outcome,
                                reason=f"Zoom answered the in-client request: {status}")
    if "share_with_apps" in mirrored:
        sharing_turned(meeting, actor)  # as when the host turns it off in the panel: everything else stops too
    if changed or mirrored:
        mark_changed(meeting)
    return share


@transaction.atomic
def do_auto_start(meeting, user_id, name="", *, reason="", detail=None, actor=ZOOM):
    """Rule 9 without a request (the user is in the host's account, or the host does not require approval): the app
    starts now and the host's panel says "RTMS set to auto start". Rules 1 and 2 still gate it; nothing is shown to
    a user who never asked when they do. Returns the Share, or None when gated (consent/autostart.py decides)."""
    meeting = meetings.lock(meeting)
    require_live(meeting)
    share = meetings.share_for(meeting, user_id, name)
    if share.status in (Status.PENDING, *Share.ACTIVE):
        return share
    gate = _sharing_gate(meeting)
    if gate:
        audit.record_in_meeting("auto_start", meeting, actor, share=share, outcome="skipped",
                                reason=f"{reason}; {gate[1]}", detail=detail)
        return None
    if _chosen_stop_stands(meeting, share, reason, detail, actor):
        return None
    audit.record_in_meeting("auto_start", meeting, actor, share=share, outcome=Status.STARTING, reason=reason,
                            detail=detail)
    begin_start(meeting, share, meeting.host_user_id or user_id)
    share.set_status(Status.STARTING, started_by=Share.StartedBy.AUTO)
    return share


@transaction.atomic
def do_auto_request(meeting, user_id, name="", *, reason="", detail=None, actor=ZOOM):
    """Rule 9 when another account's admin set it: the host is asked, as for a participant's request, also when
    the panel says she does not require approval (only Zoom knows whether it would ask her, and the user, who has
    not opened the app, has no client to ask Zoom through). Returns the Share, or None when a stop someone chose
    in this meeting stands."""
    meeting = meetings.lock(meeting)
    share = Share.objects.select_for_update().filter(meeting=meeting, user_id=user_id).first()
    if share is not None and _chosen_stop_stands(meeting, share, reason, detail, actor):
        return None
    return do_request(meeting, actor=Actor(user_id, name, "auto_start"), source=ShareRequest.Source.AUTO)


def _chosen_stop_stands(meeting, share, reason, detail, actor):
    """Auto-start never overrides a stop someone chose in this meeting (the host disabled the app or turned sharing
    off, its user stopped it): a host's join again, or Zoom's retry of it, runs auto-start for everyone present
    (docs/CONSENT.md rule 9). The skip is audited."""
    if not stop_was_chosen(share):
        return False
    audit.record_in_meeting("auto_start", meeting, actor, share=share, outcome="skipped",
                            reason=f"{reason}; {share.status} in this meeting: a stop someone chose stands",
                            detail=detail)
    return True


def _pending(meeting, request_ids):
    """The pending requests, each with its share, both locked in one read (not the app's row: every meeting of the
    app would wait on it)."""
    qs = ShareRequest.objects.select_for_update(of=("self", "share")).filter(
        share__meeting=meeting, status=ShareRequest.Status.PENDING
    ).select_related("share", "share__app")
    if request_ids is not None:
        qs = qs.filter(id__in=request_ids)
    return list(qs)


def _decide(meeting, request_ids, status, *, actor):
    """Record the host's decision on pending requests; returns (request, locked share) pairs."""
    requests = _pending(meeting, request_ids)
    if request_ids is not None and len(requests) != len(set(request_ids)):
        raise Refused("unknown_request", texts.REFUSED_REQUEST_DECIDED)
    now = timezone.now()
    decided = []
    for request in requests:
        request.status, request.decided_at, request.decided_by = status, now, actor.user_id
        request.save()
        decided.append((request, request.share))
    return decided


def approve_pending(meeting, request_ids, *, actor, reason=""):
    """The one approval path (approve, approve all, and approval no longer required): each approved share starts
    with the approving host's token, and an admin's auto-start keeps its "set to auto start" notice. Returns how
    many were approved; the caller publishes."""
    decided = _decide(meeting, request_ids, ShareRequest.Status.APPROVED, actor=actor)
    for request, share in decided:
        audit.record_in_meeting("approve", meeting, actor, share=share, outcome=Status.STARTING, reason=reason,
                                detail={"request": request.id})
        if not meeting.share_with_apps:
            share.set_status(Status.APPS_DISABLED)
            continue
        begin_start(meeting, share, actor.user_id, publish=False)
        if request.source == ShareRequest.Source.AUTO:
            share.set_status(share.status, started_by=Share.StartedBy.AUTO)  # the host's AAN: "set to auto start"
    return len(decided)


@transaction.atomic
def do_approve(meeting, request_ids=None, *, actor):
    """The host approves some pending requests (all when request_ids is None). Returns how many."""
    meeting = meetings.lock(meeting)
    require_host(meeting, actor)
    require_live(meeting)
    approved = approve_pending(meeting, request_ids, actor=actor)
    if approved:
        mark_changed(meeting)
    return approved


@transaction.atomic
def do_deny(meeting, request_ids=None, *, actor):
    meeting = meetings.lock(meeting)
    require_host(meeting, actor)
    decided = _decide(meeting, request_ids, ShareRequest.Status.DENIED, actor=actor)
    for request, share in decided:
        share.set_status(Status.DENIED)
        audit.record_in_meeting("deny", meeting, actor, share=share, outcome=Status.DENIED,
                                detail={"request": request.id})
    if decided:
        mark_changed(meeting)
    return len(decided)


@transaction.atomic
def do_withdraw(meeting, share_id, *, actor):
    """The requester cancels their own request before the host decides: nothing starts, the host's request modal
    loses it at the next push, and the requester may ask again."""
    meeting = meetings.lock(meeting)
    share = meetings.share_in(meeting, share_id)
    if share.user_id != actor.user_id:
        raise Refused("not_your_app", texts.REFUSED_NOT_REQUESTER)
    if share.status != Status.PENDING:
        raise Refused("not_pending", texts.REFUSED_NOT_PENDING)
    withdrawn = ShareRequest.objects.filter(share=share, status=ShareRequest.Status.PENDING).update(
        status=ShareRequest.Status.WITHDRAWN, decided_at=timezone.now(), decided_by=actor.user_id)
    share.set_status(Status.STOPPED, started_by="", start_path="")
    audit.record_in_meeting("withdraw", meeting, actor, share=share, outcome=Status.STOPPED,
                            reason="the requester cancelled", detail={"requests": withdrawn})
    mark_changed(meeting)
    return share
