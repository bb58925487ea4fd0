"""The panel's short-lived signed token, minted once the app context was verified.

It binds one browser to one app, one meeting and one user (or one guest), and is what the panel's
WebSocket and JSON API accept (cookies are unreliable inside Zoom's embedded browser). The role is
deliberately not trusted from it: every action re-reads the role server-side.
"""

import secrets
import time
from dataclasses import dataclass

from django.core import signing

from zoomapp import texts

TOKEN_MAX_AGE = 15 * 60  # seconds; the panel re-posts a fresh app context before this runs out
_SALT = "zoomapp.consent.panel"


class TokenRefused(Exception):
    def __init__(self, reason):
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class PanelIdentity:
    client_id: str
    meeting_uuid: str
    user_id: str  # "" for a guest
    guest_id: str  # a random id per guest panel, so a guest's socket has its own user group
    expires_at: int  # Unix seconds; the panel's socket is closed then unless it renewed the token

    @property
    def is_guest(self):
        return not self.user_id

    @property
    def viewer_id(self):
        return self.user_id or f"guest:{self.guest_id}"


def mint(client_id, meeting_uuid, user_id):
    guest_id = "" if user_id else secrets.token_urlsafe(9)
    expires_at = int(time.time()) + TOKEN_MAX_AGE
    return signing.dumps({"a": client_id, "m": meeting_uuid, "u": user_id, "g": guest_id, "e": expires_at},
                         salt=_SALT, compress=True)


def read(token, max_age=TOKEN_MAX_AGE):
    if not isinstance(token, str) or not token or len(token) > 2048:
        raise TokenRefused(texts.REFUSED_TOKEN_MISSING)
    try:
        data = signing.loads(token, salt=_SALT, max_age=max_age)
    except signing.SignatureExpired:
        raise TokenRefused(texts.REFUSED_TOKEN_EXPIRED) from None
    except signing.BadSignature:
        raise TokenRefused(texts.REFUSED_TOKEN_INVALID) from None
    if (not isinstance(data, dict) or not all(isinstance(data.get(k), str) for k in "amug")
            or type(data.get("e")) is not int):
        raise TokenRefused(texts.REFUSED_TOKEN_INVALID)
    return PanelIdentity(client_id=data["a"], meeting_uuid=data["m"], user_id=data["u"], guest_id=data["g"],
                         expires_at=data["e"])
