"""The read model: the full state every panel of one app in one meeting renders, and what one viewer may see.

Pushed whole with a version (zoomapp.consent.push), never as a delta; a panel that reconnects asks for
snapshot_for(). docs/CONSENT.md says what each part means; docs/SECURITY.md why other apps' requests are shown
read-only and only to a host of both.
"""

import json
import time
from collections import OrderedDict

from django.db.models import Q

from rtms.compiled_read import CompiledModelRead, CompiledRead
from rtms.models import TranscriptSegment
from zoomapp import texts
from zoomapp.consent.meetings import get_meeting
from zoomapp.consent.models import Meeting, Participant, Share, ShareRequest
from zoomapp.consent.permissions import HOST_ROLES, Refused
from zoomapp.marketplace import oauth
from zoomapp.marketplace.models import ZoomApp

Status = Share.Status
# The disclosure shows while any app is sharing: a paused stream is still held, and one interrupted (Zoom
# reconnecting it) is still listed among "Apps actively sharing". Only one still starting is not yet sharing.
DISCLOSED = (Status.SHARING, Status.PAUSED, Status.INTERRUPTED)

# What every push reads (docs/ARCHITECTURE.md "Pushing state"), compiled once (rtms/compiled_read.py).
_HOSTS_AND_DEPARTED = CompiledRead(
    lambda meeting_pk, host_user_id: Participant.objects.filter(meeting_id=meeting_pk)
    .filter(Q(role__in=HOST_ROLES) | Q(present=False) | Q(user_id=host_user_id))
    .values_list("user_id", "role", "present"),
    -1, "host user id stand-in")
_PENDING_REQUESTS = CompiledModelRead(
    lambda meeting_pk: ShareRequest.objects.filter(share__meeting_id=meeting_pk, status=ShareRequest.Status.PENDING)
    .select_related("share", "share__app").defer(*ZoomApp.secrets_of("share__app")), -1)
_SHARES = CompiledModelRead(
    lambda meeting_pk: Share.objects.filter(meeting_id=meeting_pk).select_related("app")
    .defer(*ZoomApp.secrets_of("app")), -1)


def hosts_and_departed(meeting):
    """The meeting's hosts, and who left or was removed, from one read of only the participants that matter for
    either (a large meeting's attendees who are present are not read)."""
    rows = _HOSTS_AND_DEPARTED.all(meeting.pk, meeting.host_user_id)
    hosts = sorted(user_id for user_id, role, _ in rows if role in HOST_ROLES)
    if meeting.host_user_id and not any(user_id == meeting.host_user_id for user_id, _, _ in rows):
        # The original host keeps host rights unless Zoom told us their role changed.
        hosts.append(meeting.host_user_id)
    return hosts, sorted(user_id for user_id, _, present in rows if not present)


def pending_requests(meeting):
    return _PENDING_REQUESTS.all(meeting.pk)


def _other_apps(meeting, others=None):
    """The same Zoom meeting as the deployment's other apps see it: whether any of them is sharing (the
    disclosure is for the meeting, not for one app) and their pending requests, each with the hosts that app's
    own verified inputs name. viewer_state shows requests only to a viewer who is a host in both apps' rows.
    `others`: the other apps' rows of the meeting when the caller read them already (ended ones are skipped)."""
    if others is None:
        others = Meeting.objects.filter(uuid=meeting.uuid).exclude(pk=meeting.pk).select_related("app")
    entries = []
    for other in (other for other in others if other.ended_at is None):
        requests = pending_requests(other)
        sharing = other.shares.filter(status__in=DISCLOSED).exists()
        if requests or sharing:
            entries.append({
                "app": other.app.client_id,
                "app_name": other.app.name,
                "sharing": sharing,
                "hosts": hosts_and_departed(other)[0],
                "requests": [{"user_id": r.share.user_id, "user_name": r.share.user_name} for r in requests],
            })
    return entries


def meeting_state(meeting, others=None):
    """The full state every panel of this app in the meeting renders (filtered per viewer by viewer_state);
    `others` as for _other_apps."""
    shares = _SHARES.all(meeting.pk)
    requests = pending_requests(meeting)
    other_apps = _other_apps(meeting, others)
    hosts, departed = hosts_and_departed(meeting)
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
        "departed": departed,
        "other_apps": other_apps,
        "disclosure": any(s.status in DISCLOSED for s in shares)
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


class StateFrames:
    """The pushed state's text for each panel, encoded once per viewer kind rather than once per panel.

    Every panel of a meeting receives the same state; what differs is only which requests, other apps' requests and
    notices it may see (viewer_state), and its own "viewer" part. Panels that see the same parts share one
    encoding of the state; only the small "viewer" part is encoded per panel. The text equals
    json.dumps({"type": "state", "state": viewer_state(state, viewer_id)}) in compact form.
    """

    def __init__(self, remembered=8):
        self._remembered = remembered
        self._recent = OrderedDict()  # (meeting uuid, version) -> (state, {what the viewer sees: encoded prefix})

    def frame(self, state, viewer_id):
        viewer_is_host = viewer_id in state["hosts"]
        if viewer_is_host:
            sees = (True, tuple(i for i, entry in enumerate(state["other_apps"])
                                if entry["requests"] and viewer_id in entry["hosts"]))
        else:
            sees = (False, tuple(i for i, r in enumerate(state["requests"]) if r["user_id"] == viewer_id))
        encodings = self._encodings(state)
        prefix = encodings.get(sees)
        if prefix is None:
            filtered = viewer_state(state, viewer_id)
            del filtered["viewer"]
            # The state's closing brace is dropped so that each panel's "viewer" part closes it.
            prefix = encodings[sees] = '{"type":"state","state":' + _compact(filtered)[:-1] + ',"viewer":'
        return prefix + '{"user_id":' + _compact(viewer_id) + (',"is_host":true}}}' if viewer_is_host
                                                                else ',"is_host":false}}}')

    def _encodings(self, state):
        key = (state["meeting"]["uuid"], state["version"])
        remembered = self._recent.get(key)
        # Two apps' rows of one Zoom meeting may share a version: the same key holds only an equal state.
        if remembered is None or remembered[0] != state:
            remembered = self._recent[key] = (state, {})
            while len(self._recent) > self._remembered:
                self._recent.popitem(last=False)
        return remembered[1]


# One encoder: json.dumps() with separators builds a new one on every call, once per panel per push.
_compact = json.JSONEncoder(separators=(",", ":")).encode


def recent_transcript(meeting_pk, client_id, viewer_id, limit=30):
    """The last lines each of the viewer's apps received, for a panel that (re)connects."""
    lines = {}
    for share in Share.objects.filter(meeting_id=meeting_pk, user_id=viewer_id).exclude(rtms_stream_id=""):
        segments = TranscriptSegment.objects.filter(
            stream__client_id=client_id, stream__rtms_stream_id=share.rtms_stream_id
        ).order_by("-id")[:limit]
        lines[share.pk] = [
            {"user_name": s.user_name, "text": s.text, "start_time": s.start_time} for s in reversed(segments)
        ]
    return lines


# A meeting's start opens hundreds of panels on one version: each reads the state once, the others reuse it for a
# second (a version names one state: every change bumps it, and pushes the newer one).
_REUSE_SECONDS = 1.0
_states_read = {}  # meeting pk -> (version, monotonic time read, state)


def _state_at_version(meeting_pk, version):
    """The meeting's full state, read again only when `version` is not the one read in the last second."""
    now = time.monotonic()
    read = _states_read.get(meeting_pk)
    if read is not None and read[0] == version and now - read[1] < _REUSE_SECONDS:
        return read[2]
    meeting = Meeting.objects.select_related("app").get(pk=meeting_pk)
    state = meeting_state(meeting)
    if len(_states_read) > 1000:  # forget meetings not opened in the last second
        for pk, (_, at, _) in list(_states_read.items()):
            if now - at >= _REUSE_SECONDS:
                _states_read.pop(pk, None)
    _states_read[meeting_pk] = (meeting.version, now, state)
    return state


# The meeting's id, version and app, by the panel token's app and meeting: once per panel's opening.
_MEETING_OF_PANEL = CompiledRead(
    lambda client_id, uuid: Meeting.objects.filter(app__client_id=client_id, uuid=uuid).values_list(
        "pk", "version", "app_id"),
    "client id stand-in", "meeting uuid stand-in")


def snapshot_for(identity):
    """Everything a panel needs when it (re)connects: its filtered state, transcript and authorization."""
    found = _MEETING_OF_PANEL.one(identity.client_id, identity.meeting_uuid)
    if found is None:  # the first panel of a meeting no webhook has told us about yet, or its app was removed
        app = ZoomApp.by_client_id(identity.client_id)
        if app is None:
            raise Refused("unknown_app", texts.REFUSED_UNKNOWN_APP)
        meeting = get_meeting(app, identity.meeting_uuid)
        found = (meeting.pk, meeting.version, meeting.app_id)
    meeting_pk, version, app_pk = found
    full = _state_at_version(meeting_pk, version)
    state = viewer_state(full, identity.viewer_id)
    # Most panels of a large meeting have no stream of their own: no transcript to read.
    viewer_streams = any(s["user_id"] == identity.viewer_id and s["has_stream"] for s in full["shares"])
    state["transcript"] = (
        {str(k): v for k, v in recent_transcript(meeting_pk, identity.client_id, identity.viewer_id).items()}
        if viewer_streams else {}
    )
    state["viewer"]["authorization"] = (
        oauth.authorization_status(app_pk, identity.user_id) if identity.user_id else "unauthorized"
    )
    return state
