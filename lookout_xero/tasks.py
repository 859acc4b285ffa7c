"""Thin Celery tasks: they take primary keys and call `services`. Never secrets in arguments."""

from __future__ import annotations

import logging

from celery import shared_task

from . import alerts, services
from .exceptions import XeroError
from .models import SyncRun

logger = logging.getLogger(__name__)

FULL_SYNC_MAX_RETRIES = 6
# Cap on how long a drain schedules its own follow-up; the sweep covers anything longer.
MAX_COUNTDOWN = 3600


@shared_task(name="lookout_xero.drain_outbox", ignore_result=True)
def drain_outbox(connection_id: int) -> None:
    """Push the organisation's pending funders; schedule the next pass if more is due later."""
    wait = services.drain(connection_id)
    if wait is not None:
        drain_outbox.apply_async(args=(connection_id,), countdown=min(wait, MAX_COUNTDOWN))


@shared_task(name="lookout_xero.start_full_sync", bind=True, ignore_result=True)
def start_full_sync(self, run_id: int) -> None:
    """Plan a full sync: match existing Xero contacts, queue every in-scope funder."""
    try:
        services.run_full_sync(run_id)
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


@shared_task(name="lookout_xero.check_alerts", ignore_result=True)
def check_alerts() -> dict:
    """Beat: e-mail the team once when a connection starts needing a person, once when it stops."""
    return alerts.check_alerts()
