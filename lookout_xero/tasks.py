"""Thin Celery tasks: they take primary keys and call `services`. Never secrets in arguments."""

from __future__ import annotations

import logging

from celery import shared_task

from . import services
from .exceptions import XeroError
from .fields import UndecryptableError
from .models import SyncRun, XeroConnection

logger = logging.getLogger(__name__)

FULL_SYNC_MAX_RETRIES = 6
# Cap on how long a drain schedules its own follow-up; the sweep covers anything longer.
MAX_COUNTDOWN = 3600


@shared_task(name="lookout_xero.drain_outbox", ignore_result=True)
def drain_outbox(connection_id: int) -> None:
    """Push the organisation's pending funders; schedule the next pass if more is due later."""
    try:
        wait = services.drain(connection_id)
    except UndecryptableError as exc:
        _cannot_decrypt(connection_id, exc)
        return
    if wait is not None:
        drain_outbox.apply_async(args=(connection_id,), countdown=min(wait, MAX_COUNTDOWN))


@shared_task(name="lookout_xero.start_full_sync", bind=True, ignore_result=True)
def start_full_sync(self, run_id: int) -> None:
    """Plan a full sync: match existing Xero contacts, queue every in-scope funder."""
    try:
        services.run_full_sync(run_id)
    except UndecryptableError as exc:
        run = SyncRun.objects.filter(pk=run_id).values_list("connection_id", flat=True).first()
        _cannot_decrypt(run, exc)
        SyncRun.objects.filter(pk=run_id).update(status=SyncRun.Status.FAILED, message=str(exc))
    except services.RetryLater as later:
        raise self.retry(countdown=later.seconds, max_retries=None) from None
    except XeroError as exc:
        if exc.retryable and self.request.retries < FULL_SYNC_MAX_RETRIES:
            raise self.retry(countdown=services.backoff(self.request.retries + 1)) from None
        run = SyncRun.objects.select_related("connection").get(pk=run_id)
        services.finish_run(
            run, SyncRun.Status.FAILED, message=f"Could not read Xero's contacts: {exc}"
        )


@shared_task(name="lookout_xero.sweep_outbox", ignore_result=True)
def sweep_outbox() -> dict:
    """Beat: deliver what a broker or worker outage left in the outbox; resume paused work."""
    return services.sweep()


@shared_task(name="lookout_xero.prune_logs", ignore_result=True)
def prune_logs() -> int:
    """Beat: delete sync log rows older than LOG_RETENTION_DAYS."""
    return services.prune_logs()


def _cannot_decrypt(connection_id, exc: UndecryptableError) -> None:
    """A key was dropped too early: say so on the connection, where the team looks."""
    logger.error("Xero connection %s: %s", connection_id, exc)
    XeroConnection.objects.filter(pk=connection_id).update(
        state=XeroConnection.State.ERROR, error_code="undecryptable", error_message=str(exc)
    )
