"""Settings a host sets, each exercised in the second host (in-process, no worker)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import override_settings
from django.urls import reverse
from django.utils import timezone

from lookout_xero import services
from lookout_xero.checks import check_settings
from lookout_xero.exceptions import XeroTransportError
from lookout_xero.models import OutboxEntry, SyncLog, XeroContactLink

from .helpers import make_member
from .models import Member

pytestmark = pytest.mark.django_db


def test_default_scope_is_what_a_new_connection_starts_with(admin_client):
    page = admin_client.get(reverse("admin:lookout_xero_xeroconnection_add")).content.decode()
    assert 'value="accounting.contacts accounting.settings.read"' in page


def test_conflict_name_suffix_names_the_distinct_contact(admin_client, club, org, connection):
    org.add_contact(Name="Twin Co", EmailAddress="twin@example.org")
    org.add_contact(Name="Twin Co Ltd", EmailAddress="twin@example.org")
    make_member(club, "Twin", email_address="twin@example.org")
    services.drain(connection.pk)
    assert XeroContactLink.objects.get().state == "conflict"
    page = admin_client.get(reverse("admin:lookout_xero_xerocontactlink_conflicts"))
    assert "Create as new: “Twin [2]”" in page.content.decode()


def test_a_member_the_mapping_cannot_name_is_logged_by_str(club, connection):
    member = make_member(club, "", email_address="nameless@example.org")
    services.drain(connection.pk)
    row = SyncLog.objects.get(funder_id=member.pk)
    assert row.outcome == "failed" and "no name" in row.message
    assert (row.funder_name, row.funder_email) == (f"Member #{member.pk}", "nameless@example.org")


def test_http_timeout_bounds_every_request(xero, connection, settings):
    settings.LOOKOUT_XERO = {**settings.LOOKOUT_XERO, "HTTP_TIMEOUT": 0.3}
    xero.delay_next(2)
    client = services.client_for(connection)
    with pytest.raises(XeroTransportError):
        client.list_contacts(page=1, page_size=2)


def test_min_limit_reserve_slows_the_drain_before_xero_says_429(
    club, org, connection, settings, xero
):
    for i in range(5):
        make_member(club, f"Rower {i}")
    settings.LOOKOUT_XERO = {**settings.LOOKOUT_XERO, "MIN_LIMIT_RESERVE": 50}
    org.set_limits(minute_remaining=45)
    calls = len(xero.requests)
    wait = services.drain(connection.pk)  # one call (the look-up), then 44 left <= 50: it waits
    assert len(xero.requests) == calls + 1
    assert wait == pytest.approx(60 / 45, abs=0.2)
    assert OutboxEntry.objects.count() == 5
    settings.LOOKOUT_XERO = {**settings.LOOKOUT_XERO, "MIN_LIMIT_RESERVE": 5}
    assert services.drain(connection.pk) is None
    assert not OutboxEntry.objects.exists() and len(org.contacts) == 5


def test_lease_seconds_is_how_long_a_drain_keeps_the_organisation(connection, settings):
    settings.LOOKOUT_XERO = {**settings.LOOKOUT_XERO, "LEASE_SECONDS": -1}
    assert services.Lease.acquire(connection.pk)
    assert services.Lease.acquire(connection.pk)  # that lease had expired already: taken over
    settings.LOOKOUT_XERO = {**settings.LOOKOUT_XERO, "LEASE_SECONDS": 300}
    assert services.Lease.acquire(connection.pk)
    assert services.Lease.acquire(connection.pk) is None  # held for the next 300 seconds


def test_log_retention_days_is_what_prune_keeps(connection, settings):
    settings.LOOKOUT_XERO = {**settings.LOOKOUT_XERO, "LOG_RETENTION_DAYS": 10}
    SyncLog.objects.all().delete()
    for days, message in ((11, "old"), (9, "recent")):
        row = SyncLog.objects.create(connection=connection, outcome="run", message=message)
        SyncLog.objects.filter(pk=row.pk).update(created_at=timezone.now() - timedelta(days=days))
    assert services.prune_logs() == 1
    assert list(SyncLog.objects.values_list("message", flat=True)) == ["recent"]


def test_checks_pass_for_this_host_and_warn_without_fernet_keys():
    assert check_settings() == []
    with override_settings(FERNET_KEYS=[]):
        assert [message.id for message in check_settings()] == ["lookout_xero.W001"]


def test_retry_base_and_max_seconds_bound_the_backoff(settings):
    settings.LOOKOUT_XERO = {
        **settings.LOOKOUT_XERO,
        "RETRY_BASE_SECONDS": 3,
        "RETRY_MAX_SECONDS": 10,
    }
    first = [services.backoff(1) for _ in range(50)]
    assert all(1.5 <= wait <= 3 for wait in first)  # full jitter in [base/2, base]
    assert all(3 <= services.backoff(2) <= 6 for _ in range(50))  # doubling
    assert all(5 <= services.backoff(9) <= 10 for _ in range(50))  # 3 * 2**8, capped at 10


def test_queue_changed_funders_reads_this_hosts_membership_and_club_fields(club, connection):
    members = [make_member(club, f"Rower {i}") for i in range(2)]
    volunteer = make_member(club, "Coach", kind="volunteer")
    OutboxEntry.objects.all().delete()  # their saves were queued; only the update matters here
    Member.objects.filter(club=club).update(is_archived=True)
    ids = Member.objects.filter(club=club).values_list("pk", flat=True)
    assert services.queue_changed_funders(ids) == 2
    queued = set(OutboxEntry.objects.values_list("funder_id", flat=True))
    assert queued == {m.pk for m in members} and volunteer.pk not in queued


def test_the_reconcile_reads_this_hosts_membership_club_and_mapping(club, org, connection):
    members = [make_member(club, f"Rower {i}") for i in range(2)]
    volunteer = make_member(club, "Coach", kind="volunteer")
    services.drain(connection.pk)
    assert services.reconcile()[0].queued == 0  # synced, with this host's mapping
    Member.objects.filter(club=club).update(is_archived=True)
    assert services.reconcile()[0].queued == 2
    queued = set(OutboxEntry.objects.values_list("funder_id", flat=True))
    assert queued == {m.pk for m in members} and volunteer.pk not in queued
