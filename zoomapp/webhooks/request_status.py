"""Zoom's `rtms.request_status`: the outcome of a participant's in-client request to start RTMS (startRTMS), so the
app can tell the participant the real cause (a deny in Zoom's own modal is "denied by host", not "host cannot
approve"). Zoom announced the event on 2026-10-30 without publishing its payload; our reading of it, the flat shape
of the other RTMS events, is in docs/ZOOM.md §2.1:

    {"event": "rtms.request_status", "payload": {"meeting_uuid": "…", "operator_id": "<requester's Zoom user id>",
                                                 "request_status": "pending" | "approved" | "denied" | …}}

Parsed once here; a malformed one is refused by the view with 400 naming the field, before anything is stored.
"""

from dataclasses import dataclass

from rtms.identifiers import InvalidIdentifier, validate
from zoomapp.webhooks.meeting_events import MalformedMeetingEvent

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
    if not isinstance(payload, dict):
        raise MalformedMeetingEvent("payload must be an object")
    fields = payload.get("object") if isinstance(payload.get("object"), dict) else payload
    try:
        meeting_uuid = validate("meeting_uuid", fields.get("meeting_uuid"), "payload.meeting_uuid")
        requester_id = validate("zoom_user_id", fields.get("operator_id"), "payload.operator_id")
    except InvalidIdentifier as exc:
        raise MalformedMeetingEvent(str(exc), "invalid_identifier") from None
    status = fields.get("request_status")
    if not isinstance(status, str) or status not in STATUSES:  # a list or an object: TypeError in a set lookup
        raise MalformedMeetingEvent(f"payload.request_status must be one of {', '.join(sorted(STATUSES))}")
    return RequestStatus(meeting_uuid, requester_id, status)
