"""The `X-Zoom-App-Context` value, encrypted the way Zoom does it (docs/ZOOM.md §10).

Layout of the base64-decoded value (§10.2):
    [ivLength: 1 byte][iv][aadLength: uint16 LE][aad][cipherTextLength: int32 LE][cipherText][tag: 16 bytes]
Cipher AES-256-GCM, key = SHA-256(client secret) raw digest, plaintext UTF-8 JSON (§10.3).

Project assumptions (the reference leaves them open):
- the value is emitted in standard base64 with padding, as Zoom's samples decode it (§10.3);
- the AAD is not empty, so an app that forgets to feed the AAD to GCM fails here as it would with any non-empty AAD;
- a `theme` field is included ("dark", the simulated window's theme), marked UNCONFIRMED in §10.4.
"""

import base64
import hashlib
import json
import os
import struct

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

ISSUER = "marketplace.zoom.us"
LIFETIME_MS = 120_000  # devforum samples show about 116-120 s between ts and exp (§10.4)
IV_LENGTH = 12
TAG_LENGTH = 16
AAD = b"zoomsim-app-context"

# attendrole values as the context spells them (§10.4); the window's roles map onto these.
ATTEND_ROLES = {"host": "host", "cohost": "co-host", "participant": "participant"}


def build_app_context(
    *,
    client_id: str,
    meeting_uuid: str,
    role: str,
    now_ms: int,
    user_id: str | None,
    typ: str = "meeting",
    theme: str = "dark",
) -> dict:
    """The plaintext fields of a meeting panel's context. `user_id=None` is Guest Mode: no `uid` (§10.4)."""
    context = {"typ": typ}
    if user_id:
        context["uid"] = user_id
    context.update(
        {
            "mid": meeting_uuid,
            "ts": now_ms,
            "exp": now_ms + LIFETIME_MS,
            "aud": client_id,
            "iss": ISSUER,
            "attendrole": ATTEND_ROLES[role],
            "entitlements": [],
            "theme": theme,
        }
    )
    return context


def encrypt_app_context(context: dict, client_secret: str, *, iv: bytes | None = None, aad: bytes = AAD) -> str:
    """Encrypt `context` into the header value Zoom sends and `getAppContext()` returns."""
    key = hashlib.sha256(client_secret.encode("utf-8")).digest()
    iv = iv if iv is not None else os.urandom(IV_LENGTH)
    plaintext = json.dumps(context, separators=(",", ":")).encode("utf-8")
    sealed = AESGCM(key).encrypt(iv, plaintext, aad)  # ciphertext followed by the 16-byte tag
    ciphertext, tag = sealed[:-TAG_LENGTH], sealed[-TAG_LENGTH:]
    blob = (
        struct.pack("<B", len(iv))
        + iv
        + struct.pack("<H", len(aad))
        + aad
        + struct.pack("<i", len(ciphertext))
        + ciphertext
        + tag
    )
    return base64.b64encode(blob).decode("ascii")
