"""Panel actions by name, shared by the WebSocket consumer and the JSON API.

Bodies come from browsers, so every field is checked here before a do_* function sees it; roles are checked
inside the do_* functions, against what Zoom told the server, never against what the panel claims.
"""

from zoomapp.consent import services
from zoomapp.consent.models import Meeting, Share
from zoomapp.consent.services import Actor, Refused
from zoomapp.marketplace.models import ZoomApp

MAX_IDS = 100


def _int(body, name):
    value = body.get(name)
    if type(value) is not int or not 0 < value < 2**53:
        raise Refused("bad_request", f"'{name}' must be a positive integer.")
    return value


def _ids(body, name):
    value = body.get(name)
    if not isinstance(value, list) or not 0 < len(value) <= MAX_IDS or any(
        type(v) is not int or not 0 < v < 2**53 for v in value
    ):
        raise Refused("bad_request", f"'{name}' must be a list of request ids.")
    return value


def _bool(body, name):
    value = body.get(name)
    if value is not None and type(value) is not bool:
        raise Refused("bad_request", f"'{name}' must be true or false.")
    return value


def _request(app, meeting, actor, body):
    services.do_request(app, meeting, actor)


def _approve(app, meeting, actor, body):
    services.do_approve(meeting, actor, _ids(body, "requests"))


def _approve_all(app, meeting, actor, body):
    services.do_approve(meeting, actor, None)


def _deny(app, meeting, actor, body):
    services.do_deny(meeting, actor, _ids(body, "requests"))


def _deny_all(app, meeting, actor, body):
    services.do_deny(meeting, actor, None)


def _toggles(app, meeting, actor, body):
    share, approval = _bool(body, "share_with_apps"), _bool(body, "require_host_approval")
    if share is None and approval is None:
        raise Refused("bad_request", "Nothing to change.")
    services.do_set_toggles(meeting, actor, share_with_apps=share, require_host_approval=approval)


def _disable(app, meeting, actor, body):
    services.do_disable(meeting, actor, _int(body, "share"))


def _pause(app, meeting, actor, body):
    services.do_pause(meeting, actor, _int(body, "share"))


def _resume(app, meeting, actor, body):
    services.do_resume(meeting, actor, _int(body, "share"))


def _stop(app, meeting, actor, body):
    services.do_stop(meeting, actor, _int(body, "share"))


def _in_client_result(app, meeting, actor, body):
    result = body.get("result")
    if result not in ("started", "failed"):
        raise Refused("bad_request", "'result' must be started or failed.")
    detail = body.get("detail") if isinstance(body.get("detail"), str) else ""
    share = Share.objects.filter(pk=_int(body, "share"), meeting=meeting).first()
    if share is None:
        raise Refused("unknown_share", "That app is not in this meeting.")
    services.do_in_client_result(share, actor, result, detail[:200])


ACTIONS = {
    "request": _request,
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
        raise Refused("bad_request", "The action must be a JSON object.")
    name = body.get("action")
    handler = ACTIONS.get(name) if isinstance(name, str) else None
    if handler is None:
        raise Refused("unknown_action", "Unknown action.")
    if identity.is_guest:
        raise Refused("guest", "Sign in to Zoom to use this app.")
    app = ZoomApp.objects.filter(client_id=identity.client_id).first()
    meeting = Meeting.objects.filter(app=app, uuid=identity.meeting_uuid).first() if app else None
    if app is None or meeting is None:
        raise Refused("unknown_meeting", "This panel's meeting is not known.")
    participant_name = meeting.participants.filter(user_id=identity.user_id).values_list("name", flat=True).first()
    actor = Actor(identity.user_id, participant_name or "", source, address)
    handler(app, meeting, actor, body)
    return name
