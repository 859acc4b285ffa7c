"""What the team reads about the work: runs finished, and sync log rows."""

from __future__ import annotations

from django.db.models import F
from django.utils import timezone

from .. import conf, mapping
from ..models import OutboxEntry, SyncLog, SyncRun, XeroConnection

Outcome = SyncLog.Outcome


def complete_run_if_done(run_id: int) -> None:
    if OutboxEntry.objects.filter(run_id=run_id).exists():
        return
    run = SyncRun.objects.filter(
        pk=run_id, status=SyncRun.Status.RUNNING, planned_at__isnull=False
    ).first()
    if run:
        # Funders deleted while the run went on left its scope with no outcome to count.
        outcomes = [F(name) for name in SyncRun.OUTCOME_COUNTERS]
        SyncRun.objects.filter(pk=run_id).update(in_scope=sum(outcomes[1:], outcomes[0]))
        finish_run(run, SyncRun.Status.COMPLETED)


def finish_run(run: SyncRun, status: str, message: str = "") -> None:
    now = timezone.now()
    SyncRun.objects.filter(pk=run.pk).update(status=status, finished_at=now, message=message)
    if status == SyncRun.Status.COMPLETED:
        XeroConnection.objects.filter(pk=run.connection_id).update(last_synced_at=now)
    kind = "Preview" if run.dry_run else "Full sync"
    write_log(run.connection, Outcome.RUN, run=run, message=f"{kind} {status}. {message}".strip())


def write_log(connection, outcome, **fields) -> None:
    """Sync log rows are written on their own, so they survive a rollback of the work."""
    log_row(connection, outcome, **fields).save()


def log_row(
    connection,
    outcome,
    *,
    run=None,
    funder=None,
    contact_id="",
    http_status=None,
    message="",
    warnings=None,
) -> SyncLog:
    name, email = mapping.log_identity(conf.mapping_function(), funder) if funder else ("", "")
    return SyncLog(
        connection_id=connection.pk,
        run_id=run.pk if isinstance(run, SyncRun) else run,
        funder=funder,
        funder_name=name[:300],
        funder_email=email[:300],
        xero_contact_id=contact_id or "",
        outcome=outcome,
        http_status=http_status,
        message=message,
        warnings=warnings or [],
    )
