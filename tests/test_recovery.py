"""Recovery while Xero misbehaves, in-process: how long work waits after a failed call, and
who brings an organisation's drain back after its worker died.

The waits are the production ones (RETRY_BASE_SECONDS 5): a retry after one failed call
among successes is due within 5 s; while Xero keeps failing, the wait doubles.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from celery.signals import before_task_publish
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from lookout_xero import services
from lookout_xero.models import OutboxEntry, SyncLog, XeroConnection
from tests.helpers import CLIENT_ID, CLIENT_SECRET, make_connection, make_funder

pytestmark = pytest.mark.django_db

BASE = 5  # RETRY_BASE_SECONDS, as in production


@pytest.fixture
def production_backoff(settings, xero):
    settings.LOOKOUT_XERO = {
        **settings.LOOKOUT_XERO,
        "RETRY_BASE_SECONDS": BASE,
        "RETRY_MAX_SECONDS": 900,
    }


@pytest.fixture
def org(xero):
    return xero.add_organisation(CLIENT_ID, CLIENT_SECRET)


@pytest.fixture
def connection(organisation, org, production_backoff):
    connection = make_connection(organisation, enabled=True)
    services.run_full_sync(connection.runs.get().pk)
    return connection


def waits() -> list[float]:
    """Seconds until each pending funder is due again."""
    now = timezone.now()
    return [(e.due_at - now).total_seconds() for e in OutboxEntry.objects.all()]


def due_now() -> None:
    OutboxEntry.objects.update(due_at=timezone.now())


def test_one_failed_call_among_successes_is_retried_in_seconds_and_the_drain_goes_on(
    xero, connection, organisation, org
):
    for i in range(150):  # three batches of 50
        make_funder(organisation, f"Member {i:03}")
    xero.fail_next(500, method="POST")  # the first batch's write
    follow_up = services.drain_once(connection.pk)
    assert len(org.contacts) == 100  # the other two batches went on meanwhile
    assert OutboxEntry.objects.count() == 50
    assert all(0 < wait <= BASE for wait in waits())
    assert 0 < follow_up.seconds <= BASE + 1
    due_now()
    services.drain_once(connection.pk)
    assert len(org.contacts) == 150


def test_while_xero_keeps_failing_the_wait_doubles_and_a_success_resets_it(
    xero, connection, organisation, org
):
    make_funder(organisation, "Patient")
    xero.fail_next(503, times=3, method="POST")
    ranges = []
    for _ in range(3):
        OutboxEntry.objects.update(looked_up=True)  # writes only: no look-up between them
        services.drain_once(connection.pk)
        (wait,) = waits()
        ranges.append(wait)
        due_now()
    first, second, third = ranges
    assert BASE / 2 - 1 < first <= BASE
    assert BASE - 1 < second <= 2 * BASE
    assert 2 * BASE - 1 < third <= 4 * BASE
    services.drain_once(connection.pk)
    assert len(org.contacts) == 1 and not OutboxEntry.objects.exists()
    # Xero took a push: the next failure is an isolated one again.
    make_funder(organisation, "Later")
    xero.fail_next(503, method="POST")
    services.drain_once(connection.pk)
    assert all(wait <= BASE for wait in waits())


def test_a_funder_that_failed_before_waits_no_longer_than_any_once_xero_works_again(
    xero, connection, organisation, org
):
    unlucky = make_funder(organisation, "Unlucky")
    OutboxEntry.objects.filter(funder_id=unlucky.pk).update(attempts=4)  # failed four times
    make_funder(organisation, "Lucky")
    services.drain_once(connection.pk)  # both pushed: Xero works
    assert XeroConnection.objects.get(pk=connection.pk).last_synced_at is not None
    unlucky.email = "unlucky@example.org"
    unlucky.save()
    OutboxEntry.objects.update(attempts=4)
    xero.fail_next(500, method="POST")
    services.drain_once(connection.pk)
    (wait,) = waits()
    assert wait <= BASE  # not 40-80 s for its own earlier failures
    assert OutboxEntry.objects.get().attempts == 5  # still counted towards MAX_ATTEMPTS
    assert SyncLog.objects.filter(outcome="retrying").count() == 1


@pytest.fixture
def published():
    """(task name, args, eta) of every message published while the test runs."""
    seen = []

    def record(sender=None, headers=None, body=None, **kwargs):
        eta = headers.get("eta")
        seen.append((sender, list(body[0]), parse_datetime(eta) if eta else None))

    before_task_publish.connect(record, weak=False)
    yield seen
    before_task_publish.disconnect(record)


def test_a_drain_comes_back_when_a_dead_workers_lease_expires_not_at_a_later_sweep(
    connection, organisation, published
):
    make_funder(organisation, "Waiting")
    services.Lease.acquire(connection.pk)
    published.clear()
    assert services.sweep()["at_lease_expiry"] == 0 and published == []  # renewed just now
    renewed = timezone.now() + timedelta(seconds=42)  # renewed 3 s ago: its holder is on it
    XeroConnection.objects.filter(pk=connection.pk).update(lease_expires_at=renewed)
    assert services.sweep()["at_lease_expiry"] == 0 and published == []
    expires = timezone.now() + timedelta(seconds=10)  # not renewed for 35 s: maybe dead
    XeroConnection.objects.filter(pk=connection.pk).update(lease_expires_at=expires)
    result = services.sweep()
    assert (result["connections"], result["at_lease_expiry"]) == (0, 1)
    ((task, args, eta),) = published
    assert (task, args) == ("lookout_xero.drain_outbox", [connection.pk, True])
    assert timedelta(0) <= eta - expires <= timedelta(seconds=2)
    # Then: the lease has expired, and the drain with waited_for_lease takes over.
    XeroConnection.objects.filter(pk=connection.pk).update(
        lease_expires_at=timezone.now() - timedelta(seconds=1)
    )
    services.drain_once(connection.pk, waited_for_lease=True)
    assert not OutboxEntry.objects.exists()
