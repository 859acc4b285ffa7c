"""The outbox: a funder waiting to be pushed. Queued by saves, drained by workers, swept by beat."""

from __future__ import annotations

from datetime import timedelta

from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from .. import conf, dispatch
from ..models import OutboxEntry, SyncLog, SyncRun, XeroConnection, XeroContactLink

# --- the outbox -------------------------------------------------------------------------------


def queue_funder(connection_id: int, funder_id) -> bool:
    """Upsert the funder's outbox row: a hundred saves of one funder are one pending push.

    Returns True when a drain must be asked for: the row is new, or it was waiting for a later
    time (a backoff). A row already due has its drain asked for already; that drain loops until
    the outbox is empty and only clears a row whose version it pushed, so it takes this change.
    """
    now = timezone.now()
    rows = OutboxEntry.objects.filter(connection_id=connection_id, funder_id=funder_id)
    bump = {"version": F("version") + 1, "attempts": 0, "last_error": ""}
    if rows.filter(due_at__lte=now).update(**bump):
        return False
    if rows.update(**bump, due_at=now):
        return True
    try:
        with transaction.atomic():
            OutboxEntry.objects.create(connection_id=connection_id, funder_id=funder_id, due_at=now)
    except IntegrityError:  # a concurrent save created it first, and asked for its drain
        rows.update(**bump)
        return False
    return True


def push_now(connection: XeroConnection, funder_ids) -> int:
    """Queue these funders for pushing now (also brings back one set to "do not sync")."""
    if not connection.enabled:
        return 0
    ids = list(funder_ids)
    XeroContactLink.objects.filter(
        connection=connection, funder_id__in=ids, state=XeroContactLink.State.IGNORED
    ).update(state=XeroContactLink.State.PENDING)
    asked = [queue_funder(connection.pk, funder_id) for funder_id in ids]
    if any(asked):
        dispatch.drain_on_commit(connection.pk)
    return len(ids)


def retry_failed(connection: XeroConnection) -> int:
    """Queue every funder whose last push failed (conflicts wait for a person instead)."""
    ids = XeroContactLink.objects.filter(connection=connection, state=XeroContactLink.State.FAILED)
    return push_now(connection, ids.values_list("funder_id", flat=True))


# --- the sweep and retention ------------------------------------------------------------------


def sweep() -> dict[str, int]:
    """Re-enqueue what a broker or worker outage, or a pause, left behind."""
    now = timezone.now()
    usable = XeroConnection.objects.usable()
    ended_pauses = XeroConnection.objects.filter(paused_until__lte=now)
    if ended_pauses.exists():
        ended_pauses.update(paused_until=None)
    stale = now - timedelta(minutes=1)
    runs = SyncRun.objects.filter(
        connection__in=usable, status=SyncRun.Status.PENDING, created_at__lt=stale
    )
    # A worker that died while planning leaves its run RUNNING and unplanned: plan it again.
    stuck = now - timedelta(seconds=conf.get("LEASE_SECONDS"))
    orphaned = SyncRun.objects.filter(
        connection__in=usable,
        status=SyncRun.Status.RUNNING,
        planned_at__isnull=True,
        started_at__lt=stuck,
    )
    if orphaned.exists():  # (the sweep of an idle system only reads)
        orphaned.update(status=SyncRun.Status.PENDING)
    run_ids = list(runs.values_list("pk", flat=True))
    for run_id in run_ids:
        dispatch.send(dispatch.START_FULL_SYNC, run_id)
    connection_ids = list(
        usable.filter(outbox__due_at__lte=now).values_list("pk", flat=True).distinct()
    )
    for connection_id in connection_ids:
        dispatch.send(dispatch.DRAIN_OUTBOX, connection_id)
    return {"runs": len(run_ids), "connections": len(connection_ids)}


def prune_logs(days: int | None = None) -> int:
    days = conf.get("LOG_RETENTION_DAYS") if days is None else days
    deleted, _ = SyncLog.objects.older_than(days).delete()
    return deleted
