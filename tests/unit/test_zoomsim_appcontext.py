"""The simulator's X-Zoom-App-Context, checked by a decoder written from docs/ZOOM.md §10 alone."""

import base64
import hashlib
import json

import pytest
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from zoomsim.window.appcontext import build_app_context, encrypt_app_context

SECRET = "s3cr3t-client-secret"


def decrypt_as_zoom_documents(value: str, client_secret: str) -> tuple[dict, bytes]:
    """Independent reading of §10.2/§10.3: walk the bytes by hand, decrypt with the streaming GCM API."""
    raw = base64.b64decode(value)
    pos = 0
    iv_len = raw[pos]
    pos += 1
    iv = raw[pos : pos + iv_len]
    pos += iv_len
    aad_len = int.from_bytes(raw[pos : pos + 2], "little")
    pos += 2
    aad = raw[pos : pos + aad_len]
    pos += aad_len
    ct_len = int.from_bytes(raw[pos : pos + 4], "little", signed=True)
    pos += 4
    ciphertext = raw[pos : pos + ct_len]
    tag = raw[pos + ct_len :]
    assert len(tag) == 16
    key = hashlib.sha256(client_secret.encode()).digest()
    decryptor = Cipher(algorithms.AES(key), modes.GCM(iv, tag)).decryptor()
    decryptor.authenticate_additional_data(aad)
    plaintext = decryptor.update(ciphertext) + decryptor.finalize()
    return json.loads(plaintext.decode("utf-8")), aad


def test_context_round_trips_through_the_documented_layout():
    context = build_app_context(
        client_id="client-abc", meeting_uuid="4444AAAiAAAAAiAiAiiAii==", role="host",
        now_ms=1732520000000, user_id="30R7kT7bTIKSNUFEuH_Qlg",
    )
    value = encrypt_app_context(context, SECRET)
    decoded, aad = decrypt_as_zoom_documents(value, SECRET)
    assert decoded == {
        "typ": "meeting", "uid": "30R7kT7bTIKSNUFEuH_Qlg", "mid": "4444AAAiAAAAAiAiAiiAii==",
        "ts": 1732520000000, "exp": 1732520120000, "aud": "client-abc", "iss": "marketplace.zoom.us",
        "attendrole": "host", "entitlements": [], "theme": "dark",
    }
    assert aad  # a non-empty AAD: decoders must authenticate it


def test_value_is_standard_base64_with_padding():
    value = encrypt_app_context({"typ": "meeting"}, SECRET)
    assert base64.b64encode(base64.b64decode(value, validate=True)).decode() == value


def test_guest_context_has_no_uid_and_cohost_is_spelled_as_zoom_does():
    context = build_app_context(client_id="c", meeting_uuid="m", role="cohost", now_ms=1, user_id=None)
    decoded, _ = decrypt_as_zoom_documents(encrypt_app_context(context, SECRET), SECRET)
    assert "uid" not in decoded
    assert decoded["attendrole"] == "co-host"


def test_wrong_secret_fails_authentication():
    value = encrypt_app_context({"typ": "meeting"}, SECRET)
    with pytest.raises(InvalidTag):
        decrypt_as_zoom_documents(value, "another-secret")


def test_each_value_uses_a_fresh_iv():
    first = base64.b64decode(encrypt_app_context({"typ": "meeting"}, SECRET))
    second = base64.b64decode(encrypt_app_context({"typ": "meeting"}, SECRET))
    assert first[1:13] != second[1:13]
