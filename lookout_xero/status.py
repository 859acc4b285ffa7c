"""What the admin shows about a connection's health and a run's progress. Reads only; no HTTP."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime

from django.db.models import Count, Q
from django.utils import timezone

from .models import OutboxEntry, SyncRun, XeroConnection, XeroContactLink


@dataclass(frozen=True)
class Health:
    key: str  # disabled | syncing | healthy | paused | error
    label: str
    reason: str = ""


def health(
    connection: XeroConnection, *, active_run: SyncRun | None = None, pending: int = 0
) -> Health:
    """One word for the state of a customer's sync, and why when it needs a person."""
    if not connection.enabled:
        return Health("disabled", "Disabled")
    if connection.state == XeroConnection.State.ERROR:
        return Health("error", "Error", connection.error_message)
    if connection.is_paused:
        until = timezone.localtime(connection.paused_until)
        return Health(
            "paused", "Paused", f"Xero's daily limit is used up; resumes {until:%d %b %H:%M}."
        )
    if active_run or pending:
        return Health("syncing", "Syncing")
    return Health("healthy", "Healthy")


def progress(run: SyncRun) -> dict:
    """A run's counts, percentage and estimated time left, for the live progress bar."""
    done = run.done
    percent = (
        100
        if run.status == SyncRun.Status.COMPLETED
        else (min(100, round(100 * done / run.in_scope)) if run.in_scope else 0)
    )
    eta_seconds = None
    if run.status == SyncRun.Status.RUNNING and run.started_at and 0 < done < run.in_scope:
        elapsed = (timezone.now() - run.started_at).total_seconds()
        eta_seconds = round(elapsed / done * (run.in_scope - done))
    return {
        "id": run.pk,
        "status": run.status,
        "status_label": run.get_status_display(),
        "dry_run": run.dry_run,
        "in_scope": run.in_scope,
        "done": done,
        "percent": percent,
        "eta_seconds": eta_seconds,
        "created": run.created,
        "linked": run.linked,
        "updated": run.updated,
        "unchanged": run.unchanged,
        "conflicts": run.conflicts,
        "failed": run.failed,
        "message": run.message,
    }


def summary(connection: XeroConnection) -> dict:
    """Everything the status panel shows, in a handful of queries whatever the data size."""
    links = XeroContactLink.objects.filter(connection=connection).aggregate(
        conflicts=Count("pk", filter=Q(state=XeroContactLink.State.CONFLICT)),
        failed=Count("pk", filter=Q(state=XeroContactLink.State.FAILED)),
        synced=Count("pk", filter=Q(state=XeroContactLink.State.SYNCED)),
    )
    pending = OutboxEntry.objects.filter(connection=connection).count()
    run = connection.runs.filter(dry_run=False).order_by("-created_at").first()
    active = run if run and run.status in (SyncRun.Status.PENDING, SyncRun.Status.RUNNING) else None
    state = health(connection, active_run=active, pending=pending)
    return {
        "health": asdict(state),
        "last_synced_at": _iso(connection.last_synced_at),
        "pending": pending,
        **links,
        "minute_remaining": connection.min_limit_remaining,
        "day_remaining": connection.day_limit_remaining,
        "limits_seen_at": _iso(connection.limits_seen_at),
        "xero_tenant_name": connection.xero_tenant_name,
        "run": progress(run) if run else None,
    }


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None
