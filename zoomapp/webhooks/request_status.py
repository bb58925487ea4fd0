"""Zoom's `rtms.request_status`: the outcome of a participant's in-client request to start RTMS (startRTMS), so the
app can tell the participant the real cause (a deny in Zoom's own modal is "denied by host", not "host cannot
approve"). Zoom announced the event on 2026-10-30 without publishing its payload; our reading of it, the flat shape
of the other RTMS events, is in docs/ZOOM.md §2.1:

    {"event": "rtms.request_status", "payload": {"meeting_uuid": "…", "operator_id": "<requester's Zoom user id>",
                                                 "request_status": "pending" | "approved" | "denied" | …}}

Parsed once here. An id that is there but not a valid id is refused by the view with 400 naming the field, before
anything is stored. Anything else we do not read as assumed (an id missing, a request_status that is not one of
the strings we know: another value, an object, nothing) is Zoom sending otherwise than we assumed, not a bad
delivery: it is stored and logged for the operator to see its real shape, and changes nothing (parse gives None),
so Zoom does not retry it three times and then drop it.
"""

import logging
from dataclasses import dataclass

from rtms.identifiers import InvalidIdentifier, validate
from zoomapp.webhooks.meeting_events import MalformedMeetingEvent

log = logging.getLogger("zoomapp.webhooks")

EVENT = "rtms.request_status"
# What Zoom can answer a request with: still waiting for the host, decided by the host, or refused for a cause.
STATUSES = frozenset({"pending", "approved", "denied", "host_not_joined", "apps_disabled", "host_cannot_approve",
                      "concurrency_limited", "not_eligible", "meeting_not_live"})


@dataclass(frozen=True)
class RequestStatus:
    meeting_uuid: str
    requester_id: str  # the requester's Zoom user id (operator_id)
    status: str


def parse(payload):
    """A RequestStatus, or None for an answer not in the shape we assumed."""
    if not isinstance(payload, dict):
        raise MalformedMeetingEvent("payload must be an object")
    fields = payload.get("object") if isinstance(payload.get("object"), dict) else payload
    try:
        meeting_uuid, requester_id = (
            None if fields.get(key) is None else validate(kind, fields[key], f"payload.{key}")
            for key, kind in (("meeting_uuid", "meeting_uuid"), ("operator_id", "zoom_user_id")))
    except InvalidIdentifier as exc:
        raise MalformedMeetingEvent(str(exc), "invalid_identifier") from None
    status = fields.get("request_status")
    if meeting_uuid is None or requester_id is None or not isinstance(status, str) or status not in STATUSES:
        log.warning("rtms.request_status not as we read it, stored and ignored", extra={
            "meeting": meeting_uuid, "user": requester_id,
            "request_status": status[:64] if isinstance(status, str) else type(status).__name__,
            "fields": ",".join(sorted(map(str, fields))[:20])[:300]})
        return None
    return RequestStatus(meeting_uuid, requester_id, status)
