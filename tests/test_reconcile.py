"""The reconcile: changes that skip save() still reach the fake Xero, found locally, never twice.

In-process against the fake Xero over HTTP with the real drain; the beat task once through a
real worker.
"""

from __future__ import annotations

import importlib
from io import StringIO

import pytest
from celery.signals import before_task_publish
from django.conf import settings as django_settings
from django.core.management import call_command
from django.db import connection as db
from django.db.models.signals import post_save
from django.test.utils import CaptureQueriesContext

from lookout_xero import queues, services, tasks
from lookout_xero.models import OutboxEntry, XeroConnection, XeroContactLink
from tests.helpers import (
    CLIENT_ID,
    CLIENT_SECRET,
    drain_all,
    make_connection,
    make_funder,
    wait_until,
)

pytestmark = pytest.mark.django_db

# The module (the package exports its function under the same name).
reconcile_module = importlib.import_module("lookout_xero.services.reconcile")


@pytest.fixture
def org(xero):
    return xero.add_organisation(CLIENT_ID, CLIENT_SECRET, name="Harbour Trust Ltd")


@pytest.fixture
def connection(organisation, org):
    """An enabled connection whose (empty) full sync has already run."""
    connection = make_connection(organisation, enabled=True)
    services.run_full_sync(connection.runs.get().pk)
    return connection


def contact_of(org, funder) -> dict:
    link = XeroContactLink.objects.get(funder=funder)
    return org.contacts[link.xero_contact_id]


def reconcile_command(*args) -> str:
    out = StringIO()
    call_command("xero_reconcile", *args, stdout=out)
    return out.getvalue()


def synced_members(organisation, connection, count):
    members = [make_funder(organisation, f"Member {i}", phone="555 0100") for i in range(count)]
    drain_all(connection)
    assert XeroContactLink.objects.filter(state="synced").count() == count
    return members


def test_changes_made_without_a_save_reach_xero_after_a_reconcile(
    xero, org, organisation, connection
):
    from project.funders.models import Funder

    updated, raw_sql, bulk_updated, raw_saved, archived = synced_members(
        organisation, connection, 5
    )
    Funder.objects.filter(pk=updated.pk).update(phone="555 0001")  # QuerySet.update()
    with db.cursor() as cursor:
        cursor.execute(
            "UPDATE funders_funder SET phone = %s WHERE id = %s", ["555 0002", raw_sql.pk]
        )
    bulk_updated.phone = "555 0003"
    Funder.objects.bulk_update([bulk_updated], ["phone"])
    # What loaddata does, and what a process killed before its receiver ran leaves behind.
    raw_saved.phone = "555 0004"
    raw_saved.save_base(raw=True)
    created, *_ = Funder.objects.bulk_create(
        [Funder(organisation=organisation, name="Bulk Created", funder_type="membership")]
    )
    Funder.objects.filter(pk=archived.pk).update(archived=True)
    assert not OutboxEntry.objects.exists()  # no post_save told the app anything
    calls_before = len(xero.requests)

    assert reconcile_command() == (
        f"Organisation {organisation.pk}: reconcile queued 6 changes made without a save\n"
    )
    assert len(xero.requests) == calls_before  # found locally: not one call to Xero
    drain_all(connection)

    phones = {f.name: contact_of(org, f)["Phones"][0]["PhoneNumber"] for f in Funder.objects.all()}
    assert phones["Member 0"] == "555 0001" and phones["Member 1"] == "555 0002"
    assert phones["Member 2"] == "555 0003" and phones["Member 3"] == "555 0004"
    assert contact_of(org, created)["Name"] == "Bulk Created"
    assert contact_of(org, archived)["ContactStatus"] == "ARCHIVED"

    # Right after: nothing differs any more, and finding that out calls no one.
    calls_before = len(xero.requests)
    [result] = services.reconcile()
    assert result.queued == 0 and not OutboxEntry.objects.exists()
    assert len(xero.requests) == calls_before


def test_a_save_signal_the_host_disconnected_is_caught_up(xero, org, organisation, connection):
    # A receiver that never ran (disconnected signals, a process killed after the commit).
    [member] = synced_members(organisation, connection, 1)
    member.phone = "555 0009"
    with signals_disconnected():
        member.save()
    assert not OutboxEntry.objects.exists()
    assert [r.queued for r in services.reconcile()] == [1]
    drain_all(connection)
    assert contact_of(org, member)["Phones"][0]["PhoneNumber"] == "555 0009"


class signals_disconnected:
    def __enter__(self):
        self.receivers = post_save.receivers
        post_save.receivers = []
        post_save.sender_receivers_cache.clear()

    def __exit__(self, *exc):
        post_save.receivers = self.receivers
        post_save.sender_receivers_cache.clear()


def test_a_second_reconcile_right_after_queues_nothing(xero, org, organisation, connection):
    from project.funders.models import Funder

    members = synced_members(organisation, connection, 3)
    Funder.objects.filter(pk__in=[m.pk for m in members]).update(phone="555 0200")
    assert [r.queued for r in services.reconcile()] == [3]
    # Still pending in the outbox: a drain will push them; queued again they would count twice.
    assert [r.queued for r in services.reconcile()] == [0]
    drain_all(connection)
    calls_before = len(xero.requests)
    assert [r.queued for r in services.reconcile()] == [0]
    assert len(xero.requests) == calls_before


def test_an_unchanged_organisation_costs_two_queries_per_chunk(
    xero, org, organisation, connection, monkeypatch
):
    synced_members(organisation, connection, 5)
    monkeypatch.setattr(reconcile_module, "CHUNK", 2)
    with CaptureQueriesContext(db) as queries:
        [result] = services.reconcile()
    assert result.queued == 0
    # The enabled connections, and whether a full sync is under way; then funders and links
    # for each of 3 chunks, and the empty read that ends the loop.
    assert len(queries) == 2 + 3 * 2 + 1
    assert not [q for q in queries if 'id" IN (' in q["sql"]]  # key ranges, no lists of ids


def test_changed_funders_cost_no_query_each(xero, org, organisation, connection):
    from project.funders.models import Funder

    members = synced_members(organisation, connection, 6)

    def queries_to_reconcile(changed) -> int:
        Funder.objects.filter(pk__in=[m.pk for m in changed]).update(phone=f"555 {len(changed)}")
        with CaptureQueriesContext(db) as queries:
            [result] = services.reconcile()
        assert result.queued == len(changed)
        drain_all(connection)
        return len(queries)

    assert queries_to_reconcile(members[:2]) == queries_to_reconcile(members)


def test_a_disabled_organisation_is_never_reconciled(xero, org, organisation, connection):
    from project.funders.models import Funder

    members = synced_members(organisation, connection, 2)
    connection.enabled = False
    connection.save()
    Funder.objects.filter(pk__in=[m.pk for m in members]).update(phone="555 0300")
    calls_before = len(xero.requests)

    assert services.reconcile() == []
    assert reconcile_command("--organisation", str(organisation.pk)) == (
        f"Organisation {organisation.pk}: not enabled, nothing reconciled "
        "(disabled means nothing is sent).\n"
    )
    assert not OutboxEntry.objects.exists()
    assert len(xero.requests) == calls_before
    assert {c["Phones"][0]["PhoneNumber"] for c in org.contacts.values()} == {"555 0100"}


def test_a_mapping_change_makes_every_funder_whose_contact_changed_differ(
    xero, org, organisation, connection, settings
):
    members = synced_members(organisation, connection, 3)
    settings.LOOKOUT_XERO = {
        **settings.LOOKOUT_XERO,
        "MAPPING": "tests.mappings.with_account_number",
    }
    assert [r.queued for r in services.reconcile()] == [3]
    drain_all(connection)
    assert {contact_of(org, m)["AccountNumber"] for m in members} == {
        f"M-{m.pk:05}" for m in members
    }
    assert [r.queued for r in services.reconcile()] == [0]


def test_funders_waiting_for_a_person_or_for_a_full_sync_are_left_alone(
    xero, org, organisation, connection
):
    from project.funders.models import Funder

    failed, ignored = synced_members(organisation, connection, 2)
    XeroContactLink.objects.filter(funder=failed).update(state="failed", last_error="refused")
    XeroContactLink.objects.filter(funder=ignored).update(state="ignored")
    Funder.objects.update(phone="555 0400")
    # A failure is retried by a person or a save, not every hour with the same error.
    assert [r.queued for r in services.reconcile()] == [0]

    services.start_full_sync(connection, trigger="manual")  # it queues everyone in scope
    [result] = services.reconcile()
    assert result.skipped == "a full sync is under way" and not OutboxEntry.objects.exists()


def test_only_the_organisation_asked_for_is_reconciled(xero, org, organisation, connection):
    from project.funders.models import Funder, Organisation

    other = Organisation.objects.create(name="Other Trust")
    xero.add_organisation("client-other", "secret-other", name="Other Ltd")
    other_connection = make_connection(
        other, client_id="client-other", secret="secret-other", enabled=True
    )
    services.run_full_sync(other_connection.runs.get().pk)
    mine = make_funder(organisation, "Mine")
    theirs = make_funder(other, "Theirs")
    OutboxEntry.objects.all().delete()
    Funder.objects.update(phone="555 0500")
    output = reconcile_command("--organisation", str(other.pk))
    assert output == f"Organisation {other.pk}: reconcile queued 1 changes made without a save\n"
    assert list(OutboxEntry.objects.values_list("funder_id", flat=True)) == [theirs.pk]
    assert mine.pk not in OutboxEntry.objects.values_list("funder_id", flat=True)


def test_the_beat_task_goes_to_the_plan_queue_never_in_a_drains_way():
    seen = []

    def record(sender=None, routing_key=None, **kwargs):
        seen.append((sender, routing_key))

    before_task_publish.connect(record, weak=False)
    try:
        tasks.reconcile.delay()
    finally:
        before_task_publish.disconnect(record)
    assert seen == [("lookout_xero.reconcile", queues.PLAN)]


def test_the_beat_schedule_ships_beside_the_routes_and_the_demo_uses_it():
    shipped = {entry["task"]: entry["schedule"] for entry in queues.BEAT_SCHEDULE.values()}
    assert shipped["lookout_xero.reconcile"].total_seconds() == 3600  # hourly by default
    assert set(shipped) <= set(queues.TASK_ROUTES)
    beat_tasks = (
        tasks.sweep_outbox,
        tasks.check_alerts,
        tasks.reconcile,
        tasks.read_changes,
        tasks.prune_logs,
    )
    assert set(shipped) == {task.name for task in beat_tasks}
    demo = {e["task"]: e["schedule"] for e in django_settings.CELERY_BEAT_SCHEDULE.values()}
    assert set(demo) == set(shipped)
    assert demo["lookout_xero.reconcile"].total_seconds() == 300  # every few minutes
    assert shipped["lookout_xero.read_changes"].total_seconds() == 300


@pytest.mark.django_db(transaction=True)
def test_the_beat_task_through_a_real_worker_reaches_xero(worker, xero, organisation):
    from project.funders.models import Funder

    org = xero.add_organisation(CLIENT_ID, CLIENT_SECRET)
    member = make_funder(organisation, "Kea Trust", phone="555 0101")
    make_connection(organisation, enabled=True)
    wait_until(lambda: XeroContactLink.objects.filter(state="synced").exists())
    wait_until(lambda: not XeroConnection.objects.filter(drain_requested=True).exists())
    Funder.objects.filter(pk=member.pk).update(phone="555 0102")

    tasks.reconcile.delay()
    wait_until(lambda: contact_of(org, member)["Phones"][0]["PhoneNumber"] == "555 0102")
