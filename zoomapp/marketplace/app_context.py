"""`X-Zoom-App-Context` (and zoomSdk.getAppContext()'s value): decrypt, verify, and read who is looking.

docs/ZOOM.md §10: base64 of [ivLen u8][iv][aadLen u16 LE][aad][ctLen i32 LE][ciphertext][tag 16],
AES-256-GCM with key SHA-256(client secret), UTF-8 JSON inside. We accept both base64 alphabets and missing
padding (§10.3 leaves the alphabet open), then require aud = our client id, iss = marketplace.zoom.us, an
unexpired exp, a fresh ts (made in the last MAX_CONTEXT_AGE_MS, so a captured context cannot be replayed for
as long as its exp allows) and well-formed uid and mid (rtms.identifiers). Every refusal is an AppContextRefused
whose `reason` is short and safe to show.
"""

import base64
import binascii
import hashlib
import struct
import time
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from rtms.identifiers import InvalidIdentifier, validate
from zoomapp import inbound

ISSUER = "marketplace.zoom.us"
TAG_LENGTH = 16
MAX_CONTEXT_CHARS = 8192
# Zoom spells roles differently per API (docs/ZOOM.md §9.2); one internal set.
ROLE_NAMES = {
    "host": "host",
    "co-host": "co-host",
    "cohost": "co-host",
    "coHost": "co-host",
    "participant": "participant",
    "attendee": "participant",
    "panelist": "participant",
}
CLOCK_SKEW_MS = 5_000
# Zoom makes a context about 120 s before its exp (reference samples in docs/SECURITY.md); the panel asks the SDK
# for a fresh one each time it binds or renews, so anything older than this is a replay.
MAX_CONTEXT_AGE_MS = 180_000


class AppContextRefused(Exception):
    def __init__(self, reason):
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class AppContext:
    user_id: str  # "" in Guest Mode (no uid)
    meeting_uuid: str
    role: str  # host | co-host | participant (a hint: it may change after the context was made)
    made_ms: int  # ts: when Zoom made it, so a role Zoom changed since is not taken back from it
    typ: str
    expires_ms: int
    theme: str

    @property
    def is_guest(self):
        return not self.user_id


def _b64decode(value):
    text = value.strip().replace("-", "+").replace("_", "/")
    text += "=" * (-len(text) % 4)
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise AppContextRefused("the app context is not base64") from None


def _split(raw):
    try:
        pos = 0
        iv_length = raw[pos]
        pos += 1
        iv = raw[pos : pos + iv_length]
        pos += iv_length
        (aad_length,) = struct.unpack_from("<H", raw, pos)
        pos += 2
        aad = raw[pos : pos + aad_length]
        pos += aad_length
        (cipher_length,) = struct.unpack_from("<i", raw, pos)
        pos += 4
    except (IndexError, struct.error):
        raise AppContextRefused("the app context is truncated") from None
    if iv_length == 0 or len(iv) != iv_length or len(aad) != aad_length or cipher_length < 0:
        raise AppContextRefused("the app context is truncated")
    ciphertext = raw[pos : pos + cipher_length]
    tag = raw[pos + cipher_length :]
    if len(ciphertext) != cipher_length or len(tag) != TAG_LENGTH:
        raise AppContextRefused("the app context is truncated")
    return iv, aad, ciphertext, tag


def decrypt_app_context(value, client_secret):
    """The context's JSON object, or AppContextRefused."""
    if not isinstance(value, str) or not value or len(value) > MAX_CONTEXT_CHARS:
        raise AppContextRefused("the app context is missing or too long")
    iv, aad, ciphertext, tag = _split(_b64decode(value))
    key = hashlib.sha256(client_secret.encode("utf-8")).digest()
    try:
        plaintext = AESGCM(key).decrypt(iv, ciphertext + tag, aad)
    except (InvalidTag, ValueError):
        raise AppContextRefused("the app context was not made for this app or was altered") from None
    try:
        fields = inbound.parse_json(plaintext.decode("utf-8"))
    except (UnicodeDecodeError, inbound.NotJSON):
        raise AppContextRefused("the app context is not readable") from None
    if not isinstance(fields, dict):
        raise AppContextRefused("the app context is not readable")
    return fields


def _text(fields, name, required=True):
    value = fields.get(name)
    if value is None and not required:
        return ""
    if not isinstance(value, str) or (required and not value) or len(value) > 200:
        raise AppContextRefused(f"the app context has no valid {name}")
    return value


def verify_app_context(value, app, now_ms=None):
    """Decrypt with the app's client secret and check aud, iss, exp; returns an AppContext."""
    fields = decrypt_app_context(value, app.client_secret)
    now_ms = int(time.time() * 1000) if now_ms is None else now_ms
    if fields.get("aud") != app.client_id:
        raise AppContextRefused("the app context is for another app")
    if fields.get("iss") != ISSUER:
        raise AppContextRefused("the app context was not issued by Zoom")
    expires = fields.get("exp")
    if type(expires) is not int:
        raise AppContextRefused("the app context has no expiry")
    if expires + CLOCK_SKEW_MS < now_ms:
        raise AppContextRefused("the app context has expired")
    made = fields.get("ts")
    if type(made) is not int or made > now_ms + CLOCK_SKEW_MS:
        raise AppContextRefused("the app context has no valid ts")
    if made + MAX_CONTEXT_AGE_MS < now_ms:
        raise AppContextRefused("the app context is too old; open the app again")
    typ = _text(fields, "typ")
    meeting_uuid = _text(fields, "mid", required=typ == "meeting")
    if typ != "meeting" or not meeting_uuid:
        raise AppContextRefused("the app was not opened in a meeting")
    attendrole = fields.get("attendrole")
    role = ROLE_NAMES.get(attendrole) if isinstance(attendrole, str) else None  # a list or object is no key
    if role is None:
        raise AppContextRefused("the app context has no valid attendrole")
    theme = fields.get("theme") if fields.get("theme") in ("light", "dark") else ""
    user_id = _text(fields, "uid", required=False)
    try:
        validate("meeting_uuid", meeting_uuid, "mid")
        validate("zoom_user_id", user_id, "uid", allow_blank=True)
    except InvalidIdentifier as exc:
        raise AppContextRefused(f"the app context holds a malformed id: {exc}") from None
    return AppContext(
        user_id=user_id,
        meeting_uuid=meeting_uuid,
        role=role,
        made_ms=made,
        typ=typ,
        expires_ms=expires,
        theme=theme,
    )
