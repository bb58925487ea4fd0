"""The panel's dispatcher: panel actions by name, shared by the WebSocket consumer and the JSON API.

Bodies come from browsers, so every field is checked here before a do_* action sees it; roles are checked
inside the do_* actions, against what Zoom told the server, never against what the panel claims.
"""

from django.db.models import OuterRef, Subquery

from rtms.compiled_read import CompiledModelRead
from zoomapp import texts
from zoomapp.consent.actions import host_controls, sharing_requests, starting
from zoomapp.consent.models import Meeting, Participant, Share
from zoomapp.consent.permissions import Actor, Refused

MAX_IDS = 100

# The panel's meeting with its app, and the actor's name as Zoom told it: one round trip on every action's path.
_MEETING_AND_ACTOR_NAME = CompiledModelRead(
    lambda client_id, uuid, user_id: Meeting.objects.select_related("app").filter(app__client_id=client_id, uuid=uuid)
    .annotate(actor_name=Subquery(
        Participant.objects.filter(meeting=OuterRef("pk"), user_id=user_id).values("name")[:1])),
    "client id stand-in", "meeting uuid stand-in", "user id stand-in")


def _int(body, name):
    value = body.get(name)
    if type(value) is not int or not 0 < value < 2**53:
        raise Refused("bad_request", texts.REFUSED_NOT_POSITIVE_INTEGER.format(name=name))
    return value


def _ids(body, name):
    value = body.get(name)
    if not isinstance(value, list) or not 0 < len(value) <= MAX_IDS or any(
        type(v) is not int or not 0 < v < 2**53 for v in value
    ):
        raise Refused("bad_request", texts.REFUSED_NOT_REQUEST_IDS.format(name=name))
    return value


def _bool(body, name):
    value = body.get(name)
    if value is not None and type(value) is not bool:
        raise Refused("bad_request", texts.REFUSED_NOT_TRUE_OR_FALSE.format(name=name))
    return value


def _request(meeting, actor, body):
    sharing_requests.do_request(meeting, actor=actor)


def _withdraw(meeting, actor, body):
    sharing_requests.do_withdraw(meeting, _int(body, "share"), actor=actor)


def _approve(meeting, actor, body):
    sharing_requests.do_approve(meeting, _ids(body, "requests"), actor=actor)


def _approve_all(meeting, actor, body):
    sharing_requests.do_approve(meeting, None, actor=actor)


def _deny(meeting, actor, body):
    sharing_requests.do_deny(meeting, _ids(body, "requests"), actor=actor)


def _deny_all(meeting, actor, body):
    sharing_requests.do_deny(meeting, None, actor=actor)


def _toggles(meeting, actor, body):
    share, approval = _bool(body, "share_with_apps"), _bool(body, "require_host_approval")
    if share is None and approval is None:
        raise Refused("bad_request", texts.REFUSED_NOTHING_TO_CHANGE)
    host_controls.do_set_toggles(meeting, share_with_apps=share, require_host_approval=approval, actor=actor)


def _disable(meeting, actor, body):
    host_controls.do_disable(meeting, _int(body, "share"), actor=actor)


def _pause(meeting, actor, body):
    host_controls.do_pause(meeting, _int(body, "share"), actor=actor)


def _resume(meeting, actor, body):
    host_controls.do_resume(meeting, _int(body, "share"), actor=actor)


def _stop(meeting, actor, body):
    host_controls.do_stop(meeting, _int(body, "share"), actor=actor)


def _in_client_result(meeting, actor, body):
    result = body.get("result")
    if result not in ("started", "failed"):
        raise Refused("bad_request", texts.REFUSED_NOT_IN_CLIENT_RESULT)
    detail = body.get("detail") if isinstance(body.get("detail"), str) else ""
    share = Share.objects.filter(pk=_int(body, "share"), meeting=meeting).first()
    if share is None:
        raise Refused("unknown_share", texts.REFUSED_UNKNOWN_SHARE)
    starting.do_in_client_result(share, result, detail[:200], actor=actor)


ACTIONS = {
    "request": _request,
    "withdraw": _withdraw,
    "approve": _approve,
    "approve_all": _approve_all,
    "deny": _deny,
    "deny_all": _deny_all,
    "set_toggles": _toggles,
    "disable": _disable,
    "pause": _pause,
    "resume": _resume,
    "stop": _stop,
    "in_client_result": _in_client_result,
}


def perform(identity, body, source, address=""):
    """Run one panel action for the panel `identity` (a tokens.PanelIdentity). Raises Refused."""
    if not isinstance(body, dict):
        raise Refused("bad_request", texts.REFUSED_ACTION_NOT_OBJECT)
    name = body.get("action")
    handler = ACTIONS.get(name) if isinstance(name, str) else None
    if handler is None:
        raise Refused("unknown_action", texts.REFUSED_UNKNOWN_ACTION)
    if identity.is_guest:
        raise Refused("guest", texts.REFUSED_GUEST_ACTION)
    meeting = _MEETING_AND_ACTOR_NAME.one(identity.client_id, identity.meeting_uuid, identity.user_id)
    if meeting is None:
        raise Refused("unknown_meeting", texts.REFUSED_UNKNOWN_MEETING)
    actor = Actor(identity.user_id, meeting.actor_name or "", source, address)
    handler(meeting, actor, body)
    return name
