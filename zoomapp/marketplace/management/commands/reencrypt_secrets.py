"""Re-encrypt every secret at rest under FIELD_ENCRYPTION_KEY, the step of a key rotation between giving every process
the new key (the old one in FIELD_ENCRYPTION_PREVIOUS_KEYS) and removing the old one (docs/DEPLOY.md "Rotating
FIELD_ENCRYPTION_KEY"). It prints counts only: never a key, a secret or its ciphertext."""

from django.apps import apps
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.db.models import TextField
from django.db.models.functions import Cast

from zoomapp.marketplace.encryption import EncryptedTextField, WrongEncryptionKey, decrypt, is_under_current_key


def models_with_secrets():
    """(model, names of its EncryptedTextFields) for every model of every app that has some."""
    for model in apps.get_models():
        if model._meta.proxy or not model._meta.managed:
            continue
        names = [field.name for field in model._meta.concrete_fields if isinstance(field, EncryptedTextField)]
        if names:
            yield model, names


def stored_values(model, names):
    """The model's rows in pk order as {"pk", name: ciphertext as stored}: cast to plain text, so the field's
    from_db_value does not decrypt it and the command sees which key it is under."""
    return model._base_manager.order_by("pk").values("pk", **{f"stored_{name}": Cast(name, TextField())
                                                               for name in names})


class Command(BaseCommand):
    help = ("Re-encrypt every secret still under a key of FIELD_ENCRYPTION_PREVIOUS_KEYS under FIELD_ENCRYPTION_KEY, "
            "in batches, each locking its rows. Safe to run again and while the app runs. --check changes nothing "
            "and exits 1 while any value is still under a previous key.")

    def add_arguments(self, parser):
        parser.add_argument("--check", action="store_true",
                            help="only count the values still under a previous key (exit 1 if any)")
        parser.add_argument("--batch-size", type=int, default=500, help="rows per transaction (default 500)")

    def handle(self, *args, check=False, batch_size=500, **options):
        if batch_size < 1:
            raise CommandError("--batch-size must be at least 1")
        # Every value is read first, so a value no key decrypts stops the command before it has changed anything.
        stale_values = 0
        for model, names in models_with_secrets():
            rows = values = 0
            for row in stored_values(model, names).iterator(chunk_size=batch_size):
                stale = self.under_previous_key(model, names, row)
                rows += bool(stale)
                values += len(stale)
            stale_values += values
            self.stdout.write(f"{model._meta.label}: {values} values in {rows} rows under a previous key")
        if check:
            if stale_values:
                raise CommandError(f"{stale_values} values are still under a previous key: run `manage.py "
                                   "reencrypt_secrets`, and keep FIELD_ENCRYPTION_PREVIOUS_KEYS until this check "
                                   "passes", returncode=1)
            self.stdout.write("Every secret is under FIELD_ENCRYPTION_KEY: FIELD_ENCRYPTION_PREVIOUS_KEYS can be "
                              "removed.")
            return
        rewritten = sum(self.reencrypt(model, names, batch_size) for model, names in models_with_secrets())
        self.stdout.write(f"Re-encrypted {rewritten} values under FIELD_ENCRYPTION_KEY; every secret is under it "
                          "now. Check with `manage.py reencrypt_secrets --check`, then remove "
                          "FIELD_ENCRYPTION_PREVIOUS_KEYS and restart every process.")

    def reencrypt(self, model, names, batch_size):
        """Rewrites the model's values under a previous key, a batch of rows per transaction; returns how many."""
        total = model._base_manager.count()
        done = rewritten = 0
        last_pk = None
        while True:
            with transaction.atomic():
                # Locked, and read again under the lock: a token refresh writing the row meanwhile either commits
                # first (its new value, read here, is under the current key already) or waits for this batch.
                rows = stored_values(model, names).select_for_update()
                batch = list((rows if last_pk is None else rows.filter(pk__gt=last_pk))[:batch_size])
                for row in batch:
                    stale = self.under_previous_key(model, names, row)
                    if stale:
                        model._base_manager.filter(pk=row["pk"]).update(**stale)
                        rewritten += len(stale)
            if not batch:
                return rewritten
            last_pk = batch[-1]["pk"]
            done += len(batch)
            self.stdout.write(f"{model._meta.label}: {done}/{total} rows")

    def under_previous_key(self, model, names, row):
        """{name: plaintext} of the row's values a previous key encrypted (the field encrypts them again on save)."""
        stale = {}
        for name in names:
            stored = row[f"stored_{name}"]
            if stored is None or is_under_current_key(stored):
                continue
            try:
                stale[name] = decrypt(stored)
            except WrongEncryptionKey:
                raise CommandError(
                    f"{model._meta.label} pk={row['pk']} field {name}: its stored value decrypts with neither "
                    "FIELD_ENCRYPTION_KEY nor any of FIELD_ENCRYPTION_PREVIOUS_KEYS. Add the key it was saved with "
                    "to FIELD_ENCRYPTION_PREVIOUS_KEYS (comma-separated) and run this again; it re-encrypts only what "
                    "is left."
                ) from None
        return stale
