"""The Enabled switch and what a person starts or stops: full syncs, previews, cancels."""

from __future__ import annotations

from django.utils import timezone

from .. import conf, dispatch
from ..models import ConnectionChange, OutboxEntry, SyncRun, XeroConnection

# --- the switch ---------------------------------------------------------------------------------


def apply_change(connection: XeroConnection, change: ConnectionChange) -> None:
    """Act on a saved connection: switched on, switched off, or given new credentials."""
    if change.switched_on:
        start_full_sync(connection, trigger=SyncRun.Trigger.ENABLED)
    elif change.switched_off:
        stop_syncing(connection)
    elif change.credentials and connection.enabled:
        # Fixed credentials resume the work that was waiting for them. Another Client ID is
        # probably another Xero organisation: only a full sync is safe then.
        last_run = connection.runs.full_syncs().first()
        if change.client_id or (last_run and last_run.status == SyncRun.Status.FAILED):
            start_full_sync(connection, trigger=SyncRun.Trigger.MANUAL)
        else:
            dispatch.drain_on_commit(connection.pk)


def start_full_sync(connection: XeroConnection, *, trigger: str) -> SyncRun:
    """Record a full sync and start it once the surrounding transaction commits."""
    connection.runs.full_syncs().active().update(
        status=SyncRun.Status.CANCELLED,
        finished_at=timezone.now(),
        message="Replaced by a new run.",
    )
    run = SyncRun.objects.create(connection=connection, trigger=trigger)
    # A process that read "no enabled connection" just before the switch was turned on skips
    # saves for up to ENABLED_CACHE_SECONDS (`enabled`). Started that long after the commit,
    # the run reads funders that carry every change those saves made. (Any full sync, not
    # only the one enabling starts: a person may start another at once, which replaces it.)
    # A countdown, not a wait inside the task: a waiting planner would hold a worker.
    dispatch.full_sync_on_commit(run.pk, countdown=float(conf.get("ENABLED_CACHE_SECONDS")))
    return run


def stop_syncing(connection: XeroConnection) -> None:
    """Disabled: drop what was waiting (the next enable syncs everything) and end any run."""
    OutboxEntry.objects.filter(connection=connection).delete()
    connection.runs.full_syncs().active().update(
        status=SyncRun.Status.CANCELLED, finished_at=timezone.now(), message="Sync was disabled."
    )


def start_preview(connection: XeroConnection, *, enqueue: bool = True) -> SyncRun:
    """A dry run: what enabling would do, read from Xero, nothing written to Xero.

    Queued for a worker, or (``enqueue=False``) left for the caller to run with `run_full_sync`.
    """
    run = SyncRun.objects.create(
        connection=connection, trigger=SyncRun.Trigger.MANUAL, dry_run=True
    )
    if enqueue:
        dispatch.full_sync_on_commit(run.pk)
    return run


def cancel_run(run: SyncRun, *, by: str = "") -> bool:
    """Stop a full sync: planning stops at its next chunk, and what it queued is not pushed.

    Funders edited since the run queued them (a newer outbox version) stay queued: those are
    changes a person made, not the run's.
    """
    cancelled = (
        SyncRun.objects.filter(pk=run.pk)
        .active()
        .update(
            status=SyncRun.Status.CANCELLED,
            finished_at=timezone.now(),
            message=f"Cancelled by {by}." if by else "Cancelled.",
        )
    )
    if cancelled:
        OutboxEntry.objects.filter(run=run, version=1).delete()
        OutboxEntry.objects.filter(run=run).update(run=None)
    return bool(cancelled)
