"""The one place consent state changes: PRODUCT.md's rules as do_* functions.

Each do_* function checks the rule (and the actor's role, read server-side), writes the rows and an
AuditEntry in one transaction, and after commit publishes the meeting's FULL state with its version to the
meeting's Channels group (panels apply a state only when its version is newer, so a dropped message is
repaired by the next one). Views, the panel consumer, tasks and the webhook/stream receivers all call these.

Talking to Zoom (REST rtms_app/status) happens after commit, outside any transaction; its answer comes back
through another do_* call.
"""

import hashlib
import logging
import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from rtms import live
from zoomapp.consent import policy
from zoomapp.consent.models import AuditEntry, Meeting, Participant, Share, ShareRequest
from zoomapp.marketplace import oauth
from zoomapp.marketplace.models import ZoomApp

log = logging.getLogger("zoomapp.consent")

Status = Share.Status

# RTMS_STOP_REASON (reference §5.3) -> the participant's outcome.
STOP_REASON_OUTCOMES = {
    5: Status.DISABLED_BY_HOST,  # HOST_DISABLED_APP
    9: Status.APPS_DISABLED,  # ALL_APPS_DISABLED
    23: Status.HOST_CANNOT_APPROVE,  # ADMIN_DISABLED_APP
}
STOP_REASON_NAMES = {
    0: "UNDEFINED", 1: "HOST_TRIGGERED", 2: "USER_TRIGGERED", 3: "USER_LEFT", 4: "USER_EJECTED",
    5: "HOST_DISABLED_APP", 6: "MEETING_ENDED", 7: "STREAM_CANCELED", 8: "STREAM_REVOKED", 9: "ALL_APPS_DISABLED",
    10: "INTERNAL_EXCEPTION", 11: "CONNECTION_TIMEOUT", 12: "INSTANCE_CONNECTION_INTERRUPTED",
    13: "SIGNAL_CONNECTION_INTERRUPTED", 14: "DATA_CONNECTION_INTERRUPTED", 15: "SIGNAL_CONNECTION_CLOSED_ABNORMALLY",
    16: "DATA_CONNECTION_CLOSED_ABNORMALLY", 17: "EXIT_SIGNAL", 18: "AUTHENTICATION_FAILURE",
    19: "AWAIT_RECONNECTION_TIMEOUT", 20: "RECEIVER_REQUEST_CLOSE", 23: "ADMIN_DISABLED_APP", 24: "KEEP_ALIVE_TIMEOUT",
}
# Outcomes the host (or the app's user) chose; Zoom's later stop reason does not overwrite them.
CHOSEN_STOPS = (Status.DISABLED_BY_HOST, Status.APPS_DISABLED, Status.STOPPED)
FINAL = (Status.DENIED, Status.HOST_CANNOT_APPROVE, Status.DISABLED_BY_HOST, Status.APPS_DISABLED, Status.STOPPED)
HOST_ROLES = (Participant.Role.HOST, Participant.Role.CO_HOST)


@dataclass(frozen=True)
class Actor:
    """Who acts and from where (for the audit log). The role is never taken from here: see role_of()."""

    user_id: str
    name: str = ""
    source: str = ""  # panel_ws | panel_http | webhook | stream | task
    address: str = ""


ZOOM = Actor("zoom", "Zoom", "webhook")


class Refused(Exception):
    """A refused action: `code` for the API, `message` for people. Nothing was changed."""

    def __init__(self, code, message):
        super().__init__(message)
        self.code = code
        self.message = message


# --- Channels groups --------------------------------------------------------------------------

_UNSAFE = re.compile(r"[^a-zA-Z0-9\-_.]")


def _prefix():
    return _UNSAFE.sub("_", settings.REDIS_NAMESPACE)[:40]


def meeting_group(client_id, meeting_uuid):
    """The panels of one app in one meeting (docs/SECURITY.md "Tenancy": pushes never cross apps).
    Group names allow only [a-zA-Z0-9-_.] and < 100 chars; meeting UUIDs have '+', '/', '='."""
    digest = hashlib.sha256(f"{client_id}\0{meeting_uuid}".encode()).hexdigest()[:40]
    return f"{_prefix()}.meeting.{digest}"


def user_group(client_id, meeting_uuid, viewer_id):
    """One viewer's panels of one app: transcript lines and SDK calls meant for that user only."""
    digest = hashlib.sha256(f"{client_id}\0{meeting_uuid}\0{viewer_id}".encode()).hexdigest()[:40]
    return f"{_prefix()}.user.{digest}"


# --- State ------------------------------------------------------------------------------------


def role_of(meeting, user_id):
    """The user's role now, from what Zoom told us (webhooks and verified app contexts), never from the client."""
    if not user_id:
        return Participant.Role.PARTICIPANT
    participant = Participant.objects.filter(meeting=meeting, user_id=user_id).only("role").first()
    if participant is not None:
        return participant.role
    return Participant.Role.HOST if user_id == meeting.host_user_id else Participant.Role.PARTICIPANT


def is_host(meeting, user_id):
    return role_of(meeting, user_id) in HOST_ROLES


def _hosts(meeting):
    hosts = sorted(
        Participant.objects.filter(meeting=meeting, role__in=HOST_ROLES).values_list("user_id", flat=True)
    )
    if meeting.host_user_id and meeting.host_user_id not in hosts:
        # The original host keeps host rights unless Zoom told us their role changed.
        if not Participant.objects.filter(meeting=meeting, user_id=meeting.host_user_id).exists():
            hosts.append(meeting.host_user_id)
    return hosts


def _pending_requests(meeting):
    return list(
        ShareRequest.objects.filter(share__meeting=meeting, status=ShareRequest.Status.PENDING).select_related(
            "share", "share__app"
        )
    )


def _other_apps(meeting):
    """The same Zoom meeting as the deployment's other apps see it: whether any of them is sharing (the
    disclosure is for the meeting, not for one app) and their pending requests, each with the hosts that app's
    own verified inputs name. Read-only here; viewer_state shows requests only to a viewer who is a host in both
    apps' rows, and deciding happens in that app's own panel (docs/SECURITY.md "Tenancy")."""
    others = Meeting.objects.filter(uuid=meeting.uuid, ended_at__isnull=True).exclude(pk=meeting.pk)
    entries = []
    for other in others.select_related("app"):
        requests = _pending_requests(other)
        sharing = other.shares.filter(status__in=(Status.SHARING, Status.PAUSED)).exists()
        if requests or sharing:
            entries.append({
                "app": other.app.client_id,
                "app_name": other.app.name,
                "sharing": sharing,
                "hosts": _hosts(other),
                "requests": [{"user_id": r.share.user_id, "user_name": r.share.user_name} for r in requests],
            })
    return entries


def meeting_state(meeting):
    """The full state every panel of this app in the meeting renders (filtered per viewer by viewer_state)."""
    shares = list(meeting.shares.select_related("app"))
    requests = _pending_requests(meeting)
    hosts = _hosts(meeting)
    other_apps = _other_apps(meeting)
    return {
        "version": meeting.version,
        "meeting": {
            "uuid": meeting.uuid,
            "topic": meeting.topic,
            "host_present": meeting.host_present,
            "share_with_apps": meeting.share_with_apps,
            "require_host_approval": meeting.require_host_approval,
            "ended": meeting.ended_at is not None,
        },
        "hosts": hosts,
        # Whose panels must close: they left or were removed (consumers.PanelConsumer; never sent to a panel).
        "departed": sorted(
            Participant.objects.filter(meeting=meeting, present=False).values_list("user_id", flat=True)
        ),
        "other_apps": other_apps,
        "disclosure": any(s.status in (Status.SHARING, Status.PAUSED) for s in shares)
        or any(entry["sharing"] for entry in other_apps),
        "shares": [
            {
                "id": s.id,
                "app": s.app.client_id,
                "app_name": s.app.name,
                "user_id": s.user_id,
                "user_name": s.user_name,
                "status": s.status,
                "active": s.is_active,
                "started_by": s.started_by,
                "start_path": s.start_path,
                "start_attempt": s.start_attempt,
                "has_stream": bool(s.rtms_stream_id),
            }
            for s in shares
        ],
        "requests": [
            {
                "id": r.id,
                "share": r.share_id,
                "app": r.share.app.client_id,
                "app_name": r.share.app.name,
                "user_id": r.share.user_id,
                "user_name": r.share.user_name,
                "source": r.source,
            }
            for r in requests
        ],
        # App Activity Notifications (host only): who started what, and how.
        "notices": [
            {"share": s.id, "kind": s.started_by, "app_name": s.app.name, "user_name": s.user_name or s.user_id}
            for s in shares
            if s.is_active and s.started_by
        ],
    }


def viewer_state(state, viewer_id):
    """What one panel may see: hosts get everything; others get their own requests and no AAN."""
    viewer_is_host = viewer_id in state["hosts"]
    filtered = dict(state)
    del filtered["departed"]
    filtered["other_apps"] = [
        {"app": entry["app"], "app_name": entry["app_name"], "requests": entry["requests"]}
        for entry in state["other_apps"] if entry["requests"] and viewer_is_host and viewer_id in entry["hosts"]
    ]
    if not viewer_is_host:
        filtered["requests"] = [r for r in state["requests"] if r["user_id"] == viewer_id]
        filtered["notices"] = []
    filtered["viewer"] = {"user_id": viewer_id, "is_host": viewer_is_host}
    return filtered


def recent_transcript(meeting, viewer_id, limit=30):
    """The last lines each of the viewer's apps received, for a panel that (re)connects."""
    from rtms.models import TranscriptSegment

    lines = {}
    for share in Share.objects.filter(meeting=meeting, user_id=viewer_id).exclude(rtms_stream_id=""):
        segments = TranscriptSegment.objects.filter(stream__rtms_stream_id=share.rtms_stream_id).order_by("-id")[:limit]
        lines[share.pk] = [
            {"user_name": s.user_name, "text": s.text, "start_time": s.start_time} for s in reversed(segments)
        ]
    return lines


def snapshot_for(identity):
    """Everything a panel needs when it (re)connects: its filtered state, transcript and authorization."""
    app = ZoomApp.objects.get(client_id=identity.client_id)
    meeting = get_meeting(app, identity.meeting_uuid)
    state = viewer_state(meeting_state(meeting), identity.viewer_id)
    state["transcript"] = {str(k): v for k, v in recent_transcript(meeting, identity.viewer_id).items()}
    state["viewer"]["authorization"] = (
        oauth.authorization_status(app, identity.user_id) if identity.user_id else "unauthorized"
    )
    return state


def publish_meeting_state(meeting_id):
    """Read the committed state and push it to every panel of this app in the meeting, and to the other apps'
    panels of the same Zoom meeting too, whose hosts see this app's pending requests (_other_apps)."""
    meeting = Meeting.objects.filter(pk=meeting_id).select_related("app").first()
    if meeting is None:
        return None
    state = meeting_state(meeting)
    live.push(meeting_group(meeting.app.client_id, meeting.uuid), {"type": "panel.state", "state": state})
    for other in Meeting.objects.filter(uuid=meeting.uuid).exclude(pk=meeting.pk).select_related("app"):
        # Panels apply only newer versions: the other app's state changed too (its other_apps part).
        Meeting.objects.filter(pk=other.pk).update(version=F("version") + 1)
        other.refresh_from_db(fields=["version"])
        live.push(meeting_group(other.app.client_id, other.uuid), {"type": "panel.state", "state": meeting_state(other)})
    return state


def _changed(meeting, *, publish=True):
    """Bump the version under the meeting's row lock and push after commit."""
    Meeting.objects.filter(pk=meeting.pk).update(version=F("version") + 1)
    meeting.refresh_from_db(fields=["version"])
    if publish:
        meeting_id = meeting.pk
        transaction.on_commit(lambda: publish_meeting_state(meeting_id), robust=True)


# Calls to Zoom run off the committing thread: in daphne that thread is the one every sync view and consumer
# database call shares, and Zoom's webhook for the very start we asked for must not wait behind our call.
_zoom_calls = ThreadPoolExecutor(max_workers=4, thread_name_prefix="zoom-rest")


def _call_zoom_after_commit(fn, *args):
    def run():
        try:
            fn(*args)
        except Exception:  # noqa: BLE001 - logged; the share's own timeout (tasks.fail_stuck_starts) repairs it
            log.exception("call to Zoom failed", extra={"call": fn.__name__})
        finally:
            connection.close()  # this pool thread's own connection

    transaction.on_commit(lambda: _zoom_calls.submit(run))


def _lock(meeting):
    """Serialise changes to one meeting (a no-op lock on SQLite, whose IMMEDIATE transactions serialise anyway)."""
    return Meeting.objects.select_for_update().get(pk=meeting.pk)


def _audit(kind, meeting, actor, *, app=None, share=None, outcome="", reason="", detail=None):
    app = app or (share.app if share else meeting.app)  # every entry names its app: the console scopes by it
    AuditEntry.objects.create(
        kind=kind,
        app=app,
        meeting_uuid=meeting.uuid,
        actor_user_id=actor.user_id,
        actor_role=role_of(meeting, actor.user_id) if actor is not ZOOM and actor.user_id != "zoom" else "zoom",
        subject_user_id=share.user_id if share else "",
        outcome=outcome,
        reason=reason[:300],
        source=actor.source,
        source_address=actor.address[:100],
        rtms_stream_id=share.rtms_stream_id if share else "",
        detail=detail or {},
    )
    log.info(
        "consent %s", kind,
        extra={"meeting": meeting.uuid, "client_id": app.client_id, "actor": actor.user_id, "subject": share.user_id if share else None,
               "outcome": outcome or None, "reason": reason or None, "source": actor.source or None},
    )


def _require_host(meeting, actor):
    if not is_host(meeting, actor.user_id):
        raise Refused("not_host", "Only the meeting's host or a co-host can do this.")


def _require_live(meeting):
    if meeting.ended_at is not None:
        raise Refused("meeting_ended", "The meeting has ended.")


# Who the meeting belongs to: set by the first verified input of this app and never overwritten after
# (docs/SECURITY.md "Tenancy"); a later event that disagrees is logged, not applied.
IDENTITY_FIELDS = ("account_id", "host_user_id")


def get_meeting(app, uuid, **known):
    """This app's row for the meeting, created on first sight; fills in facts (host, numeric id…) we did not
    know. `app` is the app whose verified input (webhook, app context, panel token) is asking."""
    meeting, _ = Meeting.objects.get_or_create(app=app, uuid=uuid)
    updates = {}
    for key, value in known.items():
        if not value or getattr(meeting, key) == value:
            continue
        if key in IDENTITY_FIELDS and getattr(meeting, key):
            log.warning("meeting identity kept", extra={"meeting": uuid, "client_id": app.client_id,
                                                        "field": key, "kept": getattr(meeting, key), "offered": value})
            continue
        updates[key] = value
    if updates:
        Meeting.objects.filter(pk=meeting.pk).update(**updates)
        for key, value in updates.items():
            setattr(meeting, key, value)
    return meeting


def _upsert_participant(meeting, user_id, name="", role=None, present=True):
    defaults = {"present": present}
    if name:
        defaults["name"] = name[:200]
    if role:
        defaults["role"] = role
    participant, _ = Participant.objects.update_or_create(meeting=meeting, user_id=user_id, defaults=defaults)
    return participant


def _share_for(meeting, app, user_id, name=""):
    if app.pk != meeting.app_id:
        raise Refused("wrong_app", "That meeting belongs to another app.")
    share, created = Share.objects.select_for_update().get_or_create(
        meeting=meeting, app=app, user_id=user_id, defaults={"user_name": name[:200], "status": Status.STOPPED}
    )
    if name and share.user_name != name:
        share.user_name = name[:200]
    return share


# --- Presence ---------------------------------------------------------------------------------


@transaction.atomic
def do_panel_opened(app, meeting_uuid, user_id, role, name, actor):
    """A verified app context arrived: bind what Zoom told us about this user (role, presence)."""
    meeting = _lock(get_meeting(app, meeting_uuid))
    if not user_id:
        return meeting
    known = Participant.objects.filter(meeting=meeting, user_id=user_id).values_list("role", "name").first()
    known_role, known_name = known or (None, "")
    # The screen name the panel reports is only a fallback: the name in Zoom's webhooks wins.
    _upsert_participant(meeting, user_id, "" if known_name else name, role)
    if role == Participant.Role.HOST and not meeting.host_user_id:
        Meeting.objects.filter(pk=meeting.pk).update(host_user_id=user_id)
        meeting.host_user_id = user_id
    if role == Participant.Role.HOST and not meeting.host_present:
        _host_joined(meeting, actor)
    elif known_role != role:
        _changed(meeting)
    return meeting


def _host_joined(meeting, actor):
    Meeting.objects.filter(pk=meeting.pk).update(host_present=True)
    meeting.host_present = True
    # Rule 3: nothing was queued; tell those who were turned away that they can ask now.
    Share.objects.filter(meeting=meeting, status=Status.HOST_NOT_JOINED).update(
        status=Status.HOST_JOINED, updated=timezone.now()
    )
    _audit("host_joined", meeting, actor)
    _changed(meeting)


@transaction.atomic
def do_host_joined(meeting, host_user_id, name="", actor=ZOOM):
    meeting = _lock(meeting)
    if host_user_id:
        _upsert_participant(meeting, host_user_id, name, Participant.Role.HOST)
    if not meeting.host_present:
        _host_joined(meeting, actor)
    return meeting


@transaction.atomic
def do_host_left(meeting, host_user_id, actor=ZOOM):
    meeting = _lock(meeting)
    if host_user_id:
        Participant.objects.filter(meeting=meeting, user_id=host_user_id).update(present=False)
    still_here = Participant.objects.filter(meeting=meeting, role=Participant.Role.HOST, present=True).exists()
    if meeting.host_present and not still_here:
        Meeting.objects.filter(pk=meeting.pk).update(host_present=False)
        meeting.host_present = False
        _audit("host_left", meeting, actor, detail={"user_id": host_user_id})
        _changed(meeting)
    return meeting


@transaction.atomic
def do_participant_joined(meeting, user_id, name, role, actor=ZOOM):
    meeting = _lock(meeting)
    known = Participant.objects.filter(meeting=meeting, user_id=user_id).values_list("role", "present").first()
    _upsert_participant(meeting, user_id, name, role)
    if known != (role, True):
        _changed(meeting)
    return meeting


@transaction.atomic
def do_participant_left(meeting, user_id, actor=ZOOM):
    """Continuous meeting sharing (Zoom's default since 2026-10): the user's apps keep running; hosts manage them."""
    meeting = _lock(meeting)
    Participant.objects.filter(meeting=meeting, user_id=user_id).update(present=False)
    withdrawn = ShareRequest.objects.filter(
        share__meeting=meeting, share__user_id=user_id, status=ShareRequest.Status.PENDING
    ).update(status=ShareRequest.Status.WITHDRAWN, decided_at=timezone.now(), decided_by="zoom")
    if withdrawn:
        Share.objects.filter(meeting=meeting, user_id=user_id, status=Status.PENDING).update(status=Status.STOPPED)
    _audit("participant_left", meeting, actor, detail={"user_id": user_id, "requests_withdrawn": withdrawn})
    _changed(meeting)
    return meeting


@transaction.atomic
def do_meeting_ended(meeting, actor=ZOOM):
    meeting = _lock(meeting)
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
    _audit("meeting_ended", meeting, actor)
    _changed(meeting)
    return meeting


# --- Requests and decisions -------------------------------------------------------------------


@transaction.atomic
def do_request(app, meeting, actor, source=ShareRequest.Source.PARTICIPANT):
    """A user asks to share the meeting's content with `app` (PRODUCT.md rules 1-5). Returns the Share."""
    if not actor.user_id:
        raise Refused("guest", "Sign in to Zoom to share meeting content with apps.")
    meeting = _lock(meeting)
    _require_live(meeting)
    share = _share_for(meeting, app, actor.user_id, actor.name)
    if share.status in (Status.PENDING, *Share.ACTIVE):
        return share  # already asked or already sharing: asking twice changes nothing

    def refuse(outcome, reason):
        share.status = outcome
        share.started_by = share.start_path = ""
        share.save()
        _audit("request", meeting, actor, share=share, outcome=outcome, reason=reason)
        _changed(meeting)
        return share

    if meeting.host_user_id and not policy.sharing_allowed_for_host(app, meeting.host_user_id, meeting.account_id):
        return refuse(Status.HOST_CANNOT_APPROVE, "admin policy disables sharing with apps for the host")
    if not meeting.share_with_apps:
        return refuse(Status.APPS_DISABLED, "the host turned off sharing with apps")
    if not meeting.host_present:
        return refuse(Status.HOST_NOT_JOINED, "the host has not joined")
    requester_is_host = is_host(meeting, actor.user_id)
    if not meeting.require_host_approval or requester_is_host:
        _audit("request", meeting, actor, share=share, outcome=Status.STARTING,
               reason="requester is a host" if requester_is_host else "host approval not required")
        _begin_start(meeting, share, actor.user_id if requester_is_host else meeting.host_user_id)
        return share
    ShareRequest.objects.create(share=share, source=source)
    share.status = Status.PENDING
    share.started_by = share.start_path = ""
    share.save()
    _audit("request", meeting, actor, share=share, outcome=Status.PENDING, detail={"source": source})
    _changed(meeting)
    return share


@transaction.atomic
def do_auto_start(app, meeting, user_id, name="", reason="", detail=None):
    """Rule 9 without a request (the user is in the host's account, or the host does not require approval): the app
    starts now and the host's AAN says "RTMS set to auto start". Rules 1 and 2 still gate it; nothing is shown to
    a user who never asked when they do. Returns the Share, or None when gated. (Issue 7; see consent/autostart.py.)"""
    meeting = _lock(meeting)
    _require_live(meeting)
    share = _share_for(meeting, app, user_id, name)
    if share.status in (Status.PENDING, *Share.ACTIVE):
        return share
    gate = ""
    if meeting.host_user_id and not policy.sharing_allowed_for_host(app, meeting.host_user_id, meeting.account_id):
        gate = "admin policy disables sharing with apps for the host"
    elif not meeting.share_with_apps:
        gate = "the host turned off sharing with apps"
    if gate:
        _audit("auto_start", meeting, ZOOM, share=share, outcome="skipped", reason=f"{reason}; {gate}", detail=detail)
        return None
    _audit("auto_start", meeting, ZOOM, share=share, outcome=Status.STARTING, reason=reason, detail=detail)
    _begin_start(meeting, share, meeting.host_user_id or user_id)
    _set_status(share, Status.STARTING, started_by=Share.StartedBy.AUTO)
    return share


def _pending(meeting, request_ids):
    qs = ShareRequest.objects.select_for_update().filter(
        share__meeting=meeting, status=ShareRequest.Status.PENDING
    ).select_related("share", "share__app")
    if request_ids is not None:
        qs = qs.filter(id__in=request_ids)
    return list(qs)


def _decide(meeting, actor, request_ids, status):
    """Record the host's decision on pending requests; returns (request, locked share) pairs."""
    requests = _pending(meeting, request_ids)
    if request_ids is not None and len(requests) != len(set(request_ids)):
        raise Refused("unknown_request", "That request is no longer waiting for a decision.")
    now = timezone.now()
    decided = []
    for request in requests:
        request.status, request.decided_at, request.decided_by = status, now, actor.user_id
        request.save()
        decided.append((request, Share.objects.select_for_update().get(pk=request.share_id)))
    return decided


@transaction.atomic
def do_approve(meeting, actor, request_ids=None):
    """The host approves some pending requests (all when request_ids is None). Returns how many."""
    meeting = _lock(meeting)
    _require_host(meeting, actor)
    _require_live(meeting)
    decided = _decide(meeting, actor, request_ids, ShareRequest.Status.APPROVED)
    for request, share in decided:
        _audit("approve", meeting, actor, share=share, outcome=Status.STARTING, detail={"request": request.id})
        if not meeting.share_with_apps:
            _set_status(share, Status.APPS_DISABLED)
            continue
        _begin_start(meeting, share, actor.user_id, publish=False)
        if request.source == ShareRequest.Source.AUTO:
            _set_status(share, share.status, started_by=Share.StartedBy.AUTO)  # the host's AAN: "set to auto start"
    if decided:
        _changed(meeting)
    return len(decided)


@transaction.atomic
def do_deny(meeting, actor, request_ids=None):
    meeting = _lock(meeting)
    _require_host(meeting, actor)
    decided = _decide(meeting, actor, request_ids, ShareRequest.Status.DENIED)
    for request, share in decided:
        _set_status(share, Status.DENIED)
        _audit("deny", meeting, actor, share=share, outcome=Status.DENIED, detail={"request": request.id})
    if decided:
        _changed(meeting)
    return len(decided)


def _set_status(share, status, **fields):
    share.status = status
    for key, value in fields.items():
        setattr(share, key, value)
    share.save()


# --- Starting ---------------------------------------------------------------------------------


def _begin_start(meeting, share, token_user_id, publish=True):
    """Mark the share starting, and after commit ask Zoom to start it with `token_user_id`'s token."""
    share.status = Status.STARTING
    share.started_by = Share.StartedBy.HOST
    share.start_path = Share.StartPath.REST
    share.stop_intent = ""
    share.stop_reason = None
    share.rtms_stream_id = ""
    share.start_attempt += 1
    share.save()
    if publish:
        _changed(meeting)
    share_id, attempt = share.pk, share.start_attempt
    _call_zoom_after_commit(start_via_rest, share_id, attempt, token_user_id)


def _meeting_ref(meeting):
    """REST wants the numeric id; a UUID works too when double-encoded (Zoom's rule for '/'-bearing UUIDs)."""
    return meeting.zoom_meeting_id or meeting.uuid


def call_rtms_app_status(app, meeting, action, token_user_ids, participant_user_id=None):
    """PATCH rtms_app/status with the first of `token_user_ids` that has a usable grant.

    Returns (outcome, detail): "ok", "not_allowed" (Zoom 2308), "no_token" (nobody authorized the app, or
    re-authorization needed), "refused" (any other error; detail says which).
    """
    from rtms import zoom_rest

    no_token_detail = "nobody with a usable grant"
    for user_id in dict.fromkeys(u for u in token_user_ids if u):

        def token_provider(force_refresh=False, _user=user_id):
            return oauth.access_token_for(app, _user, force_refresh=force_refresh)

        try:
            zoom_rest.update_rtms_app_status(
                _meeting_ref(meeting), action, app.client_id,
                participant_user_id=participant_user_id, token_provider=token_provider,
            )
        except oauth.OAuthError as exc:
            no_token_detail = f"{user_id}: {exc}"
            continue
        except zoom_rest.NotAllowedToStartRtms as exc:
            return "not_allowed", f"{exc.code} {exc.message}"
        except zoom_rest.AccessTokenInvalid as exc:  # refused even after a refresh: try the next grant
            no_token_detail = f"{user_id}: {exc.message}"
            continue
        except zoom_rest.ZoomRestError as exc:
            return "refused", f"{exc.status} {exc.code} {exc.message}"
        return "ok", user_id
    return "no_token", no_token_detail


def start_via_rest(share_id, attempt, token_user_id):
    """Start an approved share with the approving host's token; fall back to the requester's panel."""
    share = Share.objects.select_related("meeting", "app").filter(pk=share_id).first()
    if share is None or share.start_attempt != attempt or share.status != Status.STARTING:
        return
    meeting = share.meeting
    try:
        outcome, detail = call_rtms_app_status(
            share.app, meeting, "start", [token_user_id, meeting.host_user_id], participant_user_id=share.user_id
        )
    except Exception as exc:  # noqa: BLE001 - the share must not stay "starting" forever
        log.exception("REST start failed", extra={"meeting": meeting.uuid, "share": share_id})
        outcome, detail = "refused", repr(exc)[:200]
    if outcome == "ok":
        _record(share, "start_requested", outcome=Status.STARTING, reason=f"REST start with {detail}'s token")
    elif outcome in ("not_allowed", "no_token"):
        do_fall_back_to_in_client(share_id, attempt, reason=detail)
    else:
        do_start_failed(share_id, attempt, Status.HOST_CANNOT_APPROVE, reason=f"Zoom refused the start: {detail}")


@transaction.atomic
def _record(share, kind, outcome="", reason=""):
    _audit(kind, share.meeting, Actor("app", source="task"), share=share, outcome=outcome, reason=reason)


@transaction.atomic
def do_fall_back_to_in_client(share_id, attempt, reason):
    """REST cannot start it: the requester's panel calls zoomSdk.startRTMS(), so Zoom's own host approval runs."""
    share = Share.objects.select_for_update().select_related("meeting", "app").get(pk=share_id)
    if share.start_attempt != attempt or share.status != Status.STARTING:
        return share
    meeting = _lock(share.meeting)
    _set_status(share, Status.STARTING, start_path=Share.StartPath.IN_CLIENT)
    _audit("start_in_client", meeting, Actor("app", source="task"), share=share, outcome=Status.STARTING,
           reason=reason)
    _changed(meeting)
    return share


@transaction.atomic
def do_start_failed(share_id, attempt, outcome, reason, actor=None):
    share = Share.objects.select_for_update().select_related("meeting", "app").get(pk=share_id)
    if share.start_attempt != attempt or share.status != Status.STARTING or share.rtms_stream_id:
        return share
    meeting = _lock(share.meeting)
    _set_status(share, outcome, started_by="", start_path="")
    _audit("start_failed", meeting, actor or Actor("app", source="task"), share=share, outcome=outcome,
           reason=reason)
    _changed(meeting)
    return share


def do_in_client_result(share, actor, result, detail=""):
    """What the requester's panel saw after zoomSdk.startRTMS(): "started" (Zoom's webhook confirms) or "failed"
    (rule 7: the in-client fallback was refused → the host cannot approve)."""
    if share.user_id != actor.user_id:
        raise Refused("not_your_app", "Only the app's user can report this.")
    if result == "failed":
        return do_start_failed(share.pk, share.start_attempt, Status.HOST_CANNOT_APPROVE,
                               reason=f"in-client start refused: {detail}"[:300], actor=actor)
    return share


# --- Host controls ----------------------------------------------------------------------------


@transaction.atomic
def do_set_toggles(meeting, actor, share_with_apps=None, require_host_approval=None):
    meeting = _lock(meeting)
    _require_host(meeting, actor)
    _require_live(meeting)
    changes = {}
    if share_with_apps is not None and share_with_apps != meeting.share_with_apps:
        changes["share_with_apps"] = share_with_apps
    if require_host_approval is not None and require_host_approval != meeting.require_host_approval:
        changes["require_host_approval"] = require_host_approval
    if not changes:
        return meeting
    Meeting.objects.filter(pk=meeting.pk).update(**changes)
    for key, value in changes.items():
        setattr(meeting, key, value)
    _audit("set_toggles", meeting, actor, detail=changes)
    if changes.get("share_with_apps") is False:
        _disable_everything(meeting, actor)
    elif changes.get("require_host_approval") is False and meeting.share_with_apps:
        # Approval is no longer required: what was waiting for it starts now.
        for request in _pending(meeting, None):
            request.status, request.decided_at, request.decided_by = (
                ShareRequest.Status.APPROVED, timezone.now(), actor.user_id)
            request.save()
            share = Share.objects.select_for_update().get(pk=request.share_id)
            _audit("approve", meeting, actor, share=share, outcome=Status.STARTING,
                   reason="host approval no longer required")
            _begin_start(meeting, share, actor.user_id, publish=False)
    _changed(meeting)
    return meeting


def _disable_everything(meeting, actor):
    """Rule 8: sharing turned off stops every app; every requester sees "Apps sharing … disabled"."""
    now = timezone.now()
    ShareRequest.objects.filter(share__meeting=meeting, status=ShareRequest.Status.PENDING).update(
        status=ShareRequest.Status.WITHDRAWN, decided_at=now, decided_by=actor.user_id
    )
    for share in Share.objects.select_for_update().filter(meeting=meeting, status__in=(*Share.ACTIVE, Status.PENDING)):
        stream_to_stop = share.rtms_stream_id if share.is_active else ""
        _set_status(share, Status.APPS_DISABLED, stop_intent=Status.APPS_DISABLED)
        _audit("disable_all", meeting, actor, share=share, outcome=Status.APPS_DISABLED)
        if stream_to_stop:
            _stop_after_commit(share, actor)


def _stop_after_commit(share, actor):
    share_id = share.pk
    token_users = [actor.user_id]
    _call_zoom_after_commit(stop_via_rest, share_id, token_users)


def stop_via_rest(share_id, token_user_ids):
    """Ask Zoom to stop the stream; when nobody's token can, our worker closes it (STREAM_CLOSE_REQ)."""
    share = Share.objects.select_related("meeting", "app").filter(pk=share_id).first()
    if share is None or not share.rtms_stream_id:
        return
    outcome, detail = call_rtms_app_status(
        share.app, share.meeting, "stop", [*token_user_ids, share.meeting.host_user_id],
        participant_user_id=share.user_id,
    )
    if outcome != "ok":
        from rtms import services as rtms_services

        rtms_services.request_stop(share.rtms_stream_id, reason=f"consent stop, REST {outcome}: {detail}")
    _record(share, "stop_requested", outcome=share.status, reason=f"REST stop: {outcome} {detail}")


def _share_in(meeting, share_id):
    """A share of THIS meeting (a panel of meeting A can never reach meeting B's rows)."""
    share = Share.objects.select_for_update().select_related("app").filter(pk=share_id, meeting=meeting).first()
    if share is None:
        raise Refused("unknown_share", "That app is not in this meeting.")
    return share


@transaction.atomic
def do_disable(meeting, actor, share_id):
    """Rule 8: the host disables one actively sharing app → "Host disabled your app from sharing…"."""
    meeting = _lock(meeting)
    _require_host(meeting, actor)
    return _end_sharing(meeting, actor, _share_in(meeting, share_id), "disable", Status.DISABLED_BY_HOST)


def _require_owner_or_host(meeting, actor, share):
    if share.user_id != actor.user_id and not is_host(meeting, actor.user_id):
        raise Refused("not_your_app", "Only the app's user or a host can do this.")


@transaction.atomic
def do_pause(meeting, actor, share_id):
    return _pause_or_resume(meeting, actor, share_id, "pause", Status.SHARING)


@transaction.atomic
def do_resume(meeting, actor, share_id):
    return _pause_or_resume(meeting, actor, share_id, "resume", Status.PAUSED)


def _pause_or_resume(meeting, actor, share_id, action, required):
    meeting = _lock(meeting)
    share = _share_in(meeting, share_id)
    _require_owner_or_host(meeting, actor, share)
    if share.status != required or not share.rtms_stream_id:
        raise Refused("wrong_state", "The app is not sharing." if action == "pause" else "The app is not paused.")
    _audit(f"{action}_requested", meeting, actor, share=share, outcome=share.status)
    share_id, token_users = share.pk, [actor.user_id]
    _call_zoom_after_commit(pause_or_resume_via_rest, share_id, action, token_users, actor)
    return share


def pause_or_resume_via_rest(share_id, action, token_user_ids, actor):
    share = Share.objects.select_related("meeting", "app").get(pk=share_id)
    outcome, detail = call_rtms_app_status(
        share.app, share.meeting, action, [*token_user_ids, share.meeting.host_user_id],
        participant_user_id=share.user_id,
    )
    if outcome == "ok":
        do_stream_paused(share.app, share.rtms_stream_id, paused=(action == "pause"), actor=actor)
    else:
        # Zoom's in-client API pauses the invoking app's own stream: the app user's panel does it.
        live.push(
            user_group(share.app.client_id, share.meeting.uuid, share.user_id),
            {"type": "panel.sdk_call", "api": f"{action}RTMS", "share": share.pk},
        )
        _record(share, f"{action}_in_client", outcome=share.status, reason=f"REST {outcome}: {detail}")


@transaction.atomic
def do_stop(meeting, actor, share_id):
    """The app's user (or a host, under continuous sharing) stops the app."""
    meeting = _lock(meeting)
    share = _share_in(meeting, share_id)
    _require_owner_or_host(meeting, actor, share)
    return _end_sharing(meeting, actor, share, "stop", Status.STOPPED)


def _end_sharing(meeting, actor, share, kind, outcome):
    """Ends an active share by a person's decision: the outcome now, Zoom's stream stopped after commit."""
    if not share.is_active:
        raise Refused("not_sharing", "That app is not sharing meeting content.")
    _set_status(share, outcome, stop_intent=outcome)
    _audit(kind, meeting, actor, share=share, outcome=outcome)
    if share.rtms_stream_id:
        _stop_after_commit(share, actor)
    _changed(meeting)
    return share


# --- What Zoom and our workers report about streams -------------------------------------------


@transaction.atomic
def do_stream_paused(app, stream_id, paused, actor=ZOOM):
    share = Share.objects.select_for_update().select_related("meeting", "app").filter(
        app=app, rtms_stream_id=stream_id).first()
    if share is None or not share.is_active:
        return share
    status = Status.PAUSED if paused else Status.SHARING
    if share.status != status:
        meeting = _lock(share.meeting)
        _set_status(share, status)
        _audit("paused" if paused else "resumed", meeting, actor, share=share, outcome=status)
        _changed(meeting)
    return share


@transaction.atomic
def do_stream_state(client_id, meeting_uuid, stream_id, operator_id, state, stop_reason=None):
    """A stream of ours changed state (rtms.signals.stream_state_changed): map it to the share's outcome."""
    app = ZoomApp.objects.filter(client_id=client_id).first()
    if app is None:
        return None
    meeting = _lock(get_meeting(app, meeting_uuid))
    share = Share.objects.select_for_update().filter(meeting=meeting, rtms_stream_id=stream_id).first()
    if share is None and operator_id:
        # Zoom started it with no request of ours (e.g. its own auto-start): name the user as Zoom told us.
        name = Participant.objects.filter(meeting=meeting, user_id=operator_id).values_list("name", flat=True).first()
        share = _share_for(meeting, app, operator_id, name or "")
    if share is None:
        return None
    if state == "stopped":
        if share.rtms_stream_id in (stream_id, ""):
            _stream_stopped(meeting, share, stop_reason)
    elif share.rtms_stream_id != stream_id:
        _stream_began(meeting, share, stream_id, state)
    elif share.status not in FINAL:
        status = {"active": Status.SHARING, "paused": Status.PAUSED, "interrupted": Status.INTERRUPTED}.get(
            state, Status.STARTING)
        if status != share.status:
            _set_status(share, status)
            _audit(f"stream_{state}", meeting, ZOOM, share=share, outcome=status)
            _changed(meeting)
    return share


def _stream_began(meeting, share, stream_id, state):
    """A new stream for this app and user. With no request behind it, Zoom auto-started it."""
    if share.status in CHOSEN_STOPS and share.stop_intent and share.status != Status.STOPPED:
        # The host disabled it while Zoom was still starting it: the decision stands, the stream goes.
        share.rtms_stream_id = stream_id
        share.save()
        _audit("stream_started", meeting, ZOOM, share=share, outcome=share.status, reason="stopped: host decided")
        _stop_after_commit(share, Actor(meeting.host_user_id, source="stream"))
        return
    if share.status in (Status.STARTING, Status.PENDING):
        started_by = share.started_by or Share.StartedBy.HOST  # an admin's auto-start (do_auto_start) stays "auto"
    else:
        started_by = Share.StartedBy.AUTO  # no request behind it: Zoom auto-started it
    pending = ShareRequest.objects.filter(share=share, status=ShareRequest.Status.PENDING)
    pending.update(status=ShareRequest.Status.APPROVED, decided_at=timezone.now(), decided_by="zoom")
    status = Status.SHARING if state == "active" else Status.STARTING
    _set_status(share, status, rtms_stream_id=stream_id, started_by=started_by, stop_intent="", stop_reason=None,
                start_path=share.start_path or "")
    _audit("stream_started", meeting, ZOOM, share=share, outcome=status, detail={"started_by": started_by})
    _changed(meeting)


def _stream_stopped(meeting, share, stop_reason):
    reason_name = STOP_REASON_NAMES.get(stop_reason, str(stop_reason))
    if share.status in CHOSEN_STOPS and share.stop_intent:
        outcome = share.status  # the host's or the user's choice stands; Zoom's reason is recorded
    else:
        outcome = STOP_REASON_OUTCOMES.get(stop_reason, Status.STOPPED)
    if outcome == Status.APPS_DISABLED and meeting.share_with_apps:
        # Zoom's own "share with apps" went off: our toggle follows it.
        Meeting.objects.filter(pk=meeting.pk).update(share_with_apps=False)
        meeting.share_with_apps = False
    if share.status == outcome and share.stop_reason == stop_reason:
        return
    _set_status(share, outcome, stop_reason=stop_reason)
    _audit("stream_stopped", meeting, ZOOM, share=share, outcome=outcome, reason=reason_name)
    _changed(meeting)
