"""Corrections made in Xero, in a host with its own REVERSE_MAPPING (in-process, the periodic
read of changed contacts: this host's connection has no webhook)."""

from __future__ import annotations

import pytest

from lookout_xero import services
from lookout_xero.models import SyncLog, XeroContactLink
from tests.helpers import drain_all

from .helpers import make_member

pytestmark = pytest.mark.django_db


def test_the_hosts_reverse_mapping_takes_xeros_values_and_refuses_what_a_member_cannot_hold(
    xero, club, org, connection
):
    member = make_member(club, "Mere Ngata", email_address="mere@example.org", town="Whanganui")
    services.queue_funder(connection.pk, member.pk)
    drain_all(connection)
    link = XeroContactLink.objects.get(funder=member)
    services.set_directions(connection, {"Addresses": "xero", "EmailAddress": "xero"})
    services.read_changes(connection.pk)  # the first read: nothing changed since the sync

    org.edit(
        link.xero_contact_id,
        EmailAddress="mere.ngata@example.org",
        Addresses=[{"AddressType": "POBOX", "City": "T" * 250}],  # Xero allows 255; Member 200
    )
    since = len(xero.requests)
    services.read_changes(connection.pk)
    drain_all(connection)

    member.refresh_from_db()
    assert member.email_address == "mere.ngata@example.org"  # crm's own field name
    assert member.town == "Whanganui"  # refused: the member's town holds 200 characters
    [refused] = SyncLog.objects.filter(outcome="refused").values_list("message", flat=True)
    assert refused.startswith("did not take Addresses from Xero") and "town" in refused
    link.refresh_from_db()
    assert link.drift["Addresses.POBOX.City"]["waiting"] and link.decision_since
    assert not [r for r in xero.requests[since:] if r.is_write]  # nothing sent back
