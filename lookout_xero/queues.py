"""The Celery queues lookout_xero's tasks are routed to, so each kind of work has its workers.

A long full-sync plan of a very large organisation must not delay other organisations' drains,
and housekeeping must run whatever the backlog. Plain constants, safe to import from settings:

    CELERY_TASK_ROUTES = lookout_xero.queues.TASK_ROUTES
"""

PLAN = "lookout_xero.plan"  # full syncs and previews: read Xero, plan every funder
DRAIN = "lookout_xero.drain"  # push pending funders: many short tasks, latency matters
WEBHOOKS = "lookout_xero.webhooks"  # what Xero tells us about contacts changed there
HOUSEKEEPING = "lookout_xero.housekeeping"  # the sweep, alerts, log retention

ALL = (PLAN, DRAIN, WEBHOOKS, HOUSEKEEPING)

TASK_ROUTES = {
    "lookout_xero.start_full_sync": {"queue": PLAN},
    "lookout_xero.drain_outbox": {"queue": DRAIN},
    "lookout_xero.process_webhooks": {"queue": WEBHOOKS},
    "lookout_xero.sweep_outbox": {"queue": HOUSEKEEPING},
    "lookout_xero.check_alerts": {"queue": HOUSEKEEPING},
    "lookout_xero.prune_logs": {"queue": HOUSEKEEPING},
}
