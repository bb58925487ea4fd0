"""Secrets at rest (zoomapp/marketplace/encryption.py): the database holds only ciphertext, a read gives the text
back, and a ciphertext changed in the database is refused, however often the genuine one was read before
(decryptions are remembered by their exact ciphertext)."""

import pytest
from cryptography.fernet import InvalidToken
from django.db import connection
from django.test import override_settings

from zoomapp.marketplace.models import ZoomApp

pytestmark = pytest.mark.django_db


def stored_client_secret(app):
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT client_secret FROM {ZoomApp._meta.db_table} WHERE id = %s", [app.pk])
        return cursor.fetchone()[0]


def store_client_secret(app, value):
    with connection.cursor() as cursor:
        cursor.execute(f"UPDATE {ZoomApp._meta.db_table} SET client_secret = %s WHERE id = %s", [value, app.pk])


def test_the_database_holds_ciphertext_and_a_read_gives_the_secret_back(app):
    secret = app.client_secret

    assert secret not in stored_client_secret(app)
    assert ZoomApp.objects.get(pk=app.pk).client_secret == secret
    assert ZoomApp.objects.get(pk=app.pk).client_secret == secret  # read again: the same text


def test_a_ciphertext_changed_in_the_database_is_refused_after_the_genuine_one_was_read(app):
    ZoomApp.objects.get(pk=app.pk)
    genuine = stored_client_secret(app)
    store_client_secret(app, genuine[:-6] + ("AAAAAA" if not genuine.endswith("AAAAAA") else "BBBBBB"))

    with pytest.raises(InvalidToken):
        ZoomApp.objects.get(pk=app.pk)


def test_another_key_cannot_read_what_this_one_stored(app):
    ZoomApp.objects.get(pk=app.pk)

    with override_settings(FIELD_ENCRYPTION_KEY="another-key-" + "y" * 40), pytest.raises(InvalidToken):
        ZoomApp.objects.get(pk=app.pk)
