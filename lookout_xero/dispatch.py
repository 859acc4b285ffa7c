"""Enqueue lookout_xero's Celery tasks by name.

Services send work through here instead of importing `tasks` (which imports services): the
imports follow the data, one way. Nothing in the app imports this module back.
"""

from __future__ import annotations

import logging

from celery import current_app
from django.apps import apps
from django.db import router, transaction

from . import queues

logger = logging.getLogger(__name__)

DRAIN_OUTBOX = "lookout_xero.drain_outbox"
START_FULL_SYNC = "lookout_xero.start_full_sync"
PROCESS_WEBHOOKS = "lookout_xero.process_webhooks"
READ_CHANGED_CONTACTS = "lookout_xero.read_changed_contacts"


def send(task_name: str, *args, countdown: float | None = None, queue: str | None = None) -> bool:
    """Publish a task now. A broker outage is logged, not raised: the outbox sweep catches up.

    `queue` overrides the task's route (`queues.TASK_ROUTES`), for a drain a person waits for.
    """
    options = {"queue": queue} if queue else {}
    try:
        current_app.send_task(task_name, args=args, countdown=countdown, **options)
    except Exception as exc:
        logger.warning("Could not enqueue %s%s (%s); the sweep will retry", task_name, args, exc)
        return False
    return True


def send_on_commit(
    task_name: str, *args, countdown: float | None = None, queue: str | None = None
) -> None:
    """Publish once the surrounding transaction commits; nothing if it rolls back."""
    transaction.on_commit(
        lambda: send(task_name, *args, countdown=countdown, queue=queue), using=database()
    )


def database() -> str:
    """The database lookout_xero's rows are written to: the transaction a publish waits for."""
    return router.db_for_write(apps.get_model("lookout_xero", "OutboxEntry"))


def drain_on_commit(connection_id: int) -> None:
    """A drain of work nobody is watching for (a full sync's backlog, a bookkeeper's change)."""
    send_on_commit(DRAIN_OUTBOX, connection_id)


def edit_drain(connection_id: int) -> bool:
    """Publish now a drain a person is waiting for (a save, Push now): it goes ahead of planning
    and backlog drains, on the queue workers take first (`queues.EDITS`)."""
    return send(DRAIN_OUTBOX, connection_id, queue=queues.EDITS)


def edit_drain_on_commit(connection_id: int) -> None:
    transaction.on_commit(lambda: edit_drain(connection_id), using=database())


def full_sync_on_commit(run_id: int, *, countdown: float | None = None) -> None:
    send_on_commit(START_FULL_SYNC, run_id, countdown=countdown)


def process_webhooks(connection_id: int) -> bool:
    """Publish now: the events are stored (autocommit) before the webhook is answered."""
    return send(PROCESS_WEBHOOKS, connection_id)
