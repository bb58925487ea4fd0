"""Zoom's `rtms.request_status`: the outcome of a participant's in-client request to start RTMS (startRTMS), so the
app can tell the participant the real cause (a deny in Zoom's own modal is "denied by host", not "host cannot
approve"). Zoom announced the event on 2026-10-30 without publishing its payload; our reading of it, the flat shape
of the other RTMS events, is in docs/ZOOM.md §2.1:

    {"event": "rtms.request_status", "payload": {"meeting_uuid": "…", "operator_id": "<requester's Zoom user id>",
                                                 "request_status": "pending" | "approved" | "denied" | …}}

Parsed once here; a malformed one (ids missing or invalid, a request_status that is not a non-empty string) is
refused by the view with 400 naming the field, before anything is stored. A request_status we do not know is Zoom
doing otherwise than we assumed, not a bad delivery: it is stored and logged, and changes nothing (parse gives
None), so Zoom does not retry it and then drop it.
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
    """A RequestStatus, or None for a request_status we do not know."""
    if not isinstance(payload, dict):
        raise MalformedMeetingEvent("payload must be an object")
    fields = payload.get("object") if isinstance(payload.get("object"), dict) else payload
    try:
        meeting_uuid = validate("meeting_uuid", fields.get("meeting_uuid"), "payload.meeting_uuid")
        requester_id = validate("zoom_user_id", fields.get("operator_id"), "payload.operator_id")
    except InvalidIdentifier as exc:
        raise MalformedMeetingEvent(str(exc), "invalid_identifier") from None
    status = fields.get("request_status")
    if not isinstance(status, str) or not status:
        raise MalformedMeetingEvent("payload.request_status must be a non-empty string")
    if status not in STATUSES:
        log.warning("unknown rtms.request_status, stored and ignored",
                    extra={"meeting": meeting_uuid, "user": requester_id, "request_status": status[:64]})
        return None
    return RequestStatus(meeting_uuid, requester_id, status)
