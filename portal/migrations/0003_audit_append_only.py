"""On PostgreSQL the database itself refuses to change or delete an audit entry.

AuditEntry.save and .delete already refuse, but a queryset's update() or delete(), raw SQL or a
psql session would not ask them. The trigger allows one kind of UPDATE only: setting actor_id to
NULL and nothing else, which is what deleting a user does to their entries (on_delete=SET_NULL;
actor_name keeps who it was). TRUNCATE stays possible for the owner of the table (test
databases are emptied that way); production should also run the web process as a role that owns
no tables (see README). SQLite has no such triggers worth the name here; it is the development default.

This lives in the portal app rather than next to the table in models_service so that it does not
clash with that app's own migrations, which another change is adding at the same time.
"""

from django.db import migrations

CREATE = """
CREATE OR REPLACE FUNCTION dmaas_audit_append_only() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND NEW.actor_id IS NULL
       AND (to_jsonb(NEW) - 'actor_id') = (to_jsonb(OLD) - 'actor_id') THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'audit entries are append-only: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER dmaas_audit_append_only
    BEFORE UPDATE OR DELETE ON models_service_auditentry
    FOR EACH ROW EXECUTE FUNCTION dmaas_audit_append_only();
"""

DROP = """
DROP TRIGGER IF EXISTS dmaas_audit_append_only ON models_service_auditentry;
DROP FUNCTION IF EXISTS dmaas_audit_append_only();
"""


def _run(schema_editor, sql: str) -> None:
    # A cursor, not schema_editor.execute: that one formats the SQL, and RAISE's % is not a parameter.
    if schema_editor.connection.vendor == "postgresql":
        with schema_editor.connection.cursor() as cursor:
            cursor.execute(sql)


def create(apps, schema_editor):
    _run(schema_editor, CREATE)


def drop(apps, schema_editor):
    _run(schema_editor, DROP)


class Migration(migrations.Migration):
    dependencies = [
        ("models_service", "0001_audit"),
        ("portal", "0002_role_groups"),
    ]

    operations = [migrations.RunPython(create, drop)]
