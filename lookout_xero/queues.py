"""The Celery queues lookout_xero's tasks are routed to, and the periodic tasks beat runs.

A long full-sync plan of a very large organisation must not delay other organisations' drains,
and housekeeping must run whatever the backlog. Plain constants and a function of plain values,
safe to import from a settings module:

    CELERY_TASK_ROUTES = lookout_xero.queues.TASK_ROUTES
    CELERY_BEAT_SCHEDULE = lookout_xero.queues.beat_schedule(LOOKOUT_XERO)
"""

from datetime import timedelta

EDITS = "lookout_xero.edits"  # drains a save or Push now asked for: a person is waiting
PLAN = "lookout_xero.plan"  # full syncs, previews and reconciles: read and plan every funder
DRAIN = "lookout_xero.drain"  # every other drain: a full sync's backlog, retries, the sweep
WEBHOOKS = "lookout_xero.webhooks"  # what Xero tells us about contacts changed there
HOUSEKEEPING = "lookout_xero.housekeeping"  # the sweep, alerts, log retention

# In the order a worker should take them: a worker started without -Q consumes these, and with
# Redis's "priority" queue order (see REDIS_TRANSPORT_OPTIONS) it empties the first non-empty one
# first. docs/architecture.md, "Queues and priorities", says why.
ALL = (EDITS, PLAN, DRAIN, WEBHOOKS, HOUSEKEEPING)

# Redis's transport takes the queues in round-robin by default; "priority" takes them in the
# order the worker lists them, so an edit's drain is taken before any queued planning or backlog.
REDIS_TRANSPORT_OPTIONS = {"queue_order_strategy": "priority"}

TASK_ROUTES = {
    "lookout_xero.start_full_sync": {"queue": PLAN},
    # Reads every membership funder of each enabled organisation: with the plans, never in
    # the way of a drain.
    "lookout_xero.reconcile": {"queue": PLAN},
    "lookout_xero.drain_outbox": {"queue": DRAIN},  # dispatch sends a person's drain to EDITS
    "lookout_xero.process_webhooks": {"queue": WEBHOOKS},
    # Without a webhook, what changed in Xero is read now and then: the webhooks' queue.
    "lookout_xero.read_changed_contacts": {"queue": WEBHOOKS},
    "lookout_xero.read_changes": {"queue": HOUSEKEEPING},
    "lookout_xero.sweep_outbox": {"queue": HOUSEKEEPING},
    "lookout_xero.check_alerts": {"queue": HOUSEKEEPING},
    "lookout_xero.prune_logs": {"queue": HOUSEKEEPING},
}

RECONCILE_SECONDS = 3600  # LOOKOUT_XERO["RECONCILE_SECONDS"] when it is not set
READ_CHANGES_SECONDS = 300  # LOOKOUT_XERO["READ_CHANGES_SECONDS"] when it is not set


def beat_schedule(
    lookout_xero: dict | None = None, *, sweep_seconds: float = 30, alert_seconds: float = 60
) -> dict:
    """``CELERY_BEAT_SCHEDULE`` for lookout_xero; ``lookout_xero`` is the ``LOOKOUT_XERO``
    dict the settings module builds (its ``RECONCILE_SECONDS`` and ``READ_CHANGES_SECONDS``).
    Merge in your own tasks."""
    reconcile = (lookout_xero or {}).get("RECONCILE_SECONDS", RECONCILE_SECONDS)
    read_changes = (lookout_xero or {}).get("READ_CHANGES_SECONDS", READ_CHANGES_SECONDS)
    return {
        "lookout-xero-sweep": {
            "task": "lookout_xero.sweep_outbox",
            "schedule": timedelta(seconds=sweep_seconds),
        },
        "lookout-xero-alerts": {
            "task": "lookout_xero.check_alerts",
            "schedule": timedelta(seconds=alert_seconds),
        },
        "lookout-xero-reconcile": {
            "task": "lookout_xero.reconcile",
            "schedule": timedelta(seconds=reconcile),
        },
        "lookout-xero-read-changes": {
            "task": "lookout_xero.read_changes",
            "schedule": timedelta(seconds=read_changes),
        },
        "lookout-xero-prune": {"task": "lookout_xero.prune_logs", "schedule": timedelta(hours=6)},
    }


BEAT_SCHEDULE = beat_schedule()  # with the defaults
