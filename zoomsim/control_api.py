"""The control API under /_sim/ (README "Control API"): drive meetings, inspect streams and webhooks, faults."""

import json

from aiohttp import web

from zoomsim import scripts
from zoomsim.chaos import CASES, Chaos, ChaosError
from zoomsim.errors import StreamRefused
from zoomsim.faults import FaultError
from zoomsim.protocol import stop_reason_from


class ControlError(web.HTTPException):
    def __init__(self, status, error, message):
        self.status_code = status
        super().__init__(text=json.dumps({"error": error, "message": message}), content_type="application/json")


async def _body(request):
    if not request.can_read_body:
        return {}
    try:
        body = await request.json()
    except ValueError:
        raise ControlError(400, "bad_json", "the body must be JSON") from None
    if not isinstance(body, dict):
        raise ControlError(400, "bad_json", "the body must be a JSON object")
    return body


def _meeting(request):
    meeting = request.app["sim"].find_meeting(request.match_info["ref"])
    if meeting is None:
        raise ControlError(404, "not_found", f"no meeting {request.match_info['ref']}")
    return meeting


def _app(request):
    app = request.app["sim"].apps.get(request.match_info["client_id"])
    if app is None:
        raise ControlError(404, "not_found", "no such app")
    return app


def _participant(meeting, body):
    ref = body.get("key") or body.get("user_id") or body.get("name") or body.get("who")
    participant = meeting.participant(ref) if ref else None
    if participant is None:
        raise ControlError(404, "not_found", f"no participant {ref!r} in meeting {meeting.id}")
    return participant


def _stream(request):
    stream = request.app["sim"].streams.get(request.match_info["stream_id"])
    if stream is None:
        raise ControlError(404, "not_found", f"no stream {request.match_info['stream_id']}")
    return stream


def _refused(refused):
    return web.json_response({"error": refused.outcome, "code": refused.code, "message": refused.message},
                             status=409)


# -- apps and users ------------------------------------------------------------------------------------------------

async def create_app(request):
    sim = request.app["sim"]
    body = await _body(request)
    missing = [k for k in ("client_id", "client_secret", "webhook_secret_token", "event_url") if not body.get(k)]
    if missing:
        raise ControlError(400, "missing_fields", f"missing: {', '.join(missing)}")
    app = sim.register_app(body)
    problem = await sim.webhooks.validate_url(app)
    if problem:
        del sim.apps[app.client_id]
        raise ControlError(400, "url_validation_failed", problem)
    app.validated_at = sim.clock.now_ms()
    return web.json_response(app.public(), status=201)


async def list_apps(request):
    return web.json_response([a.public() for a in request.app["sim"].apps.values()])


async def validate_app(request):
    sim = request.app["sim"]
    app = _app(request)
    problem = await sim.webhooks.validate_url(app)
    if problem:
        raise ControlError(400, "url_validation_failed", problem)
    app.validated_at = sim.clock.now_ms()
    return web.json_response(app.public())


async def delete_app(request):
    request.app["sim"].delete_app(_app(request))
    return web.Response(status=204)


async def deauthorize_app(request):
    sim = request.app["sim"]
    app = sim.apps.get(request.match_info["client_id"])
    body = await _body(request)
    user = sim.users.get(body.get("user_id", ""))
    if app is None or user is None:
        raise ControlError(404, "not_found", "unknown client_id or user_id")
    sim.deauthorize(app, user)
    return web.json_response({"ok": True})


async def create_user(request):
    body = await _body(request)
    try:
        user = request.app["sim"].add_user(body)
    except ValueError as exc:
        raise ControlError(400, "bad_request", str(exc)) from None
    return web.json_response(user.public(), status=201)


async def list_users(request):
    return web.json_response([u.public() for u in request.app["sim"].users.values()])


# -- meetings ------------------------------------------------------------------------------------------------------

async def create_meeting(request):
    sim = request.app["sim"]
    body = await _body(request)
    if not isinstance(body.get("host"), dict):
        raise ControlError(400, "missing_fields", "host {name, ...} is required")
    try:
        meeting = sim.create_meeting(body)
    except ValueError as exc:
        raise ControlError(400, "bad_request", str(exc)) from None
    return web.json_response(meeting.public(), status=201)


async def list_meetings(request):
    return web.json_response([m.public() for m in request.app["sim"].meetings.values()])


async def get_meeting(request):
    return web.json_response(_meeting(request).public())


async def meeting_action(request):
    sim = request.app["sim"]
    meeting = _meeting(request)
    body = await _body(request)
    action = request.match_info["action"]
    result = None
    try:
        if action == "start":
            sim.start_meeting(meeting)
        elif action == "join":
            existing = meeting.participant(body.get("key") or body.get("user_id") or "") if (
                body.get("key") or body.get("user_id")) else None
            result = sim.join(meeting, existing or body).public()
        elif action == "leave":
            sim.leave(meeting, _participant(meeting, body), ejected=bool(body.get("ejected")))
        elif action == "role":
            sim.set_role(meeting, _participant(meeting, body), body.get("role"))
        elif action == "settings":
            sim.update_settings(meeting, body)
        elif action == "end":
            sim.end_meeting(meeting)
        elif action == "speak":
            if not body.get("text"):
                raise ControlError(400, "missing_fields", "text is required")
            result = await sim.speak(meeting, _participant(meeting, body), body["text"], body.get("language", 9))
        elif action == "chat":
            sim.chat(meeting, _participant(meeting, body), body.get("text", ""))
        elif action == "video":
            sim.set_video(meeting, _participant(meeting, body), bool(body.get("on", True)))
        elif action == "share":
            sim.set_sharing(meeting, _participant(meeting, body), bool(body.get("on", True)))
        else:
            raise ControlError(404, "not_found", f"unknown action {action}")
    except StreamRefused as refused:
        return _refused(refused)
    except ValueError as exc:
        raise ControlError(400, "bad_request", str(exc)) from None
    return web.json_response(result if result is not None else meeting.public())


async def start_client_stream(request):
    """A stream started from the Zoom client side (host start, approved request, or auto-start)."""
    sim = request.app["sim"]
    meeting = _meeting(request)
    body = await _body(request)
    app = sim.apps.get(body.get("client_id", ""))
    if app is None:
        raise ControlError(404, "not_found", "unknown client_id")
    participant = _participant(meeting, body) if (body.get("key") or body.get("user_id")) else \
        meeting.host_participant()
    try:
        stream = sim.start_stream(meeting, app, participant, started_by=body.get("started_by", "host"))
    except StreamRefused as refused:
        return _refused(refused)
    return web.json_response(stream.public(), status=201)


async def request_stream(request):
    """A participant's in-client startRTMS: starts at once, or queues a request for the host (window modal)."""
    sim = request.app["sim"]
    meeting = _meeting(request)
    body = await _body(request)
    app = sim.apps.get(body.get("client_id", ""))
    if app is None:
        raise ControlError(404, "not_found", "unknown client_id")
    try:
        outcome, result = sim.request_stream(meeting, app, _participant(meeting, body))
    except StreamRefused as refused:
        return _refused(refused)
    if outcome == "started":
        return web.json_response({"outcome": "started", "stream": result.public()}, status=201)
    return web.json_response({"outcome": "pending", "request": result}, status=202)


async def decide_request(request):
    sim = request.app["sim"]
    meeting = _meeting(request)
    request_id = request.match_info["request_id"]
    try:
        if request.match_info["decision"] == "approve":
            stream = sim.approve_request(meeting, request_id)
            return web.json_response({"outcome": "started", "stream": stream.public()}, status=201)
        if request.match_info["decision"] == "deny":
            return web.json_response({"outcome": "denied", "request": sim.deny_request(meeting, request_id)})
    except KeyError:
        raise ControlError(404, "not_found", f"no pending request {request_id}") from None
    except StreamRefused as refused:
        return _refused(refused)
    raise ControlError(404, "not_found", "decision must be approve or deny")


async def disable_app(request):
    sim = request.app["sim"]
    meeting = _meeting(request)
    sim.disable_app(meeting, request.match_info["client_id"])
    return web.json_response(meeting.public())


async def run_script(request):
    body = await _body(request)
    try:
        meeting = scripts.run_script(request.app["sim"], body)
    except (KeyError, ValueError) as exc:
        raise ControlError(400, "bad_script", str(exc)) from None
    return web.json_response(meeting.public(), status=201)


# -- streams, webhooks, policy, faults -----------------------------------------------------------------------------

async def list_streams(request):
    sim = request.app["sim"]
    meeting_ref = request.query.get("meeting")
    meeting = sim.find_meeting(meeting_ref) if meeting_ref else None
    streams = [s for s in sim.streams.values() if meeting_ref is None or s.meeting is meeting]
    return web.json_response([s.public() for s in streams])


async def get_stream(request):
    return web.json_response(_stream(request).public())


async def stream_action(request):
    sim = request.app["sim"]
    stream = _stream(request)
    body = await _body(request)
    action = request.match_info["action"]
    try:
        if action == "stop":
            try:
                reason = stop_reason_from(body.get("reason", 7))
            except (KeyError, ValueError):
                raise ControlError(400, "bad_reason", f"unknown stop reason {body.get('reason')!r}") from None
            sim.stop_stream(stream, reason)
        elif action == "pause":
            sim.pause_stream(stream)
        elif action == "resume":
            sim.resume_stream(stream)
        else:
            raise ControlError(404, "not_found", f"unknown action {action}")
    except StreamRefused as refused:
        return _refused(refused)
    return web.json_response(stream.public())


async def stream_chaos(request):
    """One of Zoom's four reconnection cases on this stream (zoomsim/chaos.py)."""
    stream = _stream(request)
    body = await _body(request)
    try:
        played = await request.app["chaos"].play(stream, body.get("case"), body)
    except ChaosError as exc:
        raise ControlError(400, "bad_chaos", str(exc)) from None
    return web.json_response(played, status=201)


async def start_chaos_mode(request):
    """Play a random case on a random ready stream every `interval_s` seconds until DELETE /_sim/chaos."""
    body = await _body(request)
    try:
        mode = request.app["chaos"].start_mode(body.get("interval_s"), body.get("cases", list(CASES)))
    except ChaosError as exc:
        raise ControlError(400, "bad_chaos", str(exc)) from None
    return web.json_response(mode, status=201)


async def get_chaos(request):
    return web.json_response(request.app["chaos"].public())


async def stop_chaos_mode(request):
    request.app["chaos"].stop_mode()
    return web.json_response(request.app["chaos"].public())


async def list_webhooks(request):
    sim = request.app["sim"]
    event = request.query.get("event")
    client_id = request.query.get("client_id")
    return web.json_response([d.public() for d in sim.webhooks.deliveries
                              if (event is None or d.event == event) and (client_id is None or
                                                                          d.app.client_id == client_id)])


async def put_policy(request):
    sim = request.app["sim"]
    body = await _body(request)
    try:
        row = sim.set_policy(request.match_info["level"], request.match_info["ident"], body)
    except ValueError as exc:
        raise ControlError(400, "bad_request", str(exc)) from None
    return web.json_response(row)


async def list_policies(request):
    sim = request.app["sim"]
    return web.json_response([{"level": level, "id": ident, **row} for (level, ident), row in sim.policies.items()])


async def add_fault(request):
    sim = request.app["sim"]
    try:
        fault = sim.faults.add(await _body(request))
    except FaultError as exc:
        raise ControlError(400, "bad_fault", str(exc)) from None
    return web.json_response(fault, status=201)


async def list_faults(request):
    return web.json_response(request.app["sim"].faults.public())


async def clear_faults(request):
    request.app["sim"].faults.clear()
    return web.json_response([])


async def stats(request):
    return web.json_response(request.app["sim"].ticker.stats())


async def reset(request):
    request.app["chaos"].stop_mode()
    request.app["sim"].reset()
    return web.json_response({"ok": True})


async def _stop_chaos(app):
    await app["chaos"].stop()


def add_routes(app):
    app["chaos"] = Chaos(app["sim"])
    app.on_cleanup.append(_stop_chaos)
    r = app.router
    r.add_post("/_sim/apps", create_app)
    r.add_get("/_sim/apps", list_apps)
    r.add_delete("/_sim/apps/{client_id}", delete_app)
    r.add_post("/_sim/apps/{client_id}/validate", validate_app)
    r.add_post("/_sim/apps/{client_id}/deauthorize", deauthorize_app)
    r.add_post("/_sim/users", create_user)
    r.add_get("/_sim/users", list_users)
    r.add_post("/_sim/meetings", create_meeting)
    r.add_get("/_sim/meetings", list_meetings)
    r.add_get("/_sim/meetings/{ref}", get_meeting)
    r.add_post("/_sim/meetings/{ref}/streams", start_client_stream)
    r.add_post("/_sim/meetings/{ref}/apps/{client_id}/disable", disable_app)
    r.add_post("/_sim/meetings/{ref}/requests", request_stream)
    r.add_post("/_sim/meetings/{ref}/requests/{request_id}/{decision}", decide_request)
    r.add_post("/_sim/meetings/{ref}/{action}", meeting_action)
    r.add_post("/_sim/scripts", run_script)
    r.add_get("/_sim/streams", list_streams)
    r.add_get("/_sim/streams/{stream_id}", get_stream)
    r.add_post("/_sim/streams/{stream_id}/chaos", stream_chaos)
    r.add_post("/_sim/streams/{stream_id}/{action}", stream_action)
    r.add_post("/_sim/chaos", start_chaos_mode)
    r.add_get("/_sim/chaos", get_chaos)
    r.add_delete("/_sim/chaos", stop_chaos_mode)
    r.add_get("/_sim/webhooks", list_webhooks)
    r.add_get("/_sim/settings", list_policies)
    r.add_put("/_sim/settings/{level}/{ident}", put_policy)
    r.add_post("/_sim/faults", add_fault)
    r.add_get("/_sim/faults", list_faults)
    r.add_delete("/_sim/faults", clear_faults)
    r.add_get("/_sim/stats", stats)
    r.add_post("/_sim/reset", reset)
