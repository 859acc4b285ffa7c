"""Small helpers shared by the tests."""

from __future__ import annotations

import time

from lookout_xero.models import XeroConnection

CLIENT_ID = "client-org-a"
CLIENT_SECRET = "s3cret-org-a-DO-NOT-LEAK"


def make_funder(organisation, name, **fields):
    # Imported here: the second host's tests (tests/hosts/) run without the demo app installed.
    from project.funders.models import Funder

    fields.setdefault("funder_type", "membership")
    return Funder.objects.create(organisation=organisation, name=name, **fields)


def make_connection(
    organisation,
    *,
    client_id=CLIENT_ID,
    secret=CLIENT_SECRET,
    enabled=False,
    scope="accounting.contacts",
):
    return XeroConnection.objects.create(
        organisation=organisation,
        client_id=client_id,
        client_secret=secret,
        scope=scope,
        enabled=enabled,
    )


def wait_until(predicate, timeout: float = 20.0, interval: float = 0.1):
    """Poll until predicate() is truthy; return its value, or fail with what was last seen."""
    deadline = time.monotonic() + timeout
    value = None
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout}s (last value: {value!r})")


def drain_all(connection, rounds=5):
    """Drain in-process until the outbox is empty (making backed-off entries due at once)."""
    from django.utils import timezone

    from lookout_xero import services
    from lookout_xero.models import OutboxEntry

    for _ in range(rounds):
        OutboxEntry.objects.update(due_at=timezone.now())
        services.drain(connection.pk)
        if not OutboxEntry.objects.exists():
            return
