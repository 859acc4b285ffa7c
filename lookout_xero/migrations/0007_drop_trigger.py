"""Drop the queue trigger and its function that earlier versions put on the funder table.

Those versions installed, on PostgreSQL, a row trigger named ``lookout_xero_queue_<hash>`` on
the host's funder table and a function of the same name. The app now installs nothing on the
host's tables (changes made without a save are found by the reconcile instead), so any left
in the database go, whichever schema they are in (a host with a schema per tenant had one per
funder table). Nothing to do on other databases, which never had them.
"""

from django.db import migrations

# ``lookout_xero_queue_`` and the first ten hex digits of a hash of the trigger's SQL.
OURS = r"^lookout_xero_queue_[0-9a-f]{10}$"


def drop_queue_triggers(apps, schema_editor) -> None:
    if schema_editor.connection.vendor != "postgresql":
        return
    with schema_editor.connection.cursor() as cursor:
        cursor.execute(
            "SELECT quote_ident(t.tgname), t.tgrelid::regclass::text FROM pg_trigger t "
            "WHERE t.tgname ~ %s AND NOT t.tgisinternal",
            [OURS],
        )
        for name, table in cursor.fetchall():
            cursor.execute(f"DROP TRIGGER IF EXISTS {name} ON {table}")
        cursor.execute(
            "SELECT p.oid::regprocedure::text FROM pg_proc p "
            "WHERE p.proname ~ %s AND p.prorettype = 'trigger'::regtype AND p.pronargs = 0",
            [OURS],
        )
        for (function,) in cursor.fetchall():
            cursor.execute(f"DROP FUNCTION IF EXISTS {function}")


class Migration(migrations.Migration):
    dependencies = [
        ("lookout_xero", "0006_pending_credentials"),
    ]

    operations = [
        migrations.RunPython(drop_queue_triggers, migrations.RunPython.noop),
    ]
