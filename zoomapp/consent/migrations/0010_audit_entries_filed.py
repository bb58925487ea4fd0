"""Every audit entry already recorded is filed under its account, then the column's indexes are built: in batches
committed one by one and CONCURRENTLY, so the entries being written meanwhile never wait, and safe to run again
after a failure (docs/DEPLOY.md, "migrate")."""

from django.db import migrations, models
from django.db.models import Case, Max, OuterRef, Subquery, Value, When
from django.db.models.fields.json import KeyTextTransform
from django.db.models.functions import Coalesce, NullIf

BATCH = 20_000


def file_existing_entries(apps, schema_editor):
    """Each entry under the account the console found it by before: the one its detail names (an admin's change,
    a deauthorization), else its own app's meeting row's, else, for an entry of no app, any row's of its meeting.
    In batches, each committed on its own: the entries being written meanwhile never wait for the whole table
    (docs/DEPLOY.md, "migrate")."""
    AuditEntry = apps.get_model("consent", "AuditEntry")
    Meeting = apps.get_model("consent", "Meeting")
    known = Meeting.objects.exclude(account_id="").filter(uuid=OuterRef("meeting_uuid"))
    account = Coalesce(
        NullIf(KeyTextTransform("account_id", "detail"), Value("")),
        Case(When(app__isnull=True, then=Subquery(known.values("account_id")[:1])),
             default=Subquery(known.filter(app_id=OuterRef("app_id")).values("account_id")[:1])),
        Value(""),
        output_field=models.CharField(),
    )
    last = AuditEntry.objects.aggregate(last=Max("id"))["last"] or 0
    for start in range(0, last + 1, BATCH):
        # An entry whose account nothing names stays as it is: the guard refuses "" becoming "" like any rewrite.
        (AuditEntry.objects.filter(id__gte=start, id__lt=start + BATCH, account_id="")
         .alias(account=account).exclude(account="").update(account_id=account))


INDEXES = [models.Index(fields=["account_id", "-id"], name="audit_by_account"),
           models.Index(fields=["account_id", "kind", "-id"], name="audit_by_account_kind")]


def build_indexes(apps, schema_editor):
    """On PostgreSQL CONCURRENTLY, so the entries every consent action writes meanwhile never wait for the build;
    one a failed run left behind (half built, or built) is built again."""
    model = apps.get_model("consent", "AuditEntry")
    for index in INDEXES:
        if schema_editor.connection.vendor == "postgresql":
            schema_editor.remove_index(model, index, concurrently=True)
            schema_editor.add_index(model, index, concurrently=True)
        else:
            schema_editor.add_index(model, index)


def drop_indexes(apps, schema_editor):
    model = apps.get_model("consent", "AuditEntry")
    for index in INDEXES:
        schema_editor.remove_index(model, index)


class Migration(migrations.Migration):
    atomic = False

    dependencies = [('consent', '0009_audit_entry_account')]

    operations = [
        migrations.RunPython(file_existing_entries, migrations.RunPython.noop, elidable=True),
        migrations.SeparateDatabaseAndState(
            state_operations=[migrations.AddIndex(model_name="auditentry", index=index) for index in INDEXES],
            database_operations=[migrations.RunPython(build_indexes, drop_indexes)],
        ),
    ]
