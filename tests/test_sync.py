"""The sync in-process against the fake Xero over HTTP: outcomes, faults, limits, leases."""

from __future__ import annotations

import logging
import threading
from datetime import timedelta

import pytest
from celery.signals import before_task_publish
from django.core.exceptions import ValidationError
from django.db import connection as db_connection
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from lookout_xero import conf, services
from lookout_xero.models import (
    OutboxEntry,
    SyncLog,
    SyncRun,
    XeroAlert,
    XeroConnection,
    XeroContactLink,
    XeroWebhookEvent,
)
from lookout_xero.services.drain import MAX_FOLLOW_UP_SECONDS
from tests.helpers import CLIENT_ID, CLIENT_SECRET, drain_all, make_connection, make_funder

pytestmark = pytest.mark.django_db


@pytest.fixture
def org(xero):
    return xero.add_organisation(CLIENT_ID, CLIENT_SECRET, name="Harbour Trust Ltd")


@pytest.fixture
def connection(organisation, org):
    """An enabled connection whose (empty) full sync has already run."""
    connection = make_connection(organisation, enabled=True)
    services.run_full_sync(connection.runs.get().pk)
    return connection


def posts(xero):
    return [r for r in xero.requests if r.method == "POST" and "/Contacts" in r.path]


def test_full_sync_counts_and_batches_of_fifty(xero, organisation, org, settings):
    for i in range(120):
        make_funder(organisation, f"Member {i:03}")
    connection = make_connection(organisation, enabled=True)
    run = connection.runs.get()
    services.run_full_sync(run.pk)
    assert OutboxEntry.objects.filter(run=run).count() == 120
    services.drain(connection.pk)
    run.refresh_from_db()
    assert (run.status, run.in_scope, run.created, run.done) == ("completed", 120, 120, 120)
    assert [len(r.json["Contacts"]) for r in posts(xero)] == [50, 50, 20]
    assert len(org.contacts) == 120


def test_hundred_saves_of_one_funder_are_one_outbox_row_and_one_enqueue(
    connection, organisation, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks() as callbacks, transaction.atomic():
        funder = make_funder(organisation, "Busy Funder")
        for i in range(99):
            funder.phone = str(i)
            funder.save()
    entry = OutboxEntry.objects.get()
    assert entry.version == 100 and entry.funder_id == funder.pk
    assert len(callbacks) == 1


@pytest.fixture
def published():
    """Every task published to the broker while the test runs, by whatever code path."""
    names = []

    def record(sender=None, **kwargs):
        names.append(sender)

    before_task_publish.connect(record, weak=False)
    yield names
    before_task_publish.disconnect(record)


def test_rolled_back_save_queues_nothing(
    connection, organisation, django_capture_on_commit_callbacks, published
):
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        with pytest.raises(RuntimeError), transaction.atomic():
            make_funder(organisation, "Never Happened")
            raise RuntimeError("rollback")
    assert not OutboxEntry.objects.exists() and callbacks == [] and published == []
    # The same watch sees a committed save publish its drain.
    with django_capture_on_commit_callbacks(execute=True):
        make_funder(organisation, "Happened")
    assert published == ["lookout_xero.drain_outbox"]


def test_non_members_and_disabled_connections_queue_nothing(
    organisation, org, django_assert_num_queries
):
    connection = make_connection(organisation, enabled=False)
    with django_assert_num_queries(1):  # the INSERT of the funder, and nothing else
        make_funder(organisation, "Grant Body", funder_type="grant")
    make_funder(organisation, "Member While Disabled")
    assert not OutboxEntry.objects.exists()
    assert connection.runs.count() == 0


def test_changes_made_without_a_save_are_queued_by_queue_changed_funders(
    xero,
    connection,
    organisation,
    org,
    django_capture_on_commit_callbacks,
    django_assert_num_queries,
    published,
):
    # QuerySet.update() sends no post_save: the host tells lookout_xero what it changed, and
    # the same rules as a save apply (members of enabled organisations only).
    from project.funders.models import Funder, Organisation

    members = [make_funder(organisation, f"Member {i}") for i in range(3)]
    grant = make_funder(organisation, "Grant Body", funder_type="grant")
    other = make_funder(Organisation.objects.create(name="Not Connected"), "Elsewhere")
    drain_all(connection)
    changed = [*members, grant, other]
    Funder.objects.filter(pk__in=[f.pk for f in changed]).update(phone="09 555 0100")
    assert not OutboxEntry.objects.exists()  # the receiver never heard of it

    with django_capture_on_commit_callbacks(execute=True):
        with django_assert_num_queries(1):  # one statement for them all, not one each
            assert services.queue_changed_funders([f.pk for f in changed]) == 3
        assert services.queue_changed_funders(Funder.objects.filter(phone="09 555 0100")) == 3
    assert sorted(OutboxEntry.objects.values_list("funder_id", flat=True)) == [
        f.pk for f in members
    ]
    assert published == ["lookout_xero.drain_outbox"]  # one drain for the organisation
    drain_all(connection)
    phones = {c["Name"]: c["Phones"][0]["PhoneNumber"] for c in org.contacts.values()}
    assert phones == {f.name: "09 555 0100" for f in members}


def test_enabling_through_save_creates_one_run_and_starts_it_on_commit(
    organisation, org, django_capture_on_commit_callbacks
):
    connection = make_connection(organisation)
    with django_capture_on_commit_callbacks() as callbacks:
        connection.enabled = True
        connection.save()
        connection.save()  # saving again while enabled is not a new enable
    assert connection.runs.count() == 1 and len(callbacks) == 1


def test_a_connection_cannot_move_to_another_organisation(organisation, org):
    # Its links and outbox are this organisation's funders: moved, they would sync the wrong
    # people and the other organisation would never get its full sync.
    from project.funders.models import Organisation

    connection = make_connection(organisation, enabled=True)
    connection.organisation = Organisation.objects.create(name="Other Trust")
    with pytest.raises(ValidationError) as refused:
        connection.full_clean()  # what a form runs: a message on the field, not a crash
    assert "cannot move to another organisation" in refused.value.message_dict["organisation"][0]
    with pytest.raises(ValueError, match="cannot move to another organisation"):
        connection.save()
    connection.refresh_from_db()
    assert connection.organisation_id == organisation.pk


def test_per_item_xero_error_is_kept_and_does_not_block_the_batch(
    xero, connection, organisation, org
):
    make_funder(organisation, "Good One")
    stale = make_funder(organisation, "Merged Away")
    make_funder(organisation, "Good Two")
    # Linked to a contact Xero no longer has: Xero refuses that element only.
    XeroContactLink.objects.create(
        connection=connection,
        funder=stale,
        state="synced",
        matched_by="created",
        xero_contact_id="0d5b7b4e-0000-4000-8000-00000000dead",
    )
    services.drain(connection.pk)
    assert sorted(c["Name"] for c in org.contacts.values()) == ["Good One", "Good Two"]
    link = XeroContactLink.objects.get(funder=stale)
    log = SyncLog.objects.get(funder=stale)
    assert link.state == "failed" and log.outcome == "failed"
    assert link.last_error == log.message and "not be found" in log.message  # Xero's own words
    assert not OutboxEntry.objects.exists()  # not retried forever
    posts_before = len(posts(xero))
    services.drain(connection.pk)
    assert len(posts(xero)) == posts_before


def test_found_contact_keeps_the_bookkeepers_data_across_later_changes(xero, organisation, org):
    existing = org.add_contact(
        Name="Rangi Holdings", EmailAddress="rangi@example.org", TaxNumber="GST-77"
    )
    funder = make_funder(organisation, "Rangi Parata", email="rangi@example.org", city="Otaki")
    connection = make_connection(organisation, enabled=True)
    services.run_full_sync(connection.runs.get().pk)
    services.drain(connection.pk)
    assert SyncLog.objects.filter(outcome="linked", funder=funder).exists()
    funder.city = ""
    funder.phone = "04 555 0101"
    funder.save()
    services.drain(connection.pk)
    contact = org.contacts[existing["ContactID"]]
    street = next(a for a in contact["Addresses"] if a["AddressType"] == "STREET")
    assert contact["TaxNumber"] == "GST-77" and street["City"] == ""
    assert SyncLog.objects.filter(outcome="updated", funder=funder).exists()
    funder.save()
    services.drain(connection.pk)
    assert SyncLog.objects.filter(outcome="unchanged", funder=funder).exists()


def test_a_found_contacts_own_contact_number_is_left_alone(xero, organisation, org):
    theirs = org.add_contact(
        Name="Tui Books", EmailAddress="tui@example.org", ContactNumber="CRM-9"
    )
    make_funder(organisation, "Tui Bookshop", email="tui@example.org")
    connection = make_connection(organisation, enabled=True)
    services.run_full_sync(connection.runs.get().pk)
    services.drain(connection.pk)
    contact = org.contacts[theirs["ContactID"]]
    assert contact["Name"] == "Tui Bookshop" and contact["ContactNumber"] == "CRM-9"
    assert XeroContactLink.objects.get().keeps_own_number


def test_custom_mapping_from_settings_is_used(xero, connection, organisation, org, settings):
    settings.LOOKOUT_XERO = {
        **settings.LOOKOUT_XERO,
        "MAPPING": "tests.mappings.with_account_number",
    }
    funder = make_funder(organisation, "Numbered")
    services.drain(connection.pk)
    assert [c["AccountNumber"] for c in org.contacts.values()] == [f"M-{funder.pk:05}"]


def test_name_clash_becomes_a_conflict_with_xeros_message(xero, connection, organisation, org):
    org.add_contact(Name="harbour books ltd", EmailAddress="x@example.org")
    clash = make_funder(organisation, "Harbour Books Ltd", email="other@example.org")
    OutboxEntry.objects.update(looked_up=True)  # as after a full sync: no look-up before creating
    services.drain(connection.pk)
    link = XeroContactLink.objects.get(funder=clash)
    assert link.state == "conflict"
    assert "already assigned to another contact" in link.last_error
    assert not OutboxEntry.objects.exists()  # never retried in a loop
    clash.name = "Harbour Books (Wellington)"
    clash.save()  # a change by a person is tried again
    services.drain(connection.pk)
    link.refresh_from_db()
    assert link.state == "synced" and len(org.contacts) == 2


def test_outage_backs_off_then_delivers(xero, connection, organisation, org):
    make_funder(organisation, "Patient Funder")
    xero.fail_next(503, method="POST")
    wait = services.drain(connection.pk)
    entry = OutboxEntry.objects.get()
    assert entry.attempts == 1 and entry.due_at > timezone.now() and 0 < wait <= 1
    assert "offline" in entry.last_error or "503" in entry.last_error
    assert SyncLog.objects.filter(outcome="retrying").exists()
    drain_all(connection)
    assert [c["Name"] for c in org.contacts.values()] == ["Patient Funder"]


def test_gives_up_after_max_attempts_with_a_clear_error(
    xero, connection, organisation, org, settings
):
    settings.LOOKOUT_XERO = {**settings.LOOKOUT_XERO, "MAX_ATTEMPTS": 2}
    funder = make_funder(organisation, "Unlucky")
    xero.fail_next(500, method="POST", times=2)
    xero.fail_next(500, method="GET", times=2)
    drain_all(connection)
    link = XeroContactLink.objects.get(funder=funder)
    assert link.state == "failed" and link.last_error.startswith("Gave up after 2 attempts")
    assert not OutboxEntry.objects.exists()


def test_lost_answer_after_xero_saved_does_not_duplicate(xero, connection, organisation, org):
    for i in range(3):
        make_funder(organisation, f"Crash Test {i}")
    OutboxEntry.objects.update(looked_up=True)
    xero.drop_next(after_processing=True, path_contains="/Contacts")
    services.drain(connection.pk)
    assert len(org.contacts) == 3  # Xero created them, we never heard back
    drain_all(connection)
    assert len(org.contacts) == 3
    assert XeroContactLink.objects.filter(state="synced").count() == 3


def test_wrong_credentials_stop_the_connection_visibly_and_keep_the_work(
    xero, connection, organisation, org, caplog
):
    connection.client_secret = "wrong-" + CLIENT_SECRET
    XeroConnection.objects.filter(pk=connection.pk).update(access_token="")
    connection.save()
    make_funder(organisation, "Waiting Funder")
    with caplog.at_level(logging.DEBUG):
        services.drain(connection.pk)
    connection.refresh_from_db()
    assert connection.state == "error" and connection.error_code == "invalid_client"
    assert OutboxEntry.objects.count() == 1
    calls = len(xero.requests)
    services.drain(connection.pk)
    assert len(xero.requests) == calls  # no retry loop against refused credentials

    connection.client_secret = CLIENT_SECRET
    connection.save()  # (the e2e tests show this also enqueues the waiting work)
    connection.refresh_from_db()
    assert connection.state == "ok"
    services.drain(connection.pk)
    assert [c["Name"] for c in org.contacts.values()] == ["Waiting Funder"]
    every_text = caplog.text + " ".join(SyncLog.objects.values_list("message", flat=True))
    every_text += connection.error_message
    assert "wrong-" + CLIENT_SECRET not in every_text and CLIENT_SECRET not in every_text


def test_minute_limit_reschedules_and_day_limit_pauses(xero, connection, organisation, org):
    make_funder(organisation, "Throttled")
    org.set_limits(minute_remaining=0)
    wait = services.drain(connection.pk)
    assert wait >= 1 and OutboxEntry.objects.get().due_at > timezone.now()

    # A minute later (what the engine last heard of the minute limit is stale by then).
    org.set_limits(minute_remaining=60, day_remaining=0)
    XeroConnection.objects.update(limits_seen_at=timezone.now() - timedelta(seconds=61))
    OutboxEntry.objects.update(due_at=timezone.now())
    assert services.drain(connection.pk) is None
    connection.refresh_from_db()
    assert connection.is_paused and SyncLog.objects.filter(outcome="paused").exists()
    calls = len(xero.requests)
    assert services.drain(connection.pk) is None and len(xero.requests) == calls

    XeroConnection.objects.update(paused_until=timezone.now() - timedelta(seconds=1))
    org.set_limits(day_remaining=100)
    assert services.sweep()["connections"] == 1
    drain_all(connection)
    assert len(org.contacts) == 1


def test_paces_each_call_once_the_minute_runs_low(xero, connection, organisation, org, settings):
    settings.LOOKOUT_XERO = {**settings.LOOKOUT_XERO, "BATCH_SIZE": 1}
    make_funder(organisation, "One")
    make_funder(organisation, "Two")
    org.set_limits(minute_remaining=4)
    wait = services.drain(connection.pk)  # the look-up before creating One, then a pause
    connection.refresh_from_db()
    left = connection.min_limit_remaining
    assert left == 3 and posts(xero) == []
    assert wait == pytest.approx(60 / (left + 1), abs=0.5)
    for _ in range(6):  # time passes as the engine asked; it goes on a call at a time
        XeroConnection.objects.update(limits_seen_at=F("limits_seen_at") - timedelta(seconds=61))
        org.set_limits(minute_remaining=4)
        services.drain(connection.pk)
    assert len(org.contacts) == 2
    assert [r for r in xero.requests if r.status == 429] == []


def test_only_one_drain_per_organisation(xero, connection, organisation, org):
    make_funder(organisation, "Queued")
    lease = services.Lease.acquire(connection.pk)
    assert lease and services.Lease.acquire(connection.pk) is None
    calls = len(xero.requests)
    assert services.drain(connection.pk) is None
    assert len(xero.requests) == calls and OutboxEntry.objects.count() == 1
    XeroConnection.objects.update(lease_expires_at=timezone.now() - timedelta(seconds=1))
    services.drain(connection.pk)  # an expired lease (crashed worker) is taken over
    assert not OutboxEntry.objects.exists()


def test_disable_clears_the_outbox_and_cancels_the_run(organisation, org):
    for i in range(3):
        make_funder(organisation, f"M{i}")
    connection = make_connection(organisation, enabled=True)
    run = connection.runs.get()
    services.run_full_sync(run.pk)
    assert OutboxEntry.objects.count() == 3
    connection.enabled = False
    connection.save()
    run.refresh_from_db()
    assert run.status == "cancelled" and not OutboxEntry.objects.exists()
    assert services.drain(connection.pk) is None and org.contacts == {}


def test_leaving_membership_stops_syncing_and_leaves_xero_alone(
    xero, connection, organisation, org
):
    funder = make_funder(organisation, "Changing Type")
    services.drain(connection.pk)
    contact_id = XeroContactLink.objects.get().xero_contact_id
    calls = len(xero.requests)
    funder.funder_type = "grant"
    funder.name = "Renamed After Leaving"
    funder.save()
    services.drain(connection.pk)
    assert len(xero.requests) == calls
    assert org.contacts[contact_id]["Name"] == "Changing Type"


def test_deleting_a_funder_with_a_pending_change_never_touches_xero(
    xero, connection, organisation, org
):
    funder = make_funder(organisation, "Soon Deleted")
    services.drain(connection.pk)
    contact_id = XeroContactLink.objects.get().xero_contact_id
    funder.name = "Edited Then Deleted"
    funder.save()
    assert OutboxEntry.objects.filter(funder_id=funder.pk).exists()  # a push was pending
    calls = len(xero.requests)
    funder.delete()
    services.drain(connection.pk)
    assert len(xero.requests) == calls
    assert org.contacts[contact_id]["Name"] == "Soon Deleted"
    assert org.contacts[contact_id]["ContactStatus"] == "ACTIVE"


def test_archive_in_xero_can_be_turned_off(xero, connection, organisation, org, settings):
    funder = make_funder(organisation, "Keeps Active")
    services.drain(connection.pk)
    settings.LOOKOUT_XERO = {**settings.LOOKOUT_XERO, "ARCHIVE_IN_XERO": False}
    funder.archived = True
    funder.save()
    services.drain(connection.pk)
    assert [c["ContactStatus"] for c in org.contacts.values()] == ["ACTIVE"]


def test_token_is_cached_encrypted_and_shared(xero, connection, organisation, org):
    from django.db import connection as db

    make_funder(organisation, "Token User")
    services.drain(connection.pk)
    connection.refresh_from_db()
    assert connection.access_token and connection.access_token_expires_at > timezone.now()
    with db.cursor() as cursor:
        cursor.execute("SELECT access_token, client_secret FROM lookout_xero_xeroconnection")
        raw_token, raw_secret = (bytes(v) for v in cursor.fetchone())
    assert (
        connection.access_token.encode() not in raw_token
        and CLIENT_SECRET.encode() not in raw_secret
    )
    tokens_before = len([r for r in xero.requests if r.path == "/connect/token"])
    make_funder(organisation, "Second Drain")
    services.drain(connection.pk)  # a new drain (another worker) reuses the stored token
    assert len([r for r in xero.requests if r.path == "/connect/token"]) == tokens_before


def test_contact_removed_from_xero_is_found_or_created_again(xero, connection, organisation, org):
    make_funder(organisation, "Phoenix")
    services.drain(connection.pk)
    org.contacts.clear()
    connection.enabled = False
    connection.save()
    connection.enabled = True
    connection.save()
    run = connection.runs.filter(status="pending").get()
    services.run_full_sync(run.pk)
    services.drain(connection.pk)
    assert [c["Name"] for c in org.contacts.values()] == ["Phoenix"]
    run.refresh_from_db()
    assert run.created == 1


def test_preview_writes_nothing_to_xero(xero, organisation, org):
    org.add_contact(Name="Linked By Email", EmailAddress="le@example.org")
    make_funder(organisation, "New One")
    make_funder(organisation, "Email Match", email="le@example.org")
    make_funder(organisation, "", first_name="", last_name="")
    connection = make_connection(organisation)
    run = services.start_preview(connection)
    services.run_full_sync(run.pk)
    run.refresh_from_db()
    counts = run.report["counts"]
    assert (counts["create"], counts["link"], counts["invalid"]) == (1, 1, 1)
    assert run.report["link"][0]["rule"] == "email"
    assert not [r for r in xero.requests if r.method in ("POST", "PUT") and "Contacts" in r.path]
    assert not XeroContactLink.objects.exists() and not OutboxEntry.objects.exists()
    assert run.status == SyncRun.Status.COMPLETED


def test_sweep_finds_work_a_broker_outage_left(connection, organisation):
    make_funder(organisation, "Left Behind")  # its on-commit enqueue never ran (test transaction)
    assert services.sweep() == {"runs": 0, "connections": 1, "at_lease_expiry": 0, "webhooks": 0}


def test_prune_logs_keeps_recent_rows(connection):
    old = SyncLog.objects.create(connection=connection, outcome="run", message="old")
    SyncLog.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(days=91))
    SyncLog.objects.create(connection=connection, outcome="run", message="new")
    long_ago = timezone.now() - timedelta(days=100)
    over = XeroAlert.objects.create(connection=connection, kind="error", resolved_at=long_ago)
    still_open = XeroAlert.objects.create(connection=connection, kind="paused", opened_at=long_ago)
    assert services.prune_logs() == 1
    assert list(
        SyncLog.objects.values_list("message", flat=True).filter(message__in=["old", "new"])
    ) == ["new"]
    assert list(XeroAlert.objects.values_list("pk", flat=True)) == [still_open.pk]
    assert not XeroAlert.objects.filter(pk=over.pk).exists()


def test_a_run_planned_by_a_worker_that_died_is_planned_again(xero, organisation, org):
    make_funder(organisation, "Orphan")
    connection = make_connection(organisation, enabled=True)
    run = connection.runs.get()
    long_ago = timezone.now() - timedelta(hours=1)
    SyncRun.objects.filter(pk=run.pk).update(
        status="running", started_at=long_ago, created_at=long_ago, heartbeat_at=long_ago
    )
    services.run_full_sync(run.pk)  # a duplicate delivery does not plan a run already claimed
    assert not OutboxEntry.objects.exists()
    assert services.sweep()["runs"] == 1
    run.refresh_from_db()
    assert run.status == "pending"
    services.run_full_sync(run.pk)
    services.drain(connection.pk)
    run.refresh_from_db()
    assert (run.status, run.created) == ("completed", 1)


def test_scope_refused_puts_the_connection_in_error_without_retrying(xero, organisation):
    xero.add_organisation(CLIENT_ID, CLIENT_SECRET, reject_explicit_scope=True)
    make_funder(organisation, "Needs Empty Scope")
    connection = make_connection(organisation, enabled=True)
    services.run_full_sync(connection.runs.get().pk)
    connection.refresh_from_db()
    assert (connection.state, connection.error_code) == ("error", "invalid_scope")
    assert "Scope field left empty" in connection.error_message
    assert connection.runs.get().status == "failed"
    token_calls = len(xero.requests)
    services.drain(connection.pk)
    assert len(xero.requests) == token_calls
    connection.scope = ""
    connection.save()  # fixing the scope starts a new full sync
    run = connection.runs.filter(status="pending").get()
    services.run_full_sync(run.pk)
    services.drain(connection.pk)
    assert [c["Name"] for c in xero.org(CLIENT_ID).contacts.values()] == ["Needs Empty Scope"]


def test_credentials_of_another_xero_organisation_wait_for_a_person_then_start_over_there(
    xero, connection, organisation, org
):
    make_funder(organisation, "Moves House")
    services.drain(connection.pk)
    other = xero.add_organisation("client-new-org", "secret-new", name="New Books Ltd")
    connection.client_id, connection.client_secret = "client-new-org", "secret-new"
    # Another Client ID: a full sync, not a push of stale ContactIDs. (The instance is older
    # than the tenant the full sync noted: it saves only what it changes.)
    connection.save(update_fields=["client_id", "client_secret"])
    run = connection.runs.filter(status="pending").get()
    services.run_full_sync(run.pk)
    services.drain(connection.pk)
    # Not followed silently: nothing was read from or written to the other organisation.
    assert other.contacts == {}
    touched = xero.call_counts("client-new-org")
    assert set(touched) == {"token", "connections"}, touched
    connection.refresh_from_db()
    assert (connection.state, connection.error_code) == ("error", "tenant_changed")
    assert "New Books Ltd" in connection.error_message and org.name in connection.error_message
    assert (connection.xero_tenant_name, connection.other_tenant_name) == (org.name, other.name)
    assert XeroContactLink.objects.get().xero_contact_id in org.contacts  # kept until confirmed

    assert services.use_new_tenant(connection.pk, tenant_id=other.tenant_id)
    run = connection.runs.filter(status="pending").get()
    services.run_full_sync(run.pk)
    services.drain(connection.pk)
    assert [c["Name"] for c in other.contacts.values()] == ["Moves House"]
    assert XeroContactLink.objects.get().xero_contact_id in other.contacts
    assert SyncLog.objects.filter(message__contains="another Xero organisation").exists()
    connection.refresh_from_db()
    assert (connection.state, connection.xero_tenant_name) == ("ok", "New Books Ltd")
    assert connection.other_tenant_id == ""


def test_a_connection_saves_every_field_it_is_told_to(connection):
    XeroConnection.objects.filter(pk=connection.pk).update(
        paused_until=timezone.now() + timedelta(hours=2)
    )
    connection.paused_until = None  # a person ends the pause from a shell
    connection.save()
    assert XeroConnection.objects.get(pk=connection.pk).paused_until is None


def test_saving_a_stale_connection_with_update_fields_keeps_what_the_sync_wrote(connection):
    stale = XeroConnection.objects.get(pk=connection.pk)  # e.g. a form opened earlier
    until = timezone.now() + timedelta(hours=2)
    XeroConnection.objects.filter(pk=connection.pk).update(
        paused_until=until, lease_token="held-by-a-worker", min_limit_remaining=12
    )
    stale.scope = "accounting.contacts accounting.settings.read"
    stale.save(update_fields=["scope"])
    fresh = XeroConnection.objects.get(pk=connection.pk)
    assert fresh.scope == "accounting.contacts accounting.settings.read"
    assert (fresh.paused_until, fresh.lease_token, fresh.min_limit_remaining) == (
        until,
        "held-by-a-worker",
        12,
    )


def test_a_full_sync_retries_an_outage_then_fails_with_the_reason(xero, organisation, org):
    make_funder(organisation, "Waits For Xero")
    connection = make_connection(organisation, enabled=True)
    run = connection.runs.get()
    xero.fail_next(503, times=100, path_contains="/connections")
    wait = services.run_full_sync(run.pk, attempt=1)
    run.refresh_from_db()
    assert 0 < wait <= 1 and run.status == "pending"  # handed back for the task to retry
    assert services.run_full_sync(run.pk, attempt=conf.get("MAX_ATTEMPTS")) is None
    run.refresh_from_db()
    assert run.status == "failed" and "Could not read Xero's contacts" in run.message
    assert "503" in run.message and org.contacts == {}


def test_a_rate_limit_wait_is_capped_so_the_sweep_takes_over(xero, connection, organisation, org):
    make_funder(organisation, "Far Future")
    xero.fail_next(429, headers={"Retry-After": "7200", "X-Rate-Limit-Problem": "minute"})
    wait = services.drain(connection.pk)
    assert wait == MAX_FOLLOW_UP_SECONDS == 1500
    entry = OutboxEntry.objects.get()
    assert entry.due_at > timezone.now() + timedelta(seconds=7000)  # the row keeps Xero's time


def test_every_in_scope_funder_counts_once_in_its_run(xero, organisation, org):
    org.add_contact(Name="Found By Email", EmailAddress="found@example.org")
    make_funder(organisation, "Found", email="found@example.org")
    make_funder(organisation, "Brand New")
    skipped = make_funder(organisation, "Not Synced By Choice")
    leaving = make_funder(organisation, "Deleted Mid-Run")
    connection = make_connection(organisation)
    XeroContactLink.objects.create(connection=connection, funder=skipped, state="ignored")
    connection.enabled = True
    connection.save()
    run = connection.runs.get()
    services.run_full_sync(run.pk)
    leaving.delete()  # its outbox row goes with it; the run must not wait for it
    skipped_too = make_funder(organisation, "Left Membership")  # queued by its save, no run
    skipped_too.funder_type = "grant"
    skipped_too.save()
    services.drain(connection.pk)
    run.refresh_from_db()
    assert (run.linked, run.created) == (1, 1)
    assert run.status == "completed" and run.done == run.in_scope == 2
    from lookout_xero import status

    assert status.progress(run)["percent"] == 100


@pytest.mark.django_db(transaction=True)
def test_a_run_whose_funders_were_all_pushed_while_it_planned_completes(xero, organisation, org):
    # A drain started by a save pushes the first chunk's funders while the planner is still
    # on the next chunk; when the planner ends, nothing of the run is left for a drain to
    # finish, so the planner completes it itself. Django's execute_wrapper lets another
    # connection's drain run right after the planner queues each chunk, as another worker's
    # drain would.
    from lookout_xero.services.full_sync import PLAN_CHUNK

    funders = PLAN_CHUNK + 1  # two chunks, so there is a moment between them
    for i in range(funders):
        make_funder(organisation, f"Member {i:04}")
    connection = make_connection(organisation, enabled=True)
    run = connection.runs.get()
    waiting_when_drained = []

    def another_workers_drain() -> None:
        try:
            waiting_when_drained.append(OutboxEntry.objects.filter(run=run).count())
            services.drain(connection.pk)
        finally:
            db_connection.close()

    queued = []

    def drain_once_each_chunk_is_queued(execute, sql, params, many, context):
        if queued and not db_connection.in_atomic_block:  # the chunk's rows are committed
            queued.clear()
            drain = threading.Thread(target=another_workers_drain)
            drain.start()
            drain.join()
        if sql.startswith("INSERT") and OutboxEntry._meta.db_table in sql:
            queued.append(sql)
        return execute(sql, params, many, context)

    with db_connection.execute_wrapper(drain_once_each_chunk_is_queued):
        services.run_full_sync(run.pk)
    run.refresh_from_db()
    assert waiting_when_drained == [PLAN_CHUNK, 1] and len(org.contacts) == funders
    assert (run.status, run.created, run.done, run.in_scope) == ("completed",) + (funders,) * 3


def test_a_full_sync_takes_over_a_pending_row_without_marking_it_looked_up(organisation, org):
    # The pending row's create may be on its way to Xero: if that worker dies, the next try
    # must look for the contact first, whatever the full sync planned meanwhile.
    pending = make_funder(organisation, "Pending Funder")
    connection = make_connection(organisation, enabled=True)
    run = connection.runs.get()
    pending.save()  # a save while the connection is on: its row waits, not looked up
    new = make_funder(organisation, "New Funder")
    OutboxEntry.objects.filter(funder=new).delete()  # queued by the full sync alone
    services.run_full_sync(run.pk)
    rows = {row.funder_id: row for row in OutboxEntry.objects.filter(run=run)}
    assert (rows[pending.pk].looked_up, rows[new.pk].looked_up) == (False, True)


# --- Xero as it really answers (docs/xero.md; real bodies in tests/fixtures/xero_real/) ---------

QUERY_PARSE_EXCEPTION = {
    "ErrorNumber": 16,
    "Type": "QueryParseException",
    "Message": "Syntax error",
}


def test_a_funder_named_with_double_quotes_reaches_xero_with_its_batch(
    xero, connection, organisation, org
):
    """Xero's `where` cannot hold a double quote (Xero-Java #347): the funder is looked up by
    searchTerm instead, and goes out in the same POST as the rest of its batch."""
    for name in ("Plain One", 'The "Friends" of Kauri', "Plain Two"):
        make_funder(organisation, name)
    services.drain(connection.pk)
    assert sorted(c["Name"] for c in org.contacts.values()) == [
        "Plain One",
        "Plain Two",
        'The "Friends" of Kauri',
    ]
    assert [len(r.json["Contacts"]) for r in posts(xero)] == [3]
    gets = [r for r in xero.requests if r.kind == "get_contacts"]
    assert all(r.status == 200 for r in gets)
    assert not any('"Friends"' in r.query.get("where", [""])[0] for r in gets)
    assert SyncLog.objects.filter(outcome="created").count() == 3


def test_a_quoted_name_already_in_xero_is_found_by_search_and_linked(
    xero, connection, organisation, org
):
    existing = org.add_contact(Name='The "Friends" of Kauri')
    org.add_contact(Name='The "Friends" of Kauri Trust')  # found by the search, not the same
    funder = make_funder(organisation, 'the "friends" of kauri')
    services.drain(connection.pk)
    link = XeroContactLink.objects.get(funder=funder)
    assert (link.xero_contact_id, link.matched_by) == (existing["ContactID"], "name")
    assert len(org.contacts) == 2


def test_a_refused_look_up_fails_only_the_funder_whose_value_caused_it(
    xero, connection, organisation, org
):
    for name in ("Alpha", "Odd Name", "Beta"):
        make_funder(organisation, name)
    xero.fail_next(400, body=QUERY_PARSE_EXCEPTION, times=20, query_contains="Odd Name")
    services.drain(connection.pk)
    assert sorted(c["Name"] for c in org.contacts.values()) == ["Alpha", "Beta"]
    odd = SyncLog.objects.get(funder__name="Odd Name")
    assert (odd.outcome, odd.http_status) == ("failed", 400)
    assert "Syntax error" in odd.message and "rest of its batch" in odd.message
    assert [len(r.json["Contacts"]) for r in posts(xero)] == [2]
    assert not OutboxEntry.objects.exists()


def test_xeros_own_words_reach_the_log_in_every_error_shape(xero, connection, organisation, org):
    """`Message` or `Description`, nested on Phones/Addresses, `Warnings` on an element or at
    the top level (shapes of Xero's docs and OpenAPI examples: tests/fixtures/xero_real/)."""
    names = ["Described", "Nested Phone", "Nested Address", "Warned", "Silent"]
    for name in names:
        make_funder(organisation, name)
    answer = {
        "Status": "OK",
        "Warnings": [{"Message": "Batch-wide warning"}],
        "Contacts": [
            {"StatusAttributeString": "ERROR", "ValidationErrors": [{"Description": "Desc"}]},
            {
                "StatusAttributeString": "ERROR",
                "Phones": [{"PhoneType": "MOBILE", "ValidationErrors": [{"Message": "Phone!"}]}],
                "ValidationErrors": [],
            },
            {
                "StatusAttributeString": "ERROR",
                "Addresses": [{"ValidationErrors": [{"Description": "Address!"}]}],
            },
            {
                "ContactID": "5ceffde5-6786-4987-b03a-bf88d262c286",
                "StatusAttributeString": "WARNING",
                "Warnings": [{"Description": "Element warning"}],
            },
            {"StatusAttributeString": "ERROR", "ValidationErrors": []},
        ],
    }
    xero.fail_next(200, body=answer, method="POST")
    services.drain(connection.pk)
    logs = {log.funder.name: log for log in SyncLog.objects.exclude(funder=None)}
    assert logs["Described"].message == "Desc"
    assert logs["Nested Phone"].message == "Phone!"
    assert logs["Nested Address"].message == "Address!"
    assert logs["Warned"].outcome == "created"
    assert logs["Warned"].warnings == ["Element warning", "Batch-wide warning"]
    assert logs["Silent"].message == "Xero refused this contact without saying why."


def test_a_token_without_the_contacts_scope_stops_without_another_token(
    xero, organisation, settings
):
    """Xero's 401 AuthorizationUnsuccessful (Xero-NetStandard #298): the connection says what to
    fix, and no new token is fetched for it."""
    xero.add_organisation(CLIENT_ID, CLIENT_SECRET, scopes=("accounting.settings",))
    make_funder(organisation, "Needs Contacts")
    connection = make_connection(organisation, enabled=True, scope="")
    services.run_full_sync(connection.runs.get().pk)
    connection.refresh_from_db()
    assert (connection.state, connection.error_code) == ("error", "missing_scope")
    assert "AuthorizationUnsuccessful" in connection.error_message
    assert xero.count("token") == 1
    assert [r.status for r in xero.requests if r.kind == "get_contacts"] == [401]


def test_a_day_limit_429_without_its_header_pauses_until_retry_after(
    xero, connection, organisation, org
):
    """No X-Rate-Limit-Problem: X-DayLimit-Remaining 0 says it is the day (Xero's Java SDK)."""
    make_funder(organisation, "Throttled")
    xero.fail_next(
        429,
        body="",
        headers={"X-DayLimit-Remaining": "0", "X-MinLimit-Remaining": "40", "Retry-After": "7200"},
    )
    assert services.drain(connection.pk) is None
    connection.refresh_from_db()
    left = (connection.paused_until - timezone.now()).total_seconds()
    assert 7100 < left <= 7200
    assert SyncLog.objects.filter(outcome="paused").exists()


def test_an_organisation_offline_503_is_retried_with_xeros_words(
    xero, connection, organisation, org
):
    make_funder(organisation, "Offline Meanwhile")
    xero.fail_next(503, body="The Organisation is Offline", times=2)  # a read is tried twice
    wait = services.drain(connection.pk)
    assert wait is not None
    retrying = SyncLog.objects.get(outcome="retrying")
    assert "The Organisation is Offline" in retrying.message and retrying.http_status == 503
    drain_all(connection)
    assert [c["Name"] for c in org.contacts.values()] == ["Offline Meanwhile"]


def test_a_404_on_a_read_by_ids_keeps_the_webhook_events(xero, connection, organisation, org):
    funder = make_funder(organisation, "Watched")
    services.drain(connection.pk)
    link = XeroContactLink.objects.get(funder=funder)
    XeroWebhookEvent.objects.create(
        connection=connection, xero_contact_id=link.xero_contact_id, event_type="UPDATE"
    )
    xero.fail_next(404, body="The resource you're looking for cannot be found", times=2)
    wait = services.process_webhooks(connection.pk)
    assert wait is not None and XeroWebhookEvent.objects.count() == 1
    log = SyncLog.objects.get(outcome="retrying")
    assert "The resource you're looking for cannot be found" in log.message
    assert services.process_webhooks(connection.pk) is not None
    assert services.process_webhooks(connection.pk) is None  # Xero answers again: applied
    assert not XeroWebhookEvent.objects.exists()
