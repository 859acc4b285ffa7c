"""The Enabled switch and what a person starts or stops: full syncs, previews, cancels."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from ..models import OutboxEntry, SyncRun, XeroConnection
from .common import clear_error, send_task
from .outbox import enqueue_drain_on_commit

# --- the switch ---------------------------------------------------------------------------------


def before_connection_save(connection: XeroConnection) -> set[str]:
    """Note what this save changes, so `after_connection_save` can act on it.

    Returns the fields beyond the editable ones that this save must write.
    """
    touched: set[str] = set()
    previous = XeroConnection.objects.filter(pk=connection.pk).first() if connection.pk else None
    credentials_changed = previous is None or (
        (previous.client_id, previous.client_secret, previous.scope)
        != (connection.client_id, connection.client_secret, connection.scope)
    )
    if previous is None or previous.client_secret != connection.client_secret:
        connection.client_secret_set_at = timezone.now()
        touched.add("client_secret_set_at")
    if credentials_changed and previous is not None:
        # New credentials: the old token and the old verdict on them no longer hold.
        connection.access_token = ""
        connection.access_token_expires_at = None
        clear_error(connection)
        touched |= {
            "access_token",
            "access_token_expires_at",
            "state",
            "error_code",
            "error_message",
        }
    connection._lx_enabling = connection.enabled and not (previous and previous.enabled)
    connection._lx_disabling = bool(previous and previous.enabled and not connection.enabled)
    connection._lx_credentials_changed = credentials_changed and previous is not None
    # Another Client ID is probably another Xero organisation: only a full sync is safe then.
    connection._lx_client_changed = bool(previous and previous.client_id != connection.client_id)
    return touched


def after_connection_save(connection: XeroConnection) -> None:
    if connection._lx_enabling:
        start_full_sync(connection, trigger=SyncRun.Trigger.ENABLED)
    elif connection._lx_disabling:
        stop_syncing(connection)
    elif connection._lx_credentials_changed and connection.enabled:
        # Fixed credentials resume the work that was waiting for them.
        last_run = connection.runs.filter(dry_run=False).first()
        if connection._lx_client_changed or (last_run and last_run.status == SyncRun.Status.FAILED):
            start_full_sync(connection, trigger=SyncRun.Trigger.MANUAL)
        else:
            enqueue_drain_on_commit(connection.pk)


def start_full_sync(connection: XeroConnection, *, trigger: str) -> SyncRun:
    """Record a full sync and start it once the surrounding transaction commits."""
    connection.runs.filter(
        dry_run=False, status__in=[SyncRun.Status.PENDING, SyncRun.Status.RUNNING]
    ).update(
        status=SyncRun.Status.CANCELLED,
        finished_at=timezone.now(),
        message="Replaced by a new run.",
    )
    run = SyncRun.objects.create(connection=connection, trigger=trigger)
    transaction.on_commit(lambda: send_task("start_full_sync", run.pk))
    return run


def stop_syncing(connection: XeroConnection) -> None:
    """Disabled: drop what was waiting (the next enable syncs everything) and end any run."""
    OutboxEntry.objects.filter(connection=connection).delete()
    connection.runs.filter(
        dry_run=False, status__in=[SyncRun.Status.PENDING, SyncRun.Status.RUNNING]
    ).update(
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
        transaction.on_commit(lambda: send_task("start_full_sync", run.pk))
    return run


def cancel_run(run: SyncRun, *, by: str = "") -> bool:
    """Stop a full sync: planning stops at its next chunk, and what it queued is not pushed.

    Funders edited since the run queued them (a newer outbox version) stay queued: those are
    changes a person made, not the run's.
    """
    cancelled = SyncRun.objects.filter(
        pk=run.pk, status__in=[SyncRun.Status.PENDING, SyncRun.Status.RUNNING]
    ).update(
        status=SyncRun.Status.CANCELLED,
        finished_at=timezone.now(),
        message=f"Cancelled by {by}." if by else "Cancelled.",
    )
    if cancelled:
        OutboxEntry.objects.filter(run=run, version=1).delete()
        OutboxEntry.objects.filter(run=run).update(run=None)
    return bool(cancelled)
