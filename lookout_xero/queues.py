"""The Celery queues lookout_xero's tasks are routed to, so each kind of work has its workers.

A long full-sync plan of a very large organisation must not delay other organisations' drains,
and housekeeping must run whatever the backlog. Plain constants, safe to import from settings:

    CELERY_TASK_ROUTES = lookout_xero.queues.TASK_ROUTES
"""

EDITS = "lookout_xero.edits"  # drains a save or Push now asked for: a person is waiting
PLAN = "lookout_xero.plan"  # full syncs and previews: read Xero, plan every funder
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
    "lookout_xero.drain_outbox": {"queue": DRAIN},  # dispatch sends a person's drain to EDITS
    "lookout_xero.process_webhooks": {"queue": WEBHOOKS},
    "lookout_xero.sweep_outbox": {"queue": HOUSEKEEPING},
    "lookout_xero.check_alerts": {"queue": HOUSEKEEPING},
    "lookout_xero.prune_logs": {"queue": HOUSEKEEPING},
}
