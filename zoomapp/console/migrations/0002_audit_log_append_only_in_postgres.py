"""The audit log refuses UPDATE and DELETE in the database itself (PostgreSQL), not only through the ORM:
a raw SQL statement, a shell or another program cannot rewrite history either. (TRUNCATE, which test runs use to
reset the database, is not a row change and stays possible for the database owner.)"""

from django.db import migrations

FORBID = """
CREATE OR REPLACE FUNCTION consent_auditentry_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'the audit log is append-only (% refused)', TG_OP;
END;
$$ LANGUAGE plpgsql;
DROP TRIGGER IF EXISTS consent_auditentry_append_only ON consent_auditentry;
CREATE TRIGGER consent_auditentry_append_only BEFORE UPDATE OR DELETE ON consent_auditentry
    FOR EACH ROW EXECUTE FUNCTION consent_auditentry_append_only();
"""
ALLOW = """
DROP TRIGGER IF EXISTS consent_auditentry_append_only ON consent_auditentry;
DROP FUNCTION IF EXISTS consent_auditentry_append_only();
"""


def forbid(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(FORBID, params=None)


def allow(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(ALLOW, params=None)


class Migration(migrations.Migration):
    dependencies = [
        ("console", "0001_initial"),
        ("consent", "0001_initial"),
    ]

    operations = [migrations.RunPython(forbid, allow)]
