"""End to end: admin-equivalent ORM actions, a real Celery worker and broker, fake Xero on HTTP."""

from __future__ import annotations

import time
from contextlib import contextmanager

import pytest
from django.core.management import CommandError, call_command
from django.db import transaction

from lookout_xero import services
from lookout_xero.models import OutboxEntry, SyncLog, SyncRun, XeroConnection, XeroContactLink
from project.funders.models import Funder, Organisation
from tests.helpers import CLIENT_ID, CLIENT_SECRET, make_connection, make_funder, wait_until

pytestmark = pytest.mark.worker


def contact_calls(xero, client_id=CLIENT_ID):
    return [r for r in xero.requests_for(client_id) if "/Contacts" in r.path]


def test_enable_runs_full_sync_of_unarchived_membership_funders_only(worker, xero, organisation):
    xero.add_organisation(CLIENT_ID, CLIENT_SECRET, name="Harbour Trust Ltd")
    members = [
        make_funder(organisation, f"Member {i}", email=f"m{i}@example.org") for i in range(7)
    ]
    make_funder(organisation, "Archived Member", archived=True)
    make_funder(organisation, "A Grant Funder", funder_type="grant")
    connection = make_connection(organisation)
    assert contact_calls(xero) == []  # created disabled: nothing sent

    connection.enabled = True
    connection.save()

    run = wait_until(lambda: SyncRun.objects.filter(status=SyncRun.Status.COMPLETED).first())
    assert (run.in_scope, run.created, run.failed, run.conflicts) == (7, 7, 0, 0)
    names = sorted(c["Name"] for c in xero.org(CLIENT_ID).contacts.values())
    assert names == sorted(m.name for m in members)
    links = XeroContactLink.objects.filter(connection=connection, state="synced")
    assert links.count() == 7
    assert set(links.values_list("xero_contact_id", flat=True)) == set(xero.org(CLIENT_ID).contacts)
    assert SyncLog.objects.filter(outcome="created").count() == 7


def test_update_clear_field_archive_restore_and_unchanged_save(worker, xero, organisation):
    org = xero.add_organisation(CLIENT_ID, CLIENT_SECRET)
    funder = make_funder(
        organisation, "Kim Lee", email="kim@example.org", phone="555 0101", city="Otaki"
    )
    make_connection(organisation, enabled=True)
    link = wait_until(lambda: XeroContactLink.objects.filter(state="synced").first())
    contact = org.contacts[link.xero_contact_id]
    assert contact["EmailAddress"] == "kim@example.org"

    funder.city = ""
    funder.email = "kim.lee@example.org"
    funder.save()
    wait_until(lambda: org.contacts[link.xero_contact_id]["EmailAddress"] == "kim.lee@example.org")
    street = next(
        a for a in org.contacts[link.xero_contact_id]["Addresses"] if a["AddressType"] == "STREET"
    )
    assert street["City"] == ""  # cleared in Lookout, cleared in Xero

    posts_before = len([r for r in contact_calls(xero) if r.method == "POST"])
    funder.save()  # nothing Xero sees changed
    wait_until(lambda: SyncLog.objects.filter(outcome="unchanged").exists())
    assert len([r for r in contact_calls(xero) if r.method == "POST"]) == posts_before

    funder.archived = True
    funder.save()
    wait_until(lambda: org.contacts[link.xero_contact_id]["ContactStatus"] == "ARCHIVED")
    funder.archived = False
    funder.name = "Kim Lee-Smith"
    funder.save()
    wait_until(lambda: org.contacts[link.xero_contact_id]["ContactStatus"] == "ACTIVE")
    assert org.contacts[link.xero_contact_id]["Name"] == "Kim Lee-Smith"
    assert SyncLog.objects.filter(outcome="restored").exists()
    assert len(org.contacts) == 1  # never a second contact for the same funder


def test_disabled_connection_sends_nothing_and_reenable_full_syncs(worker, xero, organisation):
    org = xero.add_organisation(CLIENT_ID, CLIENT_SECRET)
    funder = make_funder(organisation, "Ana Silva")
    connection = make_connection(organisation, enabled=True)
    wait_until(lambda: SyncRun.objects.filter(status="completed").exists())

    connection.enabled = False
    connection.save()
    calls_when_disabled = len(xero.requests_for(CLIENT_ID))
    funder.name = "Ana Silva Santos"
    funder.save()
    make_funder(organisation, "New While Disabled")
    assert not OutboxEntry.objects.exists()  # nothing piles up to flush later

    connection.enabled = True
    connection.save()
    wait_until(lambda: SyncRun.objects.filter(status="completed").count() == 2)
    assert len(xero.requests_for(CLIENT_ID)) > calls_when_disabled
    assert sorted(c["Name"] for c in org.contacts.values()) == [
        "Ana Silva Santos",
        "New While Disabled",
    ]


def test_existing_contacts_are_linked_and_name_clash_is_a_conflict(worker, xero, organisation):
    org = xero.add_organisation(CLIENT_ID, CLIENT_SECRET)
    by_email = org.add_contact(
        Name="Rangi Holdings", EmailAddress="rangi@example.org", TaxNumber="GST-77"
    )
    by_name = org.add_contact(Name="harbour BOOKS")
    org.add_contact(Name="Twin Co", EmailAddress="twin@example.org")
    org.add_contact(Name="Twin Co Ltd", EmailAddress="twin@example.org")
    make_funder(organisation, "Rangi Parata", email="rangi@example.org", phone="555 2222")
    make_funder(organisation, "Harbour Books")
    make_funder(organisation, "Twin", email="twin@example.org")
    make_connection(organisation, enabled=True)

    run = wait_until(lambda: SyncRun.objects.filter(status="completed").first())
    assert (run.linked, run.conflicts, run.created) == (2, 1, 0)
    assert len(org.contacts) == 4  # linked, not duplicated
    linked = org.contacts[by_email["ContactID"]]
    # The first push to a found contact fills in what Lookout has and blanks nothing.
    assert linked["Name"] == "Rangi Parata" and linked["TaxNumber"] == "GST-77"
    assert any(p["PhoneNumber"] == "555 2222" for p in linked["Phones"])
    conflict = XeroContactLink.objects.get(state="conflict")
    assert conflict.funder.name == "Twin" and len(conflict.conflict_candidates) == 2
    assert (
        XeroContactLink.objects.get(funder__name="Harbour Books").xero_contact_id
        == by_name["ContactID"]
    )


def test_name_clash_is_a_conflict_and_bad_data_does_not_block_the_batch(worker, xero, organisation):
    org = xero.add_organisation(CLIENT_ID, CLIENT_SECRET)
    renamed = make_funder(organisation, "Will Be Renamed")
    make_connection(organisation, enabled=True)
    wait_until(lambda: SyncRun.objects.filter(status="completed").exists())
    org.add_contact(Name="Clash Co", EmailAddress="someone-else@example.org")

    with transaction.atomic():  # one batch: a clash, a bad e-mail and a clean funder together
        renamed.name = "Clash Co"
        renamed.save()
        make_funder(organisation, "Bad Email Funder", email="not-an-email")
        make_funder(organisation, "Fine Funder")
    wait_until(lambda: XeroContactLink.objects.filter(state="conflict").exists())
    wait_until(lambda: XeroContactLink.objects.filter(state="synced").count() == 2)
    conflict = XeroContactLink.objects.get(state="conflict")
    assert conflict.funder_id == renamed.pk
    assert "The contact name Clash Co is already assigned to another contact" in conflict.last_error
    log = SyncLog.objects.get(funder_name="Bad Email Funder")
    assert log.outcome == "created" and "not valid" in log.warnings[0]
    names = {c["Name"] for c in org.contacts.values()}
    assert names == {"Will Be Renamed", "Clash Co", "Bad Email Funder", "Fine Funder"}


def test_two_organisations_are_isolated(worker, xero, organisation):
    from project.funders.models import Organisation

    other = Organisation.objects.create(name="Other Org")
    org_a = xero.add_organisation(CLIENT_ID, CLIENT_SECRET, name="A")
    org_b = xero.add_organisation("client-org-b", "secret-b", name="B")
    make_funder(organisation, "Only In A")
    make_funder(other, "Only In B")
    make_connection(organisation, enabled=True)
    make_connection(other, client_id="client-org-b", secret="secret-b", enabled=True)
    wait_until(lambda: SyncRun.objects.filter(status="completed").count() == 2)
    assert [c["Name"] for c in org_a.contacts.values()] == ["Only In A"]
    assert [c["Name"] for c in org_b.contacts.values()] == ["Only In B"]


@contextmanager
def broker_unreachable():
    """Point this process's Celery app at a closed port: publishing really fails."""
    from project.celery import app

    saved = (app.conf.broker_url, app.conf.broker_transport_options)
    app.conf.broker_url, app.conf.broker_transport_options = "redis://127.0.0.1:9/0", {}
    app._pool, app.amqp._producer_pool = None, None
    try:
        yield
    finally:
        app.conf.broker_url, app.conf.broker_transport_options = saved
        app._pool, app.amqp._producer_pool = None, None


def test_change_saved_while_broker_is_down_is_delivered_later(worker, xero, organisation):
    org = xero.add_organisation(CLIENT_ID, CLIENT_SECRET)
    make_connection(organisation, enabled=True)
    wait_until(lambda: SyncRun.objects.filter(status="completed").exists())
    with broker_unreachable():
        funder = make_funder(organisation, "Saved During Outage")  # the save itself succeeds
    assert OutboxEntry.objects.filter(funder=funder).exists()
    # Nothing told the worker; beat's sweep finds the outbox row and delivers it.
    wait_until(lambda: [c["Name"] for c in org.contacts.values()] == ["Saved During Outage"])


def test_change_saved_while_worker_is_down_is_delivered_when_it_returns(worker, xero, organisation):
    org = xero.add_organisation(CLIENT_ID, CLIENT_SECRET)
    make_connection(organisation, enabled=True)
    wait_until(lambda: SyncRun.objects.filter(status="completed").exists())
    worker.stop()
    try:
        make_funder(organisation, "Saved While Worker Down")
        assert org.contacts == {}
    finally:
        worker.start()
    wait_until(lambda: len(org.contacts) == 1)


def test_rolled_back_save_sends_nothing(worker, xero, organisation):
    org = xero.add_organisation(CLIENT_ID, CLIENT_SECRET)
    make_connection(organisation, enabled=True)
    wait_until(lambda: SyncRun.objects.filter(status="completed").exists())
    with pytest.raises(RuntimeError), transaction.atomic():
        make_funder(organisation, "Rolled Back")
        raise RuntimeError("the view failed")
    make_funder(organisation, "Committed")
    wait_until(lambda: len(org.contacts) == 1)
    assert [c["Name"] for c in org.contacts.values()] == ["Committed"]


def test_disabling_mid_full_sync_stops_it_at_the_next_batch(worker, xero, organisation, settings):
    org = xero.add_organisation(CLIENT_ID, CLIENT_SECRET)
    Funder.objects.bulk_create(
        [
            Funder(organisation=organisation, name=f"Bulk {i:04}", funder_type="membership")
            for i in range(400)
        ]
    )
    # Xero holds its writes until the connection is disabled, so the test catches the sync
    # mid-way however busy the machine is: 8 writes of 50 were to come.
    held = xero.delay_next(60, times=20, method="POST")
    connection = make_connection(organisation, enabled=True)
    wait_until(lambda: [r for r in contact_calls(xero) if r.method == "POST"], timeout=30)
    connection.enabled = False
    connection.save()
    assert SyncRun.objects.get().status == "cancelled"  # by the save itself
    seen = len(xero.requests_for(CLIENT_ID))
    held.release()  # the write in flight is answered
    # The drain notices at its next batch, drops the outbox and lets its lease go.
    wait_until(
        lambda: (
            XeroConnection.objects.filter(pk=connection.pk, lease_token="").exists()
            and not OutboxEntry.objects.exists()
        ),
        timeout=30,
    )
    later = xero.requests_for(CLIENT_ID)[seen:]
    assert len([r for r in later if r.method == "POST"]) <= 1  # at most the batch in the making
    assert len(org.contacts) < 400

    # A save while disabled sends nothing. Proof that the worker was listening: a save in
    # another organisation, made after it, reaches Xero.
    calls = len(xero.requests_for(CLIENT_ID))
    make_funder(organisation, "After Disable")
    other = Organisation.objects.create(name="Control Trust")
    control = xero.add_organisation("client-control", "secret-control")
    make_connection(other, client_id="client-control", secret="secret-control", enabled=True)
    make_funder(other, "Control Member")
    wait_until(lambda: len(control.contacts) == 1)
    assert len(xero.requests_for(CLIENT_ID)) == calls


def test_fixing_credentials_resumes_a_failed_full_sync(worker, xero, organisation):
    org = xero.add_organisation(CLIENT_ID, CLIENT_SECRET)
    make_funder(organisation, "Waits For Credentials")
    connection = make_connection(organisation, secret="not-the-secret", enabled=True)
    wait_until(lambda: SyncRun.objects.filter(status="failed").exists())
    connection.refresh_from_db()
    assert connection.state == "error" and "Client ID or Client Secret" in connection.error_message
    connection.client_secret = CLIENT_SECRET
    connection.save()
    wait_until(lambda: SyncRun.objects.filter(status="completed").exists())
    assert [c["Name"] for c in org.contacts.values()] == ["Waits For Credentials"]


def test_xero_sync_command_full_flips_the_switch_then_resyncs(worker, xero, organisation):
    org = xero.add_organisation(CLIENT_ID, CLIENT_SECRET)
    make_funder(organisation, "Commanded")
    connection = make_connection(organisation)
    with pytest.raises(CommandError, match="disabled"):
        call_command("xero_sync", organisation=organisation.pk)  # a plain push needs it enabled
    assert org.contacts == {}
    call_command("xero_sync", organisation=organisation.pk, full=True)
    connection.refresh_from_db()
    assert connection.enabled  # the same switch as the admin's Enabled box
    first = wait_until(lambda: SyncRun.objects.filter(status="completed").first())
    assert (first.trigger, first.created) == ("enabled", 1)
    call_command("xero_sync", organisation=organisation.pk, full=True)
    run = wait_until(lambda: SyncRun.objects.filter(status="completed", trigger="manual").first())
    assert (run.unchanged, run.created) == (1, 0) and len(org.contacts) == 1
    connection.refresh_from_db()
    assert connection.xero_tenant_name == org.name


def test_a_full_sync_counts_a_funder_whose_push_was_in_flight_when_it_was_queued(
    worker, xero, organisation
):
    # A save's drain is waiting for Xero's answer when a full sync queues the same funder. The
    # drain loaded that funder's row before it belonged to the run: it must not clear it, or
    # nobody counts the funder in the run and the run never completes.
    org = xero.add_organisation(CLIENT_ID, CLIENT_SECRET)
    funder = make_funder(organisation, "Kea Trust", phone="555 0101")
    make_connection(organisation, enabled=True)
    wait_until(lambda: SyncRun.objects.filter(status=SyncRun.Status.COMPLETED).count() == 1)
    held = xero.delay_next(60, method="POST")  # held until the run has planned meanwhile
    funder.phone = "555 0202"
    funder.save()

    def post_in_flight():
        posts = [r for r in xero.requests_for(CLIENT_ID) if r.method == "POST"]
        return posts[-1] if posts and posts[-1].answered_at is None else None

    post = wait_until(post_in_flight)
    call_command("xero_sync", organisation=organisation.pk, full=True)
    run = SyncRun.objects.latest("pk")
    wait_until(lambda: SyncRun.objects.filter(pk=run.pk, planned_at__isnull=False).exists())
    assert post.answered_at is None, "the run was planned after the push it races had ended"
    held.release()

    run = wait_until(
        lambda: SyncRun.objects.filter(pk=run.pk, status=SyncRun.Status.COMPLETED).first(),
        timeout=30,
    )
    assert (run.in_scope, run.updated + run.unchanged, run.failed) == (1, 1, 0)
    contact = org.contacts[XeroContactLink.objects.get(funder=funder).xero_contact_id]
    assert any(p["PhoneNumber"] == "555 0202" for p in contact["Phones"])
    assert not OutboxEntry.objects.exists()


def test_a_save_skipped_by_a_process_that_had_not_heard_of_the_switch_reaches_xero(
    worker, xero, organisation, settings
):
    # This process read "no enabled connection" a moment before another process enabled it,
    # so the post_save receiver skips saves for ENABLED_CACHE_SECONDS. The full sync that
    # enabling starts begins only after that: it carries what the skipped saves changed.
    settings.LOOKOUT_XERO = {**settings.LOOKOUT_XERO, "ENABLED_CACHE_SECONDS": 4}
    org = xero.add_organisation(CLIENT_ID, CLIENT_SECRET)
    connection = make_connection(organisation)
    funder = make_funder(organisation, "Kea Trust", phone="555 0101")  # reads the switch: off
    # Another process turns it on; this process hears nothing of it.
    XeroConnection.objects.filter(pk=connection.pk).update(enabled=True)
    with transaction.atomic():
        run = services.start_full_sync(connection, trigger=SyncRun.Trigger.ENABLED)
    time.sleep(1)  # a full sync that did not wait would have read the funders by now

    funder.phone = "555 0202"
    funder.save()
    assert not OutboxEntry.objects.exists()  # skipped: this process still thinks it off

    wait_until(lambda: SyncRun.objects.filter(pk=run.pk, status="completed").exists(), 30)
    contact = org.contacts[XeroContactLink.objects.get(funder=funder).xero_contact_id]
    assert [p["PhoneNumber"] for p in contact["Phones"] if p["PhoneNumber"]] == ["555 0202"]


def test_a_funder_named_with_double_quotes_goes_out_with_its_batch(worker, xero, organisation):
    """Xero's `where` cannot hold a double quote (docs/xero.md, "Looking a value up"): created
    while enabled, such a funder is looked up another way and sent in its batch's POST."""
    org = xero.add_organisation(CLIENT_ID, CLIENT_SECRET)
    make_connection(organisation, enabled=True)
    wait_until(lambda: SyncRun.objects.filter(status=SyncRun.Status.COMPLETED).exists())
    with transaction.atomic():
        for name in ("Kauri Trust", 'The "Friends" of Kauri', "Totara Society"):
            make_funder(organisation, name)
    wait_until(lambda: len(org.contacts) == 3)
    assert sorted(c["Name"] for c in org.contacts.values()) == [
        "Kauri Trust",
        'The "Friends" of Kauri',
        "Totara Society",
    ]
    wait_until(lambda: SyncLog.objects.filter(outcome="created").count() == 3)
    writes = [r for r in contact_calls(xero) if r.is_write]
    assert [len(r.json["Contacts"]) for r in writes] == [3]
    assert all(r.status == 200 for r in contact_calls(xero))
