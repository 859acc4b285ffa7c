"""The outbox: a funder waiting to be pushed. Queued by saves, drained by workers, swept by beat."""

from __future__ import annotations

from datetime import timedelta

from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.utils import timezone

from .. import conf
from ..models import OutboxEntry, SyncLog, SyncRun, XeroConnection, XeroContactLink
from .common import send_task

# --- the outbox -------------------------------------------------------------------------------


def queue_funder(connection_id: int, funder_id) -> None:
    """Upsert the funder's outbox row: a hundred saves of one funder are one pending push."""
    now = timezone.now()
    updated = OutboxEntry.objects.filter(connection_id=connection_id, funder_id=funder_id).update(
        version=F("version") + 1, due_at=now, attempts=0, last_error=""
    )
    if not updated:
        try:
            with transaction.atomic():
                OutboxEntry.objects.create(
                    connection_id=connection_id, funder_id=funder_id, due_at=now
                )
        except IntegrityError:  # a concurrent save created it first
            OutboxEntry.objects.filter(connection_id=connection_id, funder_id=funder_id).update(
                version=F("version") + 1, due_at=now, attempts=0
            )


class _DrainOnCommit:
    """An on-commit callback that knows its connection, so one transaction enqueues one drain."""

    def __init__(self, connection_id: int) -> None:
        self.connection_id = connection_id

    def __call__(self) -> None:
        send_task("drain_outbox", self.connection_id)


def enqueue_drain_on_commit(connection_id: int) -> None:
    db = transaction.get_connection()
    # Django drops a rolled-back block's callbacks from this list, so the check stays right.
    for _sids, func, _robust in db.run_on_commit:
        if isinstance(func, _DrainOnCommit) and func.connection_id == connection_id:
            return
    transaction.on_commit(_DrainOnCommit(connection_id))


def push_now(connection: XeroConnection, funder_ids) -> int:
    """Queue these funders for pushing now (also brings back one set to "do not sync")."""
    if not connection.enabled:
        return 0
    ids = list(funder_ids)
    XeroContactLink.objects.filter(
        connection=connection, funder_id__in=ids, state=XeroContactLink.State.IGNORED
    ).update(state=XeroContactLink.State.PENDING)
    for funder_id in ids:
        queue_funder(connection.pk, funder_id)
    enqueue_drain_on_commit(connection.pk)
    return len(ids)


def retry_failed(connection: XeroConnection) -> int:
    """Queue every funder whose last push failed (conflicts wait for a person instead)."""
    ids = XeroContactLink.objects.filter(connection=connection, state=XeroContactLink.State.FAILED)
    return push_now(connection, ids.values_list("funder_id", flat=True))


# --- the sweep and retention ------------------------------------------------------------------


def sweep() -> dict[str, int]:
    """Re-enqueue what a broker or worker outage, or a pause, left behind."""
    now = timezone.now()
    usable = XeroConnection.objects.filter(enabled=True, state=XeroConnection.State.OK).filter(
        Q(paused_until__isnull=True) | Q(paused_until__lte=now)
    )
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
        send_task("start_full_sync", run_id)
    connection_ids = list(
        usable.filter(outbox__due_at__lte=now).values_list("pk", flat=True).distinct()
    )
    for connection_id in connection_ids:
        send_task("drain_outbox", connection_id)
    return {"runs": len(run_ids), "connections": len(connection_ids)}


def prune_logs(days: int | None = None) -> int:
    days = conf.get("LOG_RETENTION_DAYS") if days is None else days
    deleted, _ = SyncLog.objects.filter(
        created_at__lt=timezone.now() - timedelta(days=days)
    ).delete()
    return deleted
