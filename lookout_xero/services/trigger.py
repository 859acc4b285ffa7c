"""On PostgreSQL the database queues a funder's change itself, in the save's own statement.

Why: Django saves in autocommit, so a post_save upsert runs after the funder's UPDATE has
committed. It is a second statement and a second commit, which costs a save about as much
again as the save itself (docs/performance.md, scenario 5), and a process that dies between
the two commits loses the change. A row trigger on the funder table writes the outbox row
inside the funder's statement and transaction instead: no round trip, no second commit, and
nothing to lose in between. It queues what never sends ``post_save`` too (``QuerySet.update()``,
raw SQL).

The post_save receiver still asks for drains, and it must learn what the trigger did without a
query: when the trigger queues a change it says so with a NOTICE, which PostgreSQL sends back
with the statement's own result. The notice names the trigger's definition (a hash of its SQL).
No notice, or one from a trigger left over from other settings, and the receiver goes its own
way, as on SQLite or with ``DATABASE_TRIGGER`` off: it queues the change itself if its
organisation may have an enabled connection. A missing trigger costs speed, never a change.

``migrate`` installs it (post_migrate, like Django's content types), replaces it when the
settings it is built from change, removes it while migrations run (they may rename a column it
reads), and leaves it out when ``DATABASE_TRIGGER`` is off.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from django.db import connections, router, transaction

from .. import conf
from ..models import OutboxEntry, XeroConnection
from . import notices, outbox

PREFIX = "lookout_xero_queue_"


@dataclass(frozen=True)
class Definition:
    tag: str  # a hash of the SQL below: the trigger's and its function's names end in it
    funder_table: str
    statements: tuple[str, ...]

    @property
    def name(self) -> str:
        return PREFIX + self.tag


def definition(using: str) -> Definition:
    """The trigger these settings ask for, on this PostgreSQL database."""
    db = connections[using]
    qn = db.ops.quote_name
    funders = conf.funder_model()._meta
    membership = funders.get_field(conf.get("MEMBERSHIP_FIELD"))
    value = membership.get_db_prep_value(conf.get("MEMBERSHIP_VALUE"), db, prepared=False)
    pk = qn(funders.pk.column)
    organisation = qn(funders.get_field(conf.get("ORGANISATION_FIELD")).column)
    connection = qn(XeroConnection._meta.db_table)
    table = qn(funders.db_table)
    # A save's own upsert (outbox.upsert_statement), and the same answer: the connection it
    # queued for, and whether that connection now needs a drain asked for.
    # The membership test is in the body, not in a WHEN clause: PostgreSQL would then refuse
    # the host's migrations that change that column's type (a longer max_length, say).
    member = db.ops.compose_sql(f"NEW.{qn(membership.column)} IS NOT DISTINCT FROM %s", [value])
    upsert = outbox.upsert_statement(
        db,
        f"SELECT c.id, NEW.{pk}, 1, 0, now(), false, '', now() FROM {connection} c "  # noqa: S608
        f"WHERE c.organisation_id = NEW.{organisation} AND c.enabled",
    )
    body = (
        "DECLARE queued_for bigint; queued_version integer; already_asked boolean; BEGIN "
        f"IF NOT ({member}) THEN RETURN NULL; END IF; "
        f"{upsert} INTO queued_for, queued_version, already_asked; "
        # Only a save that queued something says so: the rest cost the receiver no parsing.
        "IF queued_for IS NOT NULL THEN "
        # A host that silenced notices would never hear this one: unsilence them for the rest
        # of this transaction (a SET clause on the function would cost every save).
        "IF current_setting('client_min_messages') IN ('warning', 'error') THEN "
        "PERFORM set_config('client_min_messages', 'notice', true); END IF; "
        f"RAISE NOTICE '{notices.PREFIX} % % % %', TG_NAME, NEW.{pk}, queued_for, "
        f"CASE WHEN queued_version = 1 AND NOT already_asked THEN '{notices.DRAIN}' "
        "ELSE '-' END; END IF; RETURN NULL; END"
    )
    function = (
        "CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql "
        f"AS $lookout_xero$ {body} $lookout_xero$"
    )
    trigger = (
        f"CREATE TRIGGER {{name}} AFTER INSERT OR UPDATE ON {table} FOR EACH ROW "
        "EXECUTE FUNCTION {name}()"
    )
    tag = hashlib.sha256(f"{function}\n{trigger}".encode()).hexdigest()[:10]
    name = PREFIX + tag
    statements = (function.replace("{name}", name), trigger.replace("{name}", name))
    return Definition(tag, table, statements)


def install(using: str) -> str:
    """Make the database's trigger match the settings; returns what was done, for the log."""
    db = connections[using]
    if db.vendor != "postgresql":
        return "not PostgreSQL"
    if not router.allow_migrate_model(using, OutboxEntry):
        return "not this database"
    # Migrated back to zero, the outbox is gone and a trigger would break every save.
    wanted = _wanted(db) and OutboxEntry._meta.db_table in db.introspection.table_names()
    target = definition(using) if wanted else None
    with transaction.atomic(using=using), db.cursor() as cursor:
        cursor.execute(
            "SELECT t.tgname, t.tgrelid = to_regclass(%s) FROM pg_trigger t "
            "WHERE t.tgname LIKE %s AND NOT t.tgisinternal",
            [target.funder_table if target else None, OURS],
        )
        present = cursor.fetchall()
        if target and present == [(target.name, True)]:
            return "up to date"
        _remove(using)
        if target is None:
            return "removed" if present else "off"
        for statement in target.statements:
            cursor.execute(statement)
    return "installed"


OURS = PREFIX.replace("_", r"\_") + "%"  # a LIKE pattern for our triggers and functions


def _wanted(db) -> bool:
    # psycopg2 has no notice handlers: its saves could not tell what the trigger queued.
    return conf.get("DATABASE_TRIGGER") and db.Database.__name__ == "psycopg"


def out_of_step(using: str) -> str:
    """Why the database's trigger does not match the settings, or "" when it does."""
    db = connections[using]
    if db.vendor != "postgresql" or not router.allow_migrate_model(using, OutboxEntry):
        return ""
    if OutboxEntry._meta.db_table not in db.introspection.table_names():
        return ""  # not migrated yet: migrate installs it
    with db.cursor() as cursor:
        cursor.execute(
            "SELECT t.tgname FROM pg_trigger t WHERE t.tgname LIKE %s AND NOT t.tgisinternal",
            [OURS],
        )
        present = [name for (name,) in cursor.fetchall()]
    if not _wanted(db):
        return f"{', '.join(present)} is installed but not wanted" if present else ""
    if present != [_trigger_name(using)]:
        return (
            "the funder table has no queue trigger for these settings"
            + (f" ({', '.join(present)} is from others)" if present else "")
            + ": until migrate builds it, saves are queued by post_save, one more statement each"
        )
    return ""


def _remove(using: str) -> None:
    with transaction.atomic(using=using), connections[using].cursor() as cursor:
        cursor.execute(
            "SELECT t.tgname, t.tgrelid::regclass::text FROM pg_trigger t "
            "WHERE t.tgname LIKE %s AND NOT t.tgisinternal",
            [OURS],
        )
        for name, table in cursor.fetchall():
            cursor.execute(f"DROP TRIGGER {name} ON {table}")
        cursor.execute("SELECT oid::regprocedure::text FROM pg_proc WHERE proname LIKE %s", [OURS])
        for (function,) in cursor.fetchall():
            cursor.execute(f"DROP FUNCTION {function}")


def removed_before_migrate(sender, using, plan=(), **kwargs) -> None:
    """pre_migrate: a migration may rename or drop a column the trigger reads, and every save
    would fail until post_migrate. Meanwhile the post_save receiver queues saves itself."""
    if plan and connections[using].vendor == "postgresql":
        _remove(using)


def installed_on_migrate(sender, using, verbosity=1, **kwargs) -> None:
    """post_migrate: every table exists (or is gone) by now."""
    done = install(using)
    if verbosity >= 2:
        print(f"lookout_xero: the funder table's queue trigger on {using!r}: {done}")


# --- what the trigger said ------------------------------------------------------------------------


@dataclass(frozen=True)
class Heard:
    queued: bool  # this settings' trigger queued the save: the receiver has nothing to add
    drains: list  # connections whose first pending change it queued, and no drain asked for


def heard_from_trigger(using: str, funder_pk) -> Heard:
    """What the trigger said about this save, and the drains that changes made without a
    save (``QuerySet.update()``, raw SQL) asked for meanwhile. No query."""
    # A trigger built from other settings (migrate not run since) may have queued it by other
    # rules: queue it by these too.
    trigger = notices.queued_by(using, funder_pk)  # None but on PostgreSQL
    queued = trigger is not None and trigger == _trigger_name(using)
    return Heard(queued, notices.drains_heard(using))


_names: dict = {}


def _trigger_name(using: str) -> str:
    """`definition(using).name`, built once per database and settings (on every save, else)."""
    key = (using, conf.funder_model_label(), *(conf.get(name) for name in DEFINED_BY))
    if key not in _names:
        _names[key] = definition(using).name
    return _names[key]


DEFINED_BY = ("MEMBERSHIP_FIELD", "MEMBERSHIP_VALUE", "ORGANISATION_FIELD")
