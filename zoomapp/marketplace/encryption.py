"""Secrets at rest: a text field stored encrypted with Fernet (AES-128-CBC + HMAC).

The key is derived from FIELD_ENCRYPTION_KEY; the database alone never reveals a secret. After a rotation the keys of
FIELD_ENCRYPTION_PREVIOUS_KEYS still decrypt (never encrypt) until `manage.py reencrypt_secrets` has re-encrypted
every value under the current key (docs/DEPLOY.md "Rotating FIELD_ENCRYPTION_KEY").
"""

import base64
import functools
import hashlib

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.db import models


class WrongEncryptionKey(Exception):
    """A stored secret decrypts with none of this process's keys (FIELD_ENCRYPTION_KEY, then the previous ones). The
    message says what to set; it is for the log and the operator, never for an answer to a caller (docs/SECURITY.md
    "Production defaults")."""


@functools.cache
def _fernet(key_material):
    return Fernet(base64.urlsafe_b64encode(hashlib.sha256(key_material.encode()).digest()))


def encrypt(plaintext):
    return _fernet(settings.FIELD_ENCRYPTION_KEY).encrypt(plaintext.encode()).decode()


@functools.cache
def _multi_fernet(key_materials):
    return MultiFernet([_fernet(key_material) for key_material in key_materials])


def decrypt(token):
    try:
        return _decrypted((settings.FIELD_ENCRYPTION_KEY, *settings.FIELD_ENCRYPTION_PREVIOUS_KEYS), token)
    except InvalidToken:
        raise WrongEncryptionKey(_why_not(token)) from None


def is_under_current_key(token):
    """Whether FIELD_ENCRYPTION_KEY itself decrypts `token`: if not, reencrypt_secrets has work to do."""
    try:
        _decrypted((settings.FIELD_ENCRYPTION_KEY,), token)
    except InvalidToken:
        return False
    return True


def _why_not(token):
    message = ("a secret stored in the database does not decrypt with this process's FIELD_ENCRYPTION_KEY, nor with "
               "any of FIELD_ENCRYPTION_PREVIOUS_KEYS (not the key it was saved with, or the stored value was altered)")
    # The documented upgrade (docs/SECURITY.md "Production defaults"): secrets saved while FIELD_ENCRYPTION_KEY
    # defaulted to SECRET_KEY.
    try:
        _decrypted((settings.SECRET_KEY,), token)
    except InvalidToken:
        return (f"{message}. Give every machine the FIELD_ENCRYPTION_KEY the secrets were saved with and restart; "
                "after a rotation to a new FIELD_ENCRYPTION_KEY, put the one they were saved with in "
                "FIELD_ENCRYPTION_PREVIOUS_KEYS until `manage.py reencrypt_secrets --check` passes; a database from "
                "before FIELD_ENCRYPTION_KEY existed was saved with the old SECRET_KEY, so set FIELD_ENCRYPTION_KEY "
                "to that value")
    return (f"{message}. It decrypts with the current SECRET_KEY: set FIELD_ENCRYPTION_KEY to SECRET_KEY's value, "
            "generate a new SECRET_KEY, and restart")


# A row's secrets are decrypted each time the row is read: the app's two with every meeting lock, ~10 µs each in a
# loop and several times that between requests, 3.6 % of the web process's CPU under approvals (docs/PERFORMANCE.md
# "2026-12-02 (session 23)"). The same ciphertext always decrypts to the same text, and a process that reads them
# holds the key anyway. The current key is tried first, so a previous key costs only values not yet re-encrypted.
@functools.lru_cache(maxsize=4096)
def _decrypted(key_materials, token):
    return _multi_fernet(key_materials).decrypt(token.encode()).decode()


class EncryptedTextField(models.TextField):
    """Holds plaintext in Python, ciphertext in the database. Not usable in lookups."""

    def from_db_value(self, value, expression, connection):
        return None if value is None else decrypt(value)

    def get_prep_value(self, value):
        value = super().get_prep_value(value)
        return None if value is None else encrypt(value)
