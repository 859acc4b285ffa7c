"""The outbox: queueing a funder to be pushed, for saves, changes made without a save and people.

Drained by `drain`; what beat does about a lost drain is in `sweep`.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db import IntegrityError, connections, router, transaction
from django.db.models import F, QuerySet
from django.utils import timezone

from .. import conf, dispatch
from ..models import OutboxEntry, XeroConnection

# --- the outbox -------------------------------------------------------------------------------


def queue_funder(connection_id: int, funder_id) -> bool:
    """Upsert the funder's outbox row: a hundred saves of one funder are one pending push.

    One statement. Returns True when it created the row (the funder's first pending change).
    Each save bumps the row's version: a push only clears the row if it pushed the latest.
    """
    now = timezone.now()
    db = connections[router.db_for_write(OutboxEntry)]
    if db.vendor not in UPSERT_VENDORS:
        return _queue_funder_portably(connection_id, funder_id, now)
    table = db.ops.quote_name(OutboxEntry._meta.db_table)
    with db.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} "  # noqa: S608 - a table name from the model, values bound
            "(connection_id, funder_id, version, attempts, due_at, looked_up, last_error, "
            "created_at) VALUES (%s, %s, 1, 0, %s, %s, '', %s) "
            "ON CONFLICT (connection_id, funder_id) DO UPDATE SET "
            f"version = {table}.version + 1, attempts = 0, due_at = excluded.due_at, "
            "last_error = '' RETURNING version",
            [connection_id, funder_id, now, False, now],
        )
        (version,) = cursor.fetchone()
    return version == 1


# Both speak INSERT ... ON CONFLICT ... RETURNING (SQLite since 3.35).
UPSERT_VENDORS = {"postgresql", "sqlite"}


@dataclass(frozen=True)
class Queued:
    """What a save's upsert found: the connection, a new row or not, and a drain asked for."""

    connection_id: int
    created: bool
    drain_requested: bool


def queue_funder_of_organisation(organisation_id, funder_id) -> Queued | None:
    """Queue the funder if its organisation has an enabled connection; None if it has none.

    One statement on PostgreSQL and SQLite: the insert reads the connection itself, so a
    connection disabled a moment ago queues nothing, and the save costs no separate look-up.
    """
    db = connections[router.db_for_write(OutboxEntry)]
    if db.vendor not in UPSERT_VENDORS:
        return _queue_funder_of_organisation_portably(organisation_id, funder_id)
    connection = db.ops.quote_name(XeroConnection._meta.db_table)
    now = timezone.now()
    queued = _upsert_returning(
        db,
        f"SELECT c.id, %s, 1, 0, %s, %s, '', %s FROM {connection} c "  # noqa: S608
        "WHERE c.organisation_id = %s AND c.enabled",
        [funder_id, now, False, now, organisation_id],
    )
    return queued[0] if queued else None


CHANGED_CHUNK = 500


def queue_changed_funders(funders) -> int:
    """Queue funders changed without a save: ``QuerySet.update()``, ``bulk_update()``,
    ``bulk_create()``, raw SQL, a data migration. None of these sends ``post_save``.

    ``funders`` is a QuerySet of funders (only their keys are read), or instances, or primary
    keys. The rules are a save's: membership funders (archived ones too, so an archive reaches
    Xero) of organisations with an enabled connection, and a drain asked for on commit. One
    statement per 500 funders on PostgreSQL and SQLite. Returns how many were queued.
    """
    model = conf.funder_model()
    if isinstance(funders, QuerySet) and funders.model is model:
        funders = funders.values_list("pk", flat=True)
    ids = [getattr(funder, "pk", funder) for funder in funders]
    organisation = model._meta.get_field(conf.get("ORGANISATION_FIELD"))
    members = model._default_manager.filter(
        **{conf.get("MEMBERSHIP_FIELD"): conf.get("MEMBERSHIP_VALUE")}
    )
    queued: list[Queued] = []
    for start in range(0, len(ids), CHANGED_CHUNK):
        chunk = members.filter(pk__in=ids[start : start + CHANGED_CHUNK])
        queued += _queue_members(chunk.values(lx_funder=F("pk"), lx_org=F(organisation.attname)))
    for connection_id in {q.connection_id for q in queued if q.created and not q.drain_requested}:
        ask_for_drain_on_commit(connection_id)
    return len(queued)


def _queue_members(members) -> list[Queued]:
    """Queue these funders (``lx_funder``, ``lx_org``) if their organisation has an enabled
    connection."""
    db = connections[router.db_for_write(OutboxEntry)]
    if db.vendor not in UPSERT_VENDORS:
        found = (
            _queue_funder_of_organisation_portably(m["lx_org"], m["lx_funder"]) for m in members
        )
        return [queued for queued in found if queued is not None]
    connection = db.ops.quote_name(XeroConnection._meta.db_table)
    # Compiled for the database it runs on (the outbox's), not the default one.
    members_sql, members_params = members.query.get_compiler(using=db.alias).as_sql()
    now = timezone.now()
    return _upsert_returning(
        db,
        f"SELECT c.id, m.lx_funder, 1, 0, %s, %s, '', %s FROM {connection} c "  # noqa: S608
        f"JOIN ({members_sql}) m ON m.lx_org = c.organisation_id WHERE c.enabled",
        [now, False, now, *members_params],
    )


def upsert_statement(db, select: str) -> str:
    """Insert the rows ``select`` yields, or bump the version of those already pending;
    return (connection, version, whether its drain is asked for) for each.

    ``select`` yields (connection, funder, version, attempts, due_at, looked_up, last_error,
    created_at); it must end in a WHERE clause (SQLite's upsert needs one after a SELECT).
    """
    outbox = db.ops.quote_name(OutboxEntry._meta.db_table)
    connection = db.ops.quote_name(XeroConnection._meta.db_table)
    return (
        f"INSERT INTO {outbox} "  # noqa: S608 - table names from the models
        "(connection_id, funder_id, version, attempts, due_at, looked_up, last_error, "
        f"created_at) {select} "
        "ON CONFLICT (connection_id, funder_id) DO UPDATE SET "
        f"version = {outbox}.version + 1, attempts = 0, due_at = excluded.due_at, "
        f"last_error = '' RETURNING connection_id, version, (SELECT drain_requested "
        f"FROM {connection} WHERE id = {outbox}.connection_id)"
    )


def _upsert_returning(db, select: str, params: list) -> list[Queued]:
    with db.cursor() as cursor:
        cursor.execute(upsert_statement(db, select), params)
        rows = cursor.fetchall()
    return [
        Queued(connection_id, version == 1, bool(asked)) for connection_id, version, asked in rows
    ]


def _queue_funder_of_organisation_portably(organisation_id, funder_id) -> Queued | None:
    found = (
        XeroConnection.objects.filter(organisation_id=organisation_id, enabled=True)
        .values_list("pk", "drain_requested")
        .first()
    )
    if found is None:
        return None
    connection_id, drain_requested = found
    return Queued(connection_id, queue_funder(connection_id, funder_id), drain_requested)


def _queue_funder_portably(connection_id: int, funder_id, now) -> bool:
    rows = OutboxEntry.objects.filter(connection_id=connection_id, funder_id=funder_id)
    bump = {"version": F("version") + 1, "attempts": 0, "last_error": "", "due_at": now}
    if rows.update(**bump):
        return False
    try:
        with transaction.atomic():
            OutboxEntry.objects.create(connection_id=connection_id, funder_id=funder_id, due_at=now)
    except IntegrityError:  # a concurrent save created it first
        rows.update(**bump)
        return False
    return True


def ask_for_drain_on_commit(connection_id: int) -> None:
    """Once committed, publish a drain unless one is already asked for and not finished.

    The marker is set outside the funder's transaction, so it never holds a lock on the
    connection row while the host's transaction runs. The drain clears it when it ends.
    """

    def ask() -> None:
        asked = XeroConnection.objects.filter(pk=connection_id, drain_requested=False).update(
            drain_requested=True
        )
        if asked and not dispatch.edit_drain(connection_id):
            # The broker is down: let the next save try again (the sweep also will).
            XeroConnection.objects.filter(pk=connection_id).update(drain_requested=False)

    transaction.on_commit(ask, using=router.db_for_write(OutboxEntry))
