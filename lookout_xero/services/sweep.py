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
    runs = restart_runs()
    drained, at_lease_expiry = restart_drains()
    return {
        "runs": runs,
        "connections": drained,
        "at_lease_expiry": at_lease_expiry,
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


# A lease not renewed for this long may have lost its holder (calls take about a second).
UNRENEWED_SECONDS = 5


def restart_drains() -> tuple[int, int]:
    """Organisations with work due and nobody holding the lease: drained now; and those whose
    lease went unrenewed: drained when it expires. Returns how many of each."""
    # Their drain was lost, or its holder died. (A live holder renews its lease before every
    # call and loops until the outbox is empty: no need to nudge it.) A lease unrenewed for a
    # few seconds may be a dead worker's: a drain comes back the moment it expires, to take
    # over then (or to leave the work to a holder that renewed it meanwhile), not at the first
    # sweep after that.
    now = timezone.now()
    unrenewed = now + timedelta(seconds=max(conf.get("LEASE_SECONDS") - UNRENEWED_SECONDS, 0))
    due = list(
        XeroConnection.objects.usable()
        .filter(outbox__due_at__lte=now)
        .filter(Q(lease_expires_at__isnull=True) | Q(lease_expires_at__lt=unrenewed))
        .values_list("pk", "lease_expires_at")
        .distinct()
    )
    free = [pk for pk, expires in due if expires is None or expires < now]
    for connection_id in free:
        dispatch.send(dispatch.DRAIN_OUTBOX, connection_id)
    at_expiry = [(pk, expires) for pk, expires in due if expires is not None and expires >= now]
    for connection_id, expires in at_expiry:
        seconds = (expires - now).total_seconds() + 1
        dispatch.send(dispatch.DRAIN_OUTBOX, connection_id, True, countdown=seconds)
    return len(free), len(at_expiry)


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
