"""The sweep (beat, every 30 s or so): what a broker or worker outage, or a pause, left behind.

Four jobs, each one or two queries however many connections there are: end the pauses that
are over; plan again the full syncs nobody is planning; drain again the organisations whose
work is due and whose drain was lost; read again the webhook events whose task was lost.
"""

from __future__ import annotations

from datetime import timedelta

from django.db.models import Q
from django.utils import timezone

from .. import conf, dispatch
from ..models import SyncRun, XeroConnection


def sweep() -> dict[str, int]:
    """Re-enqueue what a broker or worker outage, or a pause, left behind."""
    end_pauses()
    return {
        "runs": restart_runs(),
        "connections": restart_drains(),
        "webhooks": restart_webhooks(),
    }


def end_pauses() -> None:
    """A pause for Xero's day limit that is over: the connection is usable again."""
    ended_pauses = XeroConnection.objects.filter(paused_until__lte=timezone.now())
    if ended_pauses.exists():  # (the sweep of an idle system only reads)
        ended_pauses.update(paused_until=None)


def restart_runs() -> int:
    """Full syncs whose task was lost, or whose planner died; returns how many."""
    now = timezone.now()
    usable = XeroConnection.objects.usable()
    stale = now - timedelta(minutes=1)
    runs = SyncRun.objects.filter(
        connection__in=usable, status=SyncRun.Status.PENDING, created_at__lt=stale
    )
    # A worker that died while planning leaves its run RUNNING, unplanned, and silent.
    stuck = now - timedelta(seconds=conf.get("LEASE_SECONDS"))
    orphaned = SyncRun.objects.filter(
        connection__in=usable,
        status=SyncRun.Status.RUNNING,
        planned_at__isnull=True,
        heartbeat_at__lt=stuck,
    )
    orphaned_ids = list(orphaned.values_list("pk", flat=True))
    if orphaned_ids:  # (the sweep of an idle system only reads)
        SyncRun.objects.filter(pk__in=orphaned_ids).update(status=SyncRun.Status.PENDING)
    run_ids = sorted({*runs.values_list("pk", flat=True), *orphaned_ids})
    for run_id in run_ids:
        dispatch.send(dispatch.START_FULL_SYNC, run_id)
    return len(run_ids)


def restart_drains() -> int:
    """Organisations with work due and nobody holding the lease; returns how many."""
    # Their drain was lost, or its holder died. (A live holder renews its lease and loops
    # until the outbox is empty: no need to nudge it.)
    now = timezone.now()
    connection_ids = list(
        XeroConnection.objects.usable()
        .filter(outbox__due_at__lte=now)
        .filter(Q(lease_expires_at__isnull=True) | Q(lease_expires_at__lt=now))
        .values_list("pk", flat=True)
        .distinct()
    )
    for connection_id in connection_ids:
        dispatch.send(dispatch.DRAIN_OUTBOX, connection_id)
    return len(connection_ids)


def restart_webhooks() -> int:
    """Webhook events whose task was lost (broker outage) or whose lease holder died."""
    now = timezone.now()
    with_events = list(
        XeroConnection.objects.filter(webhook_events__isnull=False)
        .filter(Q(lease_expires_at__isnull=True) | Q(lease_expires_at__lt=now))
        .filter(Q(enabled=False) | Q(pk__in=XeroConnection.objects.usable()))
        .values_list("pk", flat=True)
        .distinct()
    )
    for connection_id in with_events:
        dispatch.send(dispatch.PROCESS_WEBHOOKS, connection_id)
    return len(with_events)
