"""Zoom REST API under /v2 (docs/ZOOM.md §7, §8.1): users/me and the RTMS app status endpoint."""

import json
import logging

from aiohttp import web

from zoomsim.errors import StreamRefused
from zoomsim.oauth import ApiError
from zoomsim.protocol import StopReason

log = logging.getLogger("zoomsim.rest")

ROLE_NAMES = {"owner": ("Owner", "0"), "admin": ("Admin", "1"), "member": ("Member", "2")}


@web.middleware
async def rest_faults(request, handler):
    """Injected REST errors (fault `rest_error`) for /v2 calls."""
    if request.path.startswith("/v2/"):
        fault = request.app["sim"].faults.take_rest_error(request.method, request.path)
        if fault is not None:
            headers = {"Retry-After": str(fault["retry_after"])} if "retry_after" in fault else None
            return web.json_response({"code": fault.get("code", 3000), "message": fault.get(
                "message", "Injected failure")}, status=fault.get("status", 500), headers=headers)
    return await handler(request)


async def users_me(request):
    sim = request.app["sim"]
    _, user = sim.tokens.check_bearer(request.headers.get("Authorization", ""))
    if user is None:
        raise ApiError(404, 1001, "User does not exist.")
    first, _, last = user.name.partition(" ")
    role_name, role_id = ROLE_NAMES.get(user.role, ("Member", "2"))
    return web.json_response({
        "id": user.user_id, "first_name": first, "last_name": last, "display_name": user.name,
        "email": user.email, "type": 2, "role_name": role_name, "role_id": role_id, "account_id": user.account_id,
        "group_ids": [user.group_id] if user.group_id else [], "status": "active", "timezone": "UTC",
        "language": "en-US", "verified": 1,
    })


async def rtms_app_status(request):
    sim = request.app["sim"]
    token_app, caller = sim.tokens.check_bearer(request.headers.get("Authorization", ""))
    meeting = sim.find_meeting(request.match_info["meeting_id"])
    if meeting is None or not meeting.live:
        raise ApiError(404, 3001, f"Meeting does not exist: {request.match_info['meeting_id']}.")
    try:
        body = await request.json()
    except (ValueError, json.JSONDecodeError):
        raise ApiError(400, 300, "Request body must be JSON.") from None
    action = body.get("action") if isinstance(body, dict) else None
    settings = body.get("settings") if isinstance(body, dict) else None
    if action not in ("start", "stop", "pause", "resume"):
        raise ApiError(400, 300, "Invalid field: action must be start, stop, pause or resume.")
    if not isinstance(settings, dict) or not settings.get("client_id"):
        raise ApiError(400, 300, "Invalid field: settings.client_id is required.")
    if token_app is None or settings["client_id"] != token_app.client_id:
        raise ApiError(400, 300, "settings.client_id does not match the app of this access token.")
    if caller is None:
        raise ApiError(403, 2308, "Not allowed to start RTMS app")
    caller_participant = meeting.participant(caller.user_id)
    is_host = caller.user_id == meeting.host.user_id
    is_present_cohost = caller_participant is not None and caller_participant.joined and (
        caller_participant.role in ("host", "co-host"))
    if not (is_host or is_present_cohost):
        raise ApiError(403, 2308, "Not allowed to start RTMS app")
    target = None
    if settings.get("participant_user_id"):
        target = meeting.participant(settings["participant_user_id"])
        if target is None or not target.joined or target.guest:
            raise ApiError(403, 2308, "Not allowed to start RTMS app")
    operator_id = target.user_id if target else caller.user_id
    try:
        if action == "start":
            sim.start_stream(meeting, token_app, target or caller_participant,
                             started_by="app", operator_user=caller)
        else:
            streams = [s for s in sim.streams_for(meeting, token_app.client_id)
                       if not settings.get("participant_user_id") or s.operator_id == operator_id]
            if not streams:
                raise StreamRefused(2310, "Failed to perform RTMS app operation", "no_stream")
            for stream in streams:
                if action == "stop":
                    reason = StopReason.USER_TRIGGERED if stream.operator_id == caller.user_id else \
                        StopReason.HOST_TRIGGERED
                    sim.stop_stream(stream, reason)
                elif action == "pause":
                    sim.pause_stream(stream)
                else:
                    sim.resume_stream(stream)
    except StreamRefused as refused:
        raise ApiError(refused.http_status, refused.code, refused.message) from None
    log.info("event=rest_rtms_status action=%s meeting_uuid=%s client_id=%s", action, meeting.uuid,
             token_app.client_id)
    return web.Response(status=204)


def add_routes(app):
    app.middlewares.append(rest_faults)
    app.router.add_get("/v2/users/me", users_me)
    app.router.add_patch("/v2/live_meetings/{meeting_id}/rtms_app/status", rtms_app_status)
