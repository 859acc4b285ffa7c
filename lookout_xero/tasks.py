"""Thin Celery tasks: they take primary keys and call `services`. Never secrets in arguments.

Every decision (what to retry, when, how long to wait) is made in `services`; a task only
turns "try again in N seconds" into Celery's countdown.
"""

from __future__ import annotations

from celery import shared_task

from . import alerts, dispatch, services


@shared_task(name=dispatch.DRAIN_OUTBOX, ignore_result=True)
def drain_outbox(connection_id: int, waited_for_lease: bool = False) -> None:
    """Push the organisation's pending funders; schedule the next pass if more is due later."""
    follow_up = services.drain_once(connection_id, waited_for_lease=waited_for_lease)
    if follow_up is not None:
        dispatch.send(
            dispatch.DRAIN_OUTBOX,
            connection_id,
            follow_up.for_lease,
            countdown=follow_up.seconds,
        )


@shared_task(name=dispatch.START_FULL_SYNC, bind=True, ignore_result=True)
def start_full_sync(self, run_id: int) -> None:
    """Plan a full sync: match existing Xero contacts, queue every in-scope funder."""
    wait = services.run_full_sync(run_id, attempt=self.request.retries + 1)
    if wait is not None:
        raise self.retry(countdown=wait, max_retries=None)


@shared_task(name=dispatch.PROCESS_WEBHOOKS, ignore_result=True)
def process_webhooks(connection_id: int) -> None:
    """Read the contacts Xero's webhook events name and apply what the bookkeeper did."""
    wait = services.process_webhooks(connection_id)
    if wait is not None:
        dispatch.send(dispatch.PROCESS_WEBHOOKS, connection_id, countdown=wait)


@shared_task(name=dispatch.READ_CHANGED_CONTACTS, ignore_result=True)
def read_changed_contacts(connection_id: int) -> None:
    """Read the contacts changed in Xero since the last read, for one connection."""
    wait = services.read_changes(connection_id)
    if wait is not None:
        dispatch.send(dispatch.READ_CHANGED_CONTACTS, connection_id, countdown=wait)


@shared_task(name="lookout_xero.read_changes", ignore_result=True)
def read_changes() -> int:
    """Beat: read what changed in Xero for every connection no verified webhook reaches."""
    connections = services.connections_to_read()
    for connection_id in connections:
        dispatch.send(dispatch.READ_CHANGED_CONTACTS, connection_id)
    return len(connections)


@shared_task(name="lookout_xero.sweep_outbox", ignore_result=True)
def sweep_outbox() -> dict:
    """Beat: deliver what a broker or worker outage left in the outbox; resume paused work."""
    return services.sweep()


@shared_task(name="lookout_xero.reconcile", ignore_result=True)
def reconcile() -> dict:
    """Beat: queue funders changed without a save (found locally; no call to Xero)."""
    return {str(r.organisation_id): r.queued for r in services.reconcile()}


@shared_task(name="lookout_xero.prune_logs", ignore_result=True)
def prune_logs() -> int:
    """Beat: delete sync log rows older than LOG_RETENTION_DAYS."""
    return services.prune_logs()


@shared_task(name="lookout_xero.check_alerts", ignore_result=True)
def check_alerts() -> dict:
    """Beat: e-mail the team once when a connection starts needing a person, once when it stops."""
    return alerts.check_alerts()
