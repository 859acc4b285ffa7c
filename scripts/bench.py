"""Benchmarks of the sync engine against the fake Xero over HTTP. Prints figures, asserts nothing.

Measures, per scenario: wall seconds, Xero calls by kind, database queries, and the time the
same calls would take under Xero's 60-calls-a-minute limit. Run: `make bench` (SQLite under var/).
"""

from __future__ import annotations

import os
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")
os.environ["DATABASE_URL"] = f"sqlite:///{ROOT / 'var' / 'bench.sqlite3'}"
os.environ["CELERY_BROKER_URL"] = "memory://"  # on-commit enqueues go nowhere: we drain here
(ROOT / "var" / "bench.sqlite3").unlink(missing_ok=True)

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection as db  # noqa: E402

from lookout_xero import services  # noqa: E402
from lookout_xero.models import OutboxEntry, XeroConnection  # noqa: E402
from lookout_xero.testing.fake_xero import FakeXero  # noqa: E402
from project.funders.models import Funder, Organisation  # noqa: E402


class QueryCounter:
    def __init__(self) -> None:
        self.count = 0

    def __call__(self, execute, sql, params, many, context):
        self.count += 1
        return execute(sql, params, many, context)


def measure(label: str, fake: FakeXero, action) -> None:
    before = len(fake.requests)
    counter = QueryCounter()
    started = time.perf_counter()
    with db.execute_wrapper(counter):
        result = action()
    seconds = time.perf_counter() - started
    calls = Counter(
        f"{r.method} {'token' if 'token' in r.path else r.path.rsplit('/', 1)[-1]}"
        for r in fake.requests[before:]
    )
    xero_calls = sum(
        n for kind, n in calls.items() if "token" not in kind and "connections" not in kind
    )
    funders = result or 1
    print(
        f"{label:<44} {seconds:7.2f} s  {xero_calls:5d} Xero calls "
        f"({', '.join(f'{k} {v}' for k, v in sorted(calls.items()))})  "
        f"{counter.count:6d} queries ({counter.count / funders:.1f}/funder)  "
        f"≥{xero_calls / 60:.1f} min at 60 calls/min"
    )


def drain_everything(connection) -> None:
    while OutboxEntry.objects.filter(connection=connection).exists():
        services.drain(connection.pk)


def full_sync(connection) -> int:
    run = services.start_full_sync(connection, trigger="manual")
    services.run_full_sync(run.pk)
    drain_everything(connection)
    run.refresh_from_db()
    assert run.status == "completed", run.status
    return run.in_scope


def scenario(fake: FakeXero, size: int, preexisting: int) -> None:
    client_id = f"bench-{size}-{preexisting}"
    org_x = fake.add_organisation(client_id, "bench-secret")
    for i in range(preexisting):
        org_x.add_contact(Name=f"Existing {i}", EmailAddress=f"f{i}@example.org")
    organisation = Organisation.objects.create(name=client_id)
    Funder.objects.bulk_create(
        Funder(
            organisation=organisation,
            name=f"Funder {i:05}",
            email=f"f{i}@example.org",
            phone=f"04 555 {i:04}",
            city="Wellington",
            funder_type="membership",
        )
        for i in range(size)
    )
    connection = XeroConnection.objects.create(
        organisation=organisation, client_id=client_id, client_secret="bench-secret"
    )
    XeroConnection.objects.filter(pk=connection.pk).update(enabled=True)
    connection.refresh_from_db()
    tag = f"{size} funders, {preexisting} already in Xero"
    measure(f"full sync: {tag}", fake, lambda: full_sync(connection))
    measure(f"full sync again, nothing changed ({size})", fake, lambda: full_sync(connection))

    def edit_one_by_one(count=100):
        for funder in Funder.objects.filter(organisation=organisation)[:count]:
            funder.phone = "021 000 0000"
            funder.save()
            drain_everything(connection)
        return count

    measure("100 single edits, each drained alone", fake, edit_one_by_one)

    def edit_in_bulk(count=500):
        for funder in Funder.objects.filter(organisation=organisation)[:count]:
            funder.city = "Otaki"
            funder.save()
        drain_everything(connection)
        return count

    measure("500 edits, then one drain", fake, edit_in_bulk)

    def create_new(count=100):
        for i in range(count):
            Funder.objects.create(
                organisation=organisation, name=f"New {size} {i}", funder_type="membership"
            )
        drain_everything(connection)
        return count

    measure("100 new funders (look-up before create)", fake, create_new)
    assert len(org_x.contacts) == size + 100, len(org_x.contacts)


def main() -> None:
    call_command("migrate", verbosity=0)
    fake = FakeXero(minute_limit=10**9, day_limit=10**9, app_minute_limit=10**9).start()
    settings.LOOKOUT_XERO = {
        **settings.LOOKOUT_XERO,
        "TOKEN_URL": fake.token_url,
        "API_URL": fake.api_url,
    }
    print(
        f"database: {db.vendor}; fake Xero on {fake.url}; Xero's limits lifted to time the engine\n"
    )
    try:
        scenario(fake, 1000, preexisting=0)
        scenario(fake, 1000, preexisting=1000)
        scenario(fake, 5000, preexisting=0)
    finally:
        fake.stop()


if __name__ == "__main__":
    main()
