"""Rotating FIELD_ENCRYPTION_KEY as docs/DEPLOY.md "Rotating FIELD_ENCRYPTION_KEY" tells an operator to: secrets
saved under key A; every process given key B with A in FIELD_ENCRYPTION_PREVIOUS_KEYS keeps serving them;
`manage.py reencrypt_secrets` moves every stored value to B, `--check` says when A can go; a value under a key nobody
gave stops it, naming the row.

On the real database, through the test client, the command as call_command runs it and as an operator runs it
(a `manage.py` subprocess). What is stored is read with SQL and decrypted here with Fernet, written from the format
(a Fernet key derived from the setting with SHA-256), not through the app's field."""

import base64
import hashlib
import hmac
import io
import secrets
import subprocess
import sys
from datetime import timedelta

import pytest
from cryptography.fernet import Fernet, InvalidToken
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.utils import timezone

from tests import processes
from tests.integration.test_production_settings import env_example, manage, production_env
from tests.locks_support import blocked_on_a_lock, held_elsewhere
from tests.webhook_support import deliver
from zoomapp.marketplace.encryption import WrongEncryptionKey
from zoomapp.marketplace.models import PendingAuthorization, UserAuthorization, ZoomApp

pytestmark = pytest.mark.django_db(transaction=True)

KEY_A = "key-a-" + secrets.token_urlsafe(40)
KEY_B = "key-b-" + secrets.token_urlsafe(40)
KEY_UNKNOWN = "key-c-" + secrets.token_urlsafe(40)
SECRET_FIELDS = {ZoomApp: ("client_secret", "webhook_secret_token"),
                 UserAuthorization: ("access_token", "refresh_token"), PendingAuthorization: ("code_verifier",)}


def fernet_of(key):
    return Fernet(base64.urlsafe_b64encode(hashlib.sha256(key.encode()).digest()))


def stored(model):
    """{(pk, field): ciphertext as stored} of every secret of `model`'s rows."""
    fields = SECRET_FIELDS[model]
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT id, {', '.join(fields)} FROM {model._meta.db_table}")
        return {(row[0], field): value for row in cursor.fetchall() for field, value in zip(fields, row[1:])}


def every_stored_value():
    return {(model.__name__, *where): value for model in SECRET_FIELDS for where, value in stored(model).items()}


def save_secrets(settings, key, apps=1):
    """`apps` apps, each with a user's grant and a pending authorization, saved under `key`; their plaintexts."""
    settings.FIELD_ENCRYPTION_KEY = key
    plaintexts = []
    for n in range(apps):
        app = ZoomApp.objects.create(name=f"Rotated {n}", client_id=f"cid{secrets.token_hex(5)}",
                                     client_secret=f"client-s3cret-{secrets.token_hex(8)}",
                                     webhook_secret_token=f"webhook-s3cret-{secrets.token_hex(8)}")
        grant = UserAuthorization.objects.create(
            app=app, user_id=f"user{n}", access_token=f"access-s3cret-{secrets.token_hex(8)}",
            refresh_token=f"refresh-s3cret-{secrets.token_hex(8)}", expires_at=timezone.now() + timedelta(hours=1))
        pending = PendingAuthorization.objects.create(app=app, state=secrets.token_hex(8), user_id=f"user{n}",
                                                      code_verifier=f"verifier-s3cret-{secrets.token_hex(8)}")
        plaintexts += [app.client_secret, app.webhook_secret_token, grant.access_token, grant.refresh_token,
                       pending.code_verifier]
    return plaintexts


def rotate_to_b(settings, previous=(KEY_A,)):
    settings.FIELD_ENCRYPTION_KEY = KEY_B
    settings.FIELD_ENCRYPTION_PREVIOUS_KEYS = previous


def run_command(*args):
    """(returncode, printed output) of call_command("reencrypt_secrets", *args)."""
    printed = io.StringIO()
    try:
        call_command("reencrypt_secrets", *args, stdout=printed, stderr=printed)
    except CommandError as exc:
        return exc.returncode, f"{printed.getvalue()}{exc}"
    return 0, printed.getvalue()


def assert_reveals_nothing(text, plaintexts, ciphertexts=()):
    for revealing in (KEY_A, KEY_B, KEY_UNKNOWN, *plaintexts, *ciphertexts):
        assert revealing not in text


def url_validation(client, app):
    response = deliver(client, app, {"event": "endpoint.url_validation", "payload": {"plainToken": "rotatedPlain1"}})
    assert response.status_code == 200
    return response.json()["encryptedToken"]


def test_after_a_rotation_secrets_saved_under_the_previous_key_still_serve_webhooks_grants_and_health(
        settings, client):
    save_secrets(settings, KEY_A)
    app = ZoomApp.objects.get()
    expected = hmac.new(app.webhook_secret_token.encode(), b"rotatedPlain1", hashlib.sha256).hexdigest()
    grant = UserAuthorization.objects.get()

    rotate_to_b(settings, previous=())
    with pytest.raises(WrongEncryptionKey, match="put the one they were saved with in FIELD_ENCRYPTION_PREVIOUS_KEYS"):
        ZoomApp.objects.get()
    assert client.get("/healthz").json()["secrets"].startswith("error")

    rotate_to_b(settings)
    assert url_validation(client, app) == expected
    assert UserAuthorization.objects.get().access_token == grant.access_token
    assert client.get("/healthz").json() == {"status": "ok", "database": "ok", "secrets": "ok"}


def test_reencrypt_secrets_moves_every_value_to_the_current_key_in_batches_and_check_says_when_the_old_can_go(
        settings, caplog):
    plaintexts = save_secrets(settings, KEY_A, apps=3)
    under_a = every_stored_value()
    rotate_to_b(settings)

    code, before = run_command("--check")
    assert code == 1
    assert "marketplace.ZoomApp: 6 values in 3 rows under a previous key" in before
    assert "marketplace.UserAuthorization: 6 values in 3 rows under a previous key" in before
    assert "15 values are still under a previous key" in before
    assert every_stored_value() == under_a

    code, output = run_command("--batch-size", "2")
    assert code == 0, output
    assert [line for line in output.splitlines() if line.startswith("marketplace.ZoomApp: ") and "/" in line] == [
        "marketplace.ZoomApp: 2/3 rows", "marketplace.ZoomApp: 3/3 rows"]
    assert "Re-encrypted 15 values under FIELD_ENCRYPTION_KEY" in output
    under_b = every_stored_value()
    assert sorted(fernet_of(KEY_B).decrypt(value.encode()).decode() for value in under_b.values()) == sorted(plaintexts)
    for value in under_b.values():
        with pytest.raises(InvalidToken):
            fernet_of(KEY_A).decrypt(value.encode())

    code, after = run_command("--check")
    assert code == 0 and "FIELD_ENCRYPTION_PREVIOUS_KEYS can be removed" in after
    code, again = run_command()
    assert code == 0 and "Re-encrypted 0 values" in again
    assert every_stored_value() == under_b

    settings.FIELD_ENCRYPTION_PREVIOUS_KEYS = ()
    read_by_the_app = [value for model, fields in SECRET_FIELDS.items()
                       for row in model.objects.values_list(*fields) for value in row]
    assert sorted(read_by_the_app) == sorted(plaintexts)
    assert_reveals_nothing(before + output + after + again + caplog.text, plaintexts,
                           [*under_a.values(), *under_b.values()])


def test_a_value_under_a_key_nobody_gave_stops_the_command_naming_its_row_and_nothing_changes(settings):
    plaintexts = save_secrets(settings, KEY_A, apps=2)
    grant = UserAuthorization.objects.order_by("pk").last()
    settings.FIELD_ENCRYPTION_KEY = KEY_UNKNOWN
    grant.refresh_token = "refresh-s3cret-unknown"
    grant.save(update_fields=["refresh_token"])
    before = every_stored_value()
    rotate_to_b(settings)

    for args in ((), ("--check",)):
        code, output = run_command(*args)
        assert code != 0
        assert f"marketplace.UserAuthorization pk={grant.pk} field refresh_token" in output
        assert "Add the key it was saved with to FIELD_ENCRYPTION_PREVIOUS_KEYS" in output
        assert every_stored_value() == before
        assert_reveals_nothing(output, [*plaintexts, "refresh-s3cret-unknown"], before.values())


def test_an_operator_runs_the_rotation_with_manage_py(settings, stack_env):
    plaintexts = save_secrets(settings, KEY_A)
    rotated = {**stack_env, "FIELD_ENCRYPTION_KEY": KEY_B, "FIELD_ENCRYPTION_PREVIOUS_KEYS": KEY_A}

    def reencrypt_secrets(*args):
        result = subprocess.run([sys.executable, "manage.py", "reencrypt_secrets", *args], cwd=processes.ROOT,
                                env=rotated, capture_output=True, text=True, timeout=60)
        assert_reveals_nothing(result.stdout + result.stderr, plaintexts)
        assert "Traceback" not in result.stderr
        return result

    assert reencrypt_secrets("--check").returncode == 1
    assert reencrypt_secrets().returncode == 0
    checked = reencrypt_secrets("--check")
    assert checked.returncode == 0 and "can be removed" in checked.stdout
    assert {fernet_of(KEY_B).decrypt(value.encode()).decode() for value in every_stored_value().values()} == set(
        plaintexts)


def test_a_token_refresh_committed_while_the_command_runs_is_kept_not_overwritten_with_the_old_token(
        settings, stack_env):
    """The app's refresh locks the grant and writes its new tokens; the command, waiting for that lock, reads the
    row again instead of writing back the token it read before."""
    save_secrets(settings, KEY_A)
    grant = UserAuthorization.objects.get()
    rotate_to_b(settings)

    def refresh():
        locked = UserAuthorization.objects.select_for_update().get(pk=grant.pk)
        locked.access_token, locked.refresh_token = "access-s3cret-new", "refresh-s3cret-new"
        locked.save()

    rotated = {**stack_env, "FIELD_ENCRYPTION_KEY": KEY_B, "FIELD_ENCRYPTION_PREVIOUS_KEYS": KEY_A}
    with held_elsewhere(refresh):
        command = subprocess.Popen([sys.executable, "manage.py", "reencrypt_secrets"], cwd=processes.ROOT,
                                   env=rotated, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        processes.wait_for(blocked_on_a_lock, 30, "the command waiting for the refresh's lock")
    output, _ = command.communicate(timeout=60)
    assert command.returncode == 0, output
    stored_grant = stored(UserAuthorization)
    assert fernet_of(KEY_B).decrypt(stored_grant[(grant.pk, "refresh_token")].encode()) == b"refresh-s3cret-new"
    assert fernet_of(KEY_B).decrypt(stored_grant[(grant.pk, "access_token")].encode()) == b"access-s3cret-new"


@pytest.mark.parametrize("previous", ["{old},", "{old},,{older}", "{current}", "{old},{current}"],
                         ids=["trailing-comma", "empty-entry", "the-current-key", "the-current-key-among-others"])
def test_start_up_refuses_previous_keys_that_cannot_be_meant_naming_the_variable_and_no_key(previous):
    current, old, older = (secrets.token_urlsafe(50) for _ in range(3))
    env = production_env(FIELD_ENCRYPTION_KEY=current,
                         FIELD_ENCRYPTION_PREVIOUS_KEYS=previous.format(current=current, old=old, older=older))
    result = manage(env, "check", "--deploy")
    assert result.returncode != 0
    assert "FIELD_ENCRYPTION_PREVIOUS_KEYS must be comma-separated keys, none empty and none equal to " \
           "FIELD_ENCRYPTION_KEY" in result.stderr
    for key in (current, old, older):
        assert key not in result.stdout + result.stderr


def test_start_up_accepts_previous_keys_with_spaces_after_the_commas():
    env = production_env(FIELD_ENCRYPTION_PREVIOUS_KEYS=f"{secrets.token_urlsafe(50)}, {secrets.token_urlsafe(50)}")
    result = manage(env, "check", "--deploy", "--fail-level", "WARNING")
    assert result.returncode == 0, result.stderr


def test_env_example_documents_the_previous_keys_empty():
    assert env_example()["FIELD_ENCRYPTION_PREVIOUS_KEYS"] == ""
