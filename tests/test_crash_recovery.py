"""A worker killed with SIGKILL (the OOM killer, a deploy out of grace time) loses nothing.

Real worker processes, the real broker of the run (Redis, RabbitMQ or the filesystem one) and
the default LEASE_SECONDS: what is measured is what production gets. Each test prints how long
the organisation took to converge after the kill.
"""

from __future__ import annotations

import time

import pytest
from django.db import transaction

from lookout_xero.models import OutboxEntry, SyncRun
from tests.helpers import CLIENT_ID, CLIENT_SECRET, make_connection, make_funder, wait_until

# Each waits out the production lease: about 50 s, so `make test-all` runs them, not `make test`.
pytestmark = [pytest.mark.worker, pytest.mark.slow]

RECOVERY_BOUND = 90  # seconds, from the kill until every funder is in Xero
HOLD = 15  # seconds the fake Xero holds the answer the killed worker was waiting for


def kill_and_restart(worker, settings: dict[str, str] | None = None) -> float:
    killed_at = time.monotonic()
    worker.stop()  # SIGKILL to the worker, its pool and its beat
    worker.start(purge=False, settings=settings)
    return killed_at


def test_a_worker_killed_mid_write_is_taken_over_within_the_bound(worker, xero, organisation):
    org = xero.add_organisation(CLIENT_ID, CLIENT_SECRET)
    make_connection(organisation, enabled=True)
    wait_until(lambda: SyncRun.objects.filter(status="completed").exists())
    seen = len(xero.requests_for(CLIENT_ID))
    xero.delay_next(HOLD, method="POST")  # the first write of the batch: its answer is held
    with transaction.atomic():
        for i in range(200):
            make_funder(organisation, f"Member {i:03}", email=f"m{i:03}@example.org")
    wait_until(
        lambda: any(r.method == "POST" for r in xero.requests_for(CLIENT_ID)[seen:]), timeout=30
    )
    killed_at = kill_and_restart(worker)

    wait_until(
        lambda: len(org.contacts) == 200 and not OutboxEntry.objects.exists(),
        timeout=RECOVERY_BOUND + 30,
        interval=0.5,
    )
    recovered = time.monotonic() - killed_at
    print(f"\nkilled mid-write: all 200 funders in Xero {recovered:.1f} s after the SIGKILL")
    assert recovered < RECOVERY_BOUND
    names = [c["Name"] for c in org.contacts.values()]
    assert len(names) == len(set(names)) == 200  # nothing lost, nothing twice


def test_a_worker_killed_while_planning_a_full_sync_is_taken_over_within_the_bound(
    worker, xero, organisation
):
    org = xero.add_organisation(CLIENT_ID, CLIENT_SECRET)
    for i in range(120):
        make_funder(organisation, f"Member {i:03}")
    xero.delay_next(HOLD, method="GET", path_contains="/Contacts")  # the planner's first read
    make_connection(organisation, enabled=True)
    wait_until(
        lambda: any(
            r.method == "GET" and "/Contacts" in r.path for r in xero.requests_for(CLIENT_ID)
        ),
        timeout=30,
    )
    assert SyncRun.objects.get().status == "running"
    killed_at = kill_and_restart(worker)

    run = wait_until(
        lambda: SyncRun.objects.filter(status="completed").first(),
        timeout=RECOVERY_BOUND + 30,
        interval=0.5,
    )
    wait_until(lambda: len(org.contacts) == 120, timeout=30)
    recovered = time.monotonic() - killed_at
    print(f"\nkilled while planning: the full sync completed {recovered:.1f} s after the SIGKILL")
    assert recovered < RECOVERY_BOUND
    assert (run.in_scope, run.created, run.done) == (120, 120, 120)
    assert len({c["Name"] for c in org.contacts.values()}) == 120


# Production's sweep and backoff, not the tests' fast ones: the recovery measured is theirs.
PRODUCTION = {
    "LOOKOUT_XERO_SWEEP_SECONDS": "30",
    "LOOKOUT_XERO_RETRY_BASE_SECONDS": "5",
    "LOOKOUT_XERO_RETRY_MAX_SECONDS": "900",
}


def test_a_worker_killed_mid_write_while_xero_misbehaves_converges_within_the_bound(
    worker, xero, organisation
):
    """Xero answers 10% of calls with a 500, 5% with a minute 429 (Retry-After 1), drops 3%
    (half after applying the write), issues 5-second tokens and revokes them once; a worker is
    killed with a write in flight at 100 of 200 funders."""
    worker.stop()
    worker.start(settings=PRODUCTION)
    org = xero.add_organisation(CLIENT_ID, CLIENT_SECRET)
    make_connection(organisation, enabled=True)
    wait_until(lambda: SyncRun.objects.filter(status="completed").exists())
    token_ttl, xero.token_ttl = xero.token_ttl, 5
    try:
        xero.misbehave(server_errors=0.10, minute_limits=0.05, drops=0.03)
        with transaction.atomic():
            for i in range(200):
                make_funder(organisation, f"Member {i:03}", email=f"m{i:03}@example.org")
        wait_until(lambda: len(org.contacts) >= 100, timeout=RECOVERY_BOUND, interval=0.05)
        xero.delay_next(HOLD, method="POST")  # the next write's answer is held...
        wait_until(lambda: write_in_flight(xero), timeout=RECOVERY_BOUND, interval=0.05)
        killed_at = kill_and_restart(worker, PRODUCTION)  # ...and its worker killed meanwhile
        xero.expire_tokens()  # the token the dead worker held is revoked
        wait_until(
            lambda: len(org.contacts) >= 200 and not OutboxEntry.objects.exists(),
            timeout=RECOVERY_BOUND + 30,
            interval=0.5,
        )
        recovered = time.monotonic() - killed_at
    finally:
        xero.misbehave()
        xero.token_ttl = token_ttl
    calls = len(xero.requests_for(CLIENT_ID))
    print(f"\nkilled mid-write under faults: converged in {recovered:.1f} s ({calls} calls)")
    assert recovered < RECOVERY_BOUND
    names = [c["Name"] for c in org.contacts.values()]
    assert len(names) == len(set(names)) == 200  # nothing lost, nothing twice


def write_in_flight(xero) -> bool:
    """The organisation's latest call is a write Xero has been holding for half a second."""
    calls = [r for r in xero.requests_for(CLIENT_ID) if "/Contacts" in r.path]
    latest = calls[-1] if calls else None
    return bool(
        latest
        and latest.method == "POST"
        and latest.answered_at is None
        and time.monotonic() - latest.received_at > 0.5
    )
