"""Identifiers that come from outside (Zoom's webhooks, app contexts, REST answers, RTMS handshake replies),
checked where they enter so nothing downstream ever sees a path, a URL fragment or a 10 KB blob where an id
belongs. docs/SECURITY.md ("Identifiers checked at the edge") says where each check sits.

Each kind is a strict pattern with a length cap, matched with `fullmatch` (so a trailing newline is refused
too). Only the meeting UUID may hold '/', '+' and '=' (Zoom's meeting UUIDs are standard base64); no kind allows
'.', '\\', '%', NUL or whitespace, so '..', '%2e%2e' and encoded forms never pass. A stream id is also a
directory name under MEDIA_ROOT (rtms/media.py), which is why its alphabet has no separator at all.

Usage: `validate("rtms_stream_id", value)` returns the value or raises `InvalidIdentifier` naming the field.
"""

import re
from urllib.parse import unquote

__all__ = ["KINDS", "InvalidIdentifier", "meeting_uuid_from_url", "validate"]

# Zoom's ids are base64url-ish (user and account ids: 22 characters; stream and session ids: 32 hex digits in
# Zoom's examples); the caps leave room for other products' ids without admitting anything path-like.
_WORD = "[A-Za-z0-9_-]"

KINDS = {
    # RTMS stream id: 32 hex digits from Zoom; our own tests and other products use short word ids.
    "rtms_stream_id": re.compile(f"{_WORD}{{1,64}}"),
    # RTMS session id (SESSION_STATE_UPDATE, SESSION_STATE_RESP): same alphabet as the stream id.
    "rtms_session_id": re.compile(f"{_WORD}{{1,64}}"),
    # Meeting UUID: standard base64 of 16 bytes ("4444AAAiAAAAAiAiAiiAii=="), may contain '+' and '/', ends in
    # '=' padding; url-safe '-' and '_' accepted as well. Never decoded: it is compared and stored as given. At most
    # 100 characters in all (the lookahead), the narrowest column that stores it (consent.Meeting.uuid,
    # AuditEntry.meeting_uuid): a longer one was accepted, then failed its write (docs/SECURITY.md).
    "meeting_uuid": re.compile(r"(?=.{1,100}\Z)[A-Za-z0-9+/_-]+={0,2}"),
    # Zoom user id (operator_id, host_id, participant.id, app context uid): 22-character base64url.
    "zoom_user_id": re.compile(f"{_WORD}{{1,64}}"),
    # Zoom account id (payload.account_id, /users/me account_id).
    "account_id": re.compile(f"{_WORD}{{1,64}}"),
    # Marketplace app client id (also a URL path segment: /zoom/webhooks/<client_id>).
    "client_id": re.compile(f"{_WORD}{{1,100}}"),
    # Per-meeting participant id: digits ("16778240"; RTMS user_id, webhook participant.user_id).
    "participant_id": re.compile(r"[0-9]{1,20}"),
}

# How much of a refused value a message quotes: enough to recognise it, never a 10 KB blob in a log line.
_QUOTED_CHARS = 40


class InvalidIdentifier(ValueError):
    """An identifier from outside that does not match its kind's pattern. `field` names where it came from
    (e.g. "rtms_stream_id" or "payload.object.uuid"), so the refusal tells the sender what to fix."""

    def __init__(self, field, value, kind=None):
        self.field = field
        self.kind = kind or field
        shown = value if isinstance(value, str) else type(value).__name__
        if isinstance(value, str) and len(value) > _QUOTED_CHARS:
            shown = f"{value[:_QUOTED_CHARS]}… ({len(value)} characters)"
        super().__init__(f"{field} is not a valid {self.kind.replace('_', ' ')}: {shown!r}")


def validate(kind, value, field=None, allow_blank=False):
    """Return `value` if it is a well-formed identifier of `kind` (a key of KINDS), else raise
    InvalidIdentifier naming `field` (default: the kind). `allow_blank` lets an optional field be ''."""
    pattern = KINDS[kind]
    if allow_blank and value == "":
        return value
    if not isinstance(value, str) or not pattern.fullmatch(value):
        raise InvalidIdentifier(field or kind, value, kind)
    return value


def meeting_uuid_from_url(value, field="meeting_uuid"):
    """A meeting UUID taken from a URL path or query: Zoom double-encodes UUIDs that start with '/' or contain
    '//' (docs/SECURITY.md), so decode at most twice, then validate the plain UUID."""
    if isinstance(value, str):
        for _ in range(2):
            if "%" not in value:
                break
            value = unquote(value)
    return validate("meeting_uuid", value, field)
