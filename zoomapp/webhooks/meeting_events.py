"""Zoom's meeting events, parsed once into typed events (the view parses; receivers get `meeting_event=`).

Zoom nests these events, unlike the RTMS ones (which arrive flat), as Zoom's own TypeScript types in its Rivet
library describe them (`Meetings.MeetingStartedEvent`, `MeetingParticipantJoinedEvent`, …):

    {"event": "meeting.participant_joined", "event_ts": 1732520000000,
     "payload": {"account_id": "<the host's Zoom account>",
                 "object": {"uuid": "<meeting UUID>", "id": "<numeric meeting id>", "host_id": "<host's Zoom user id>",
                            "topic": "…", "participant": {"user_id": "16778240", "id": "<Zoom user id>",
                                                          "user_name": "…", "email": "…", "join_time": "…"}}}}

Three ids that are easy to mix up are kept apart here:
- `participant.user_id` is a per-meeting participant id (digits), NOT the Zoom user id: `Person.participant_id`;
- `participant.id` is the Zoom user id, absent for guests (`meeting.participant_role_changed` has no `id`; its
  Zoom user id is `participant_user_id`): `Person.zoom_user_id`, the id app contexts carry as `uid`;
- `payload.account_id`, beside `object`, is the host's account: `MeetingFacts.account_id`.
There is no role field: the host is the participant whose Zoom user id is `object.host_id`; co-hosts are named by
`meeting.participant_role_changed` (old_role / new_role: host, co-host, attendee).

Every id is checked with rtms.identifiers; anything missing or malformed raises MalformedMeetingEvent naming the
field, and the view refuses the delivery with 400 (`invalid_identifier` for a bad id, else `malformed_event`)
before anything is stored.
"""

from dataclasses import dataclass

from rtms.identifiers import InvalidIdentifier, validate
from zoomapp.inbound import is_storable_text

STARTED = "meeting.started"
ENDED = "meeting.ended"
PARTICIPANT_JOINED = "meeting.participant_joined"
PARTICIPANT_LEFT = "meeting.participant_left"
PARTICIPANT_ROLE_CHANGED = "meeting.participant_role_changed"
EVENTS = frozenset({STARTED, ENDED, PARTICIPANT_JOINED, PARTICIPANT_LEFT, PARTICIPANT_ROLE_CHANGED})

# Zoom's role names in participant_role_changed → ours (zoomapp.consent.models.Participant.Role values).
ROLES = {"host": "host", "co-host": "co-host", "attendee": "participant"}

MAX_TOPIC = 300
MAX_NAME = 200
MAX_EMAIL = 254
MAX_MEETING_DIGITS = 20


class MalformedMeetingEvent(ValueError):
    """The payload is not a meeting event we can use; the message names the field. `error` is the refusal's code:
    "invalid_identifier" for an id that fails its pattern (as for RTMS events), else "malformed_event"."""

    def __init__(self, message, error="malformed_event"):
        super().__init__(message)
        self.error = error


@dataclass(frozen=True)
class MeetingFacts:
    account_id: str  # payload.account_id: the host's Zoom account
    uuid: str  # object.uuid (RTMS events call it meeting_uuid)
    meeting_id: str  # object.id: the numeric id REST wants, as digits; "" when Zoom left it out
    host_id: str  # object.host_id: the host's Zoom user id
    topic: str


@dataclass(frozen=True)
class Person:
    participant_id: str  # participant.user_id: per-meeting, digits
    zoom_user_id: str  # participant.id (or participant_user_id); "" for a guest
    name: str
    email: str

    @property
    def is_guest(self):
        return not self.zoom_user_id


@dataclass(frozen=True)
class MeetingStarted:
    meeting: MeetingFacts


@dataclass(frozen=True)
class MeetingEnded:
    meeting: MeetingFacts


@dataclass(frozen=True)
class _ParticipantEvent:
    meeting: MeetingFacts
    participant: Person

    @property
    def is_host(self):
        """Zoom sends no role: the host is the participant whose Zoom user id is the meeting's host_id."""
        return bool(self.participant.zoom_user_id) and self.participant.zoom_user_id == self.meeting.host_id


@dataclass(frozen=True)
class ParticipantJoined(_ParticipantEvent):
    pass


@dataclass(frozen=True)
class ParticipantLeft(_ParticipantEvent):
    pass


@dataclass(frozen=True)
class ParticipantRoleChanged:
    meeting: MeetingFacts
    participant: Person
    old_role: str  # ours: host, co-host, participant
    new_role: str


MEETING_EVENT_TYPES = (MeetingStarted, MeetingEnded, ParticipantJoined, ParticipantLeft, ParticipantRoleChanged)


def parse(event, payload):
    """The typed event for one of EVENTS; raises MalformedMeetingEvent."""
    if event not in EVENTS:
        raise MalformedMeetingEvent(f"{event} is not a meeting event")
    if not isinstance(payload, dict):
        raise MalformedMeetingEvent("payload must be an object")
    meeting_object = payload.get("object")
    if not isinstance(meeting_object, dict):
        raise MalformedMeetingEvent("payload.object is required (Zoom nests meeting events under payload.object)")
    facts = MeetingFacts(
        account_id=_identifier("account_id", payload.get("account_id"), "payload.account_id"),
        uuid=_identifier("meeting_uuid", meeting_object.get("uuid"), "payload.object.uuid"),
        meeting_id=_meeting_number(meeting_object.get("id")),
        host_id=_identifier("zoom_user_id", meeting_object.get("host_id"), "payload.object.host_id"),
        topic=_text(meeting_object, "topic", "payload.object.topic", MAX_TOPIC),
    )
    if event == STARTED:
        return MeetingStarted(facts)
    if event == ENDED:
        return MeetingEnded(facts)
    person = meeting_object.get("participant")
    if not isinstance(person, dict):
        raise MalformedMeetingEvent("payload.object.participant is required")
    participant = Person(
        participant_id=_identifier("participant_id", _digits_text(person.get("user_id")),
                                   "payload.object.participant.user_id"),
        zoom_user_id=_zoom_user_id(person),
        name=_text(person, "user_name", "payload.object.participant.user_name", MAX_NAME),
        email=_text(person, "email", "payload.object.participant.email", MAX_EMAIL),
    )
    if event == PARTICIPANT_JOINED:
        return ParticipantJoined(facts, participant)
    if event == PARTICIPANT_LEFT:
        return ParticipantLeft(facts, participant)
    return ParticipantRoleChanged(facts, participant, _role(person, "old_role"), _role(person, "new_role"))


def _identifier(kind, value, field):
    if value is None:
        raise MalformedMeetingEvent(f"{field} is required")
    try:
        return validate(kind, value, field)
    except InvalidIdentifier as exc:
        raise MalformedMeetingEvent(str(exc), error="invalid_identifier") from None


def _zoom_user_id(person):
    """`id` in joined/left; `participant_user_id` is the same id and the only one in participant_role_changed.
    Both absent (or empty) for a guest."""
    for key in ("id", "participant_user_id"):
        value = person.get(key)
        if value not in (None, ""):
            return _identifier("zoom_user_id", value, f"payload.object.participant.{key}")
    return ""


def _digits_text(value):
    """Zoom's per-meeting participant id is digits in a string; an integer is accepted as the same id."""
    return str(value) if type(value) is int and value >= 0 else value


def _meeting_number(value):
    """object.id: digits, a string in Zoom's types (a number in older payloads); optional in participant_joined."""
    if value is None or value == "":
        return ""
    value = _digits_text(value)
    if not isinstance(value, str) or not (value.isascii() and value.isdigit()) or len(value) > MAX_MEETING_DIGITS:
        raise MalformedMeetingEvent("payload.object.id must be the numeric meeting id")
    return value


def _text(fields, key, field, limit):
    value = fields.get(key, "")
    if value is None:
        return ""
    if not is_storable_text(value):
        raise MalformedMeetingEvent(f"{field} must be a string without NUL characters or lone surrogates")
    return value[:limit]


def _role(person, key):
    value = person.get(key)
    if not isinstance(value, str) or value not in ROLES:
        raise MalformedMeetingEvent(f"payload.object.participant.{key} must be one of {', '.join(ROLES)}")
    return ROLES[value]
