"""Secrets at rest (zoomapp/marketplace/encryption.py): the database holds only ciphertext, a read gives the text
back, and a ciphertext changed in the database is refused, however often the genuine one was read before
(decryptions are remembered by their exact ciphertext). A secret that does not decrypt names FIELD_ENCRYPTION_KEY
and what to set it to."""

import pytest
from django.conf import settings
from django.db import connection
from django.test import override_settings

from zoomapp.marketplace.encryption import WrongEncryptionKey
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

    with pytest.raises(WrongEncryptionKey, match="or the stored value was altered"):
        ZoomApp.objects.get(pk=app.pk)


def test_another_key_cannot_read_what_this_one_stored(app):
    ZoomApp.objects.get(pk=app.pk)

    with override_settings(FIELD_ENCRYPTION_KEY="another-key-" + "y" * 40, SECRET_KEY="a-new-key-" + "z" * 40), \
            pytest.raises(WrongEncryptionKey) as refused:
        ZoomApp.objects.get(pk=app.pk)
    message = str(refused.value)
    assert message.startswith("a secret stored in the database does not decrypt with this process's "
                              "FIELD_ENCRYPTION_KEY")
    assert "Give every machine the FIELD_ENCRYPTION_KEY the secrets were saved with" in message
    assert settings.FIELD_ENCRYPTION_KEY not in message and app.client_secret not in message


def test_secrets_saved_under_secret_key_say_to_move_that_value_to_field_encryption_key(app):
    """The upgrade docs/SECURITY.md describes: secrets saved while FIELD_ENCRYPTION_KEY defaulted to SECRET_KEY,
    then a new FIELD_ENCRYPTION_KEY generated instead of setting it to that SECRET_KEY."""
    with override_settings(FIELD_ENCRYPTION_KEY="the-old-secret-key-" + "o" * 40):
        app.save()
    with override_settings(SECRET_KEY="the-old-secret-key-" + "o" * 40,
                           FIELD_ENCRYPTION_KEY="a-fresh-random-key-" + "f" * 40), \
            pytest.raises(WrongEncryptionKey) as refused:
        ZoomApp.objects.get(pk=app.pk)
    assert str(refused.value).endswith("It decrypts with the current SECRET_KEY: set FIELD_ENCRYPTION_KEY to "
                                       "SECRET_KEY's value, generate a new SECRET_KEY, and restart")
