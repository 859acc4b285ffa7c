"""Production operation in-process: queues, what the sweep and a funder save cost, leases."""

from __future__ import annotations

import importlib
from datetime import timedelta

import pytest
from django.db import connection as db
from django.db import transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from lookout_xero import dispatch, queues, services
from lookout_xero.models import OutboxEntry, SyncRun, XeroConnection
from project.funders.models import Funder, Organisation
from tests.helpers import CLIENT_ID, CLIENT_SECRET, make_connection, make_funder

pytestmark = pytest.mark.django_db


def test_each_kind_of_work_goes_to_its_own_queue(published):
    for task in (dispatch.START_FULL_SYNC, dispatch.DRAIN_OUTBOX):
        dispatch.send(task, 1)
    from lookout_xero import tasks

    tasks.sweep_outbox.delay()
    tasks.prune_logs.delay()
    tasks.check_alerts.delay()
    assert published == [
        ("lookout_xero.start_full_sync", queues.PLAN),
        ("lookout_xero.drain_outbox", queues.DRAIN),
        ("lookout_xero.sweep_outbox", queues.HOUSEKEEPING),
        ("lookout_xero.prune_logs", queues.HOUSEKEEPING),
        ("lookout_xero.check_alerts", queues.HOUSEKEEPING),
    ]
    assert set(queues.TASK_ROUTES) >= {name for name, _ in published}


def idle_connections(count: int) -> None:
    organisations = Organisation.objects.bulk_create(
        [Organisation(name=f"Idle {i:04}") for i in range(count)]
    )
    XeroConnection.objects.bulk_create(
        [
            XeroConnection(
                organisation=organisation, client_id="c", client_secret="s", enabled=True
            )
            for organisation in organisations
        ]
    )


def sweep_queries() -> int:
    with CaptureQueriesContext(db) as queries:
        services.sweep()
    return len(queries)


def test_the_sweep_costs_the_same_for_ten_or_a_thousand_idle_connections(published):
    idle_connections(10)
    with_ten = sweep_queries()
    idle_connections(990)
    with_a_thousand = sweep_queries()
    print(f"sweep with 10 idle connections: {with_ten} queries; with 1,000: {with_a_thousand}")
    assert with_ten == with_a_thousand <= 5  # stale runs, orphans, drains, webhook events
    assert published == []


def test_the_sweep_leaves_a_working_drain_alone_and_takes_over_from_a_dead_one(
    organisation, published
):
    connection = make_connection(organisation, enabled=True)
    make_funder(organisation, "Waiting")
    published.clear()
    lease = services.Lease.acquire(connection.pk)
    assert services.sweep()["connections"] == 0 and published == []  # its holder is on it
    XeroConnection.objects.filter(pk=connection.pk).update(
        lease_expires_at=timezone.now() - timedelta(seconds=1)  # the holder stopped renewing
    )
    assert services.sweep()["connections"] == 1
    assert published == [("lookout_xero.drain_outbox", queues.DRAIN)]
    with pytest.raises(services.LeaseLost):
        XeroConnection.objects.filter(pk=connection.pk).update(lease_token="someone-else")
        lease.renew()


def test_a_drain_turned_away_comes_back_once_when_the_lease_would_expire(organisation):
    connection = make_connection(organisation, enabled=True)
    services.Lease.acquire(connection.pk)
    follow_up = services.drain_once(connection.pk)
    assert follow_up.for_lease and 40 < follow_up.seconds <= 46  # LEASE_SECONDS (45) + 1
    assert services.drain_once(connection.pk, waited_for_lease=True) is None  # once only


def saving_costs(funder) -> list[str]:
    """The SQL one save of this funder runs, its own UPDATE included."""
    with CaptureQueriesContext(db) as queries:
        funder.save()
    return [query["sql"] for query in queries]


@pytest.mark.django_db(transaction=True)  # committed saves, as in production's autocommit
def test_a_save_without_an_enabled_connection_costs_no_query_at_all(
    organisation,
):
    grant = Funder.objects.create(organisation=organisation, name="Grant", funder_type="grant")
    member = make_funder(organisation, "Member")  # its save read the switch: none
    assert len(saving_costs(grant)) == 1  # the UPDATE of the funder: out of scope
    assert len(saving_costs(member)) == 1  # the UPDATE alone: known to have no connection

    connection = make_connection(organisation, enabled=False)
    assert len(saving_costs(member)) == 2  # the connection changed: read the switch again
    assert len(saving_costs(member)) == 1  # disabled: nothing more
    assert not OutboxEntry.objects.exists()

    connection.enabled = True
    connection.save()
    first, second = saving_costs(member), saving_costs(member)
    # The UPDATE, the switch read again, one upsert of its outbox row, and (the first change
    # while no drain is pending) the marker that asks for a drain once committed.
    assert len(first) == 4 and "drain_requested" in first[-1]
    assert len(second) == 2  # the UPDATE and the upsert: a drain is already asked for
    assert "ON CONFLICT" in second[-1] and "enabled" in second[-1]
    assert OutboxEntry.objects.get(connection=connection).version == 2


@pytest.mark.django_db(transaction=True)
def test_a_switch_turned_off_elsewhere_queues_nothing_while_this_process_thinks_it_on(
    organisation,
):
    connection = make_connection(organisation, enabled=True)
    member = make_funder(organisation, "Member")
    OutboxEntry.objects.all().delete()
    # Another process turns it off: this one has not heard, and still believes it on.
    XeroConnection.objects.filter(pk=connection.pk).update(enabled=False)
    assert services.may_have_enabled_connection(organisation.pk)
    assert len(saving_costs(member)) == 2  # the UPDATE, and the upsert that checks the switch
    assert not OutboxEntry.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_a_switch_change_rolled_back_is_not_remembered(organisation):
    connection = make_connection(organisation, enabled=True)
    member = make_funder(organisation, "Member")
    with pytest.raises(RuntimeError), transaction.atomic():
        connection.enabled = False
        connection.save()
        member.save()  # reads the switch inside the transaction: off
        raise RuntimeError("the admin's request failed")
    OutboxEntry.objects.all().delete()
    member.save()  # the switch is on again: what the rolled-back transaction saw is not kept
    assert OutboxEntry.objects.filter(connection=connection, funder=member).exists()


def test_a_save_asks_for_a_drain_only_when_none_is_pending(
    organisation, published, django_capture_on_commit_callbacks
):
    connection = make_connection(organisation, enabled=True)
    # A drain already asked for takes later changes too: no more asking, no publish.
    XeroConnection.objects.filter(pk=connection.pk).update(drain_requested=True)
    published.clear()
    with django_capture_on_commit_callbacks(execute=True):
        make_funder(organisation, "Member")
    assert published == []
    XeroConnection.objects.filter(pk=connection.pk).update(drain_requested=False)
    with django_capture_on_commit_callbacks(execute=True):
        make_funder(organisation, "Another")
    assert published == [("lookout_xero.drain_outbox", queues.EDITS)]
    assert OutboxEntry.objects.filter(connection=connection).count() == 2


def test_one_drain_is_asked_for_until_it_ends(
    organisation, xero, django_capture_on_commit_callbacks, published
):
    xero.add_organisation(CLIENT_ID, CLIENT_SECRET)
    connection = make_connection(organisation, enabled=True)
    services.run_full_sync(connection.runs.get().pk)
    published.clear()
    for i in range(3):
        with django_capture_on_commit_callbacks(execute=True):
            make_funder(organisation, f"Saved {i}")  # three commits, one publish
    assert published == [("lookout_xero.drain_outbox", queues.EDITS)]
    services.drain(connection.pk)  # the drain ends: the next save asks again
    assert not XeroConnection.objects.get(pk=connection.pk).drain_requested
    with django_capture_on_commit_callbacks(execute=True):
        make_funder(organisation, "After The Drain")
    assert len(published) == 2


def test_a_planner_that_stops_beating_is_planned_again(organisation, xero):
    xero.add_organisation(CLIENT_ID, CLIENT_SECRET)
    make_funder(organisation, "Orphan")
    connection = make_connection(organisation, enabled=True)
    run = connection.runs.get()
    now = timezone.now()
    SyncRun.objects.filter(pk=run.pk).update(
        status="running",
        started_at=now - timedelta(hours=2),
        created_at=now - timedelta(hours=2),
        heartbeat_at=now,
    )
    assert services.sweep()["runs"] == 0  # started long ago, but alive: left alone
    SyncRun.objects.filter(pk=run.pk).update(heartbeat_at=now - timedelta(seconds=46))
    assert services.sweep()["runs"] == 1
    run.refresh_from_db()
    assert run.status == "pending"


# --- the queue trigger of earlier versions goes ----------------------------------------------


@pytest.mark.skipif(db.vendor != "postgresql", reason="only PostgreSQL ever had the trigger")
@pytest.mark.django_db(transaction=True)  # DDL, as migrate runs it
def test_the_migration_drops_the_queue_trigger_and_function_an_older_version_left(organisation):
    # As earlier versions installed them: a function and a row trigger on the funder table.
    old = "lookout_xero_queue_0123456789"
    with db.cursor() as cursor:
        cursor.execute(
            f"CREATE FUNCTION {old}() RETURNS trigger LANGUAGE plpgsql "
            "AS $f$ BEGIN RAISE NOTICE 'lookout_xero'; RETURN NULL; END $f$"
        )
        cursor.execute(
            f"CREATE TRIGGER {old} AFTER INSERT OR UPDATE ON funders_funder "
            f"FOR EACH ROW EXECUTE FUNCTION {old}()"
        )
    assert ours_in_the_database() == ([old], [old])

    migration = importlib.import_module("lookout_xero.migrations.0007_drop_trigger")
    with db.schema_editor() as schema_editor:
        migration.drop_queue_triggers(None, schema_editor)
    assert ours_in_the_database() == ([], [])
    make_funder(organisation, "Saved Without It")  # the funder table works as before


def ours_in_the_database() -> tuple[list[str], list[str]]:
    with db.cursor() as cursor:
        cursor.execute("SELECT tgname FROM pg_trigger WHERE tgname LIKE 'lookout\\_xero%%'")
        triggers = [name for (name,) in cursor.fetchall()]
        cursor.execute("SELECT proname FROM pg_proc WHERE proname LIKE 'lookout\\_xero%%'")
        return triggers, [name for (name,) in cursor.fetchall()]


def test_migrate_leaves_nothing_of_the_app_on_the_funder_table():
    if db.vendor == "postgresql":
        assert ours_in_the_database() == ([], [])
    funder_table = Funder._meta.db_table
    with db.cursor() as cursor:
        constraints = db.introspection.get_constraints(cursor, funder_table)
    assert not [name for name in constraints if "lookout" in name]
