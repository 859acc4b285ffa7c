"""lookout_xero in a host that shares none of the demo's names, end to end through a worker."""

from __future__ import annotations

import pytest
from django.urls import reverse

from lookout_xero.models import OutboxEntry, SyncLog, SyncRun
from tests.helpers import wait_until

from .helpers import CLIENT_ID, CLIENT_SECRET, make_connection, make_member
from .models import Club

pytestmark = pytest.mark.worker

OTHER_ID, OTHER_SECRET = "client-aramoho-bowls", "s3cret-aramoho"


def changelist(client, model: str, **params):
    """A lookout_xero admin list as the test client sees it: (organisation titles, ChangeList)."""
    response = client.get(reverse(f"admin:lookout_xero_{model}_changelist"), params)
    assert response.status_code == 200, response.content[:500]
    cl = response.context["cl"]
    connections = [getattr(row, "connection", row) for row in cl.result_list]
    return [connection.organisation.title for connection in connections], cl


def sorted_by_organisation(client, model: str) -> tuple[list[str], list[str]]:
    """The list's organisation column, sorted ascending then descending by that column."""
    _, cl = changelist(client, model)
    column = cl.list_display.index("organisation")
    up, _ = changelist(client, model, o=str(column))
    down, _ = changelist(client, model, o=f"-{column}")
    return up, down


def test_full_sync_then_edits_reach_xero_and_the_admin_works(worker, xero, club, admin_client):
    kauri = xero.add_organisation(CLIENT_ID, CLIENT_SECRET, name="Kauri Rowing Club Inc")
    # Three contacts already in Xero: with PAGE_SIZE 2, reading them takes two pages.
    kauri.add_contact(Name="Boatshed Supplies")
    kauri.add_contact(Name="Harbour Council")
    existing = kauri.add_contact(Name="Mere Ngata (old)", EmailAddress="mere@example.org")
    mere = make_member(club, "Mere Ngata", email_address="mere@example.org", town="Whanganui")
    tai = make_member(club, "Tai Walker", email_address="tai@example.org", phone_number="021 5")
    ana = make_member(club, "Ana Silva", email_address="ana@example.org")
    make_member(club, "A Supporter", kind="supporter")
    make_member(club, "An Old Member", is_archived=True)
    bowls = Club.objects.create(title="Aramoho Bowls")
    xero.add_organisation(OTHER_ID, OTHER_SECRET, name="Aramoho Bowls Inc")
    make_member(bowls, "Rangi Parata", email_address="rangi@example.org")

    make_connection(club, enabled=True)
    make_connection(bowls, client_id=OTHER_ID, secret=OTHER_SECRET, enabled=True)
    wait_until(lambda: SyncRun.objects.filter(status="completed").count() == 2, timeout=40)

    run = SyncRun.objects.get(connection__organisation=club)
    assert (run.in_scope, run.created, run.linked, run.failed) == (3, 2, 1, 0)
    contacts = {c["Name"]: c for c in kauri.contacts.values()}
    assert set(contacts) == {
        "Boatshed Supplies",
        "Harbour Council",
        "Mere Ngata",
        "Tai Walker",
        "Ana Silva",
    }
    assert contacts["Mere Ngata"]["ContactID"] == existing["ContactID"]  # linked, not duplicated
    tai_contact = contacts["Tai Walker"]
    assert tai_contact["ContactNumber"] == f"CLUB-M{tai.pk}"  # CONTACT_NUMBER_PREFIX
    assert tai_contact["AccountNumber"] == f"CLUB-{club.pk}"  # the host's MAPPING
    assert tai_contact["EmailAddress"] == "tai@example.org"
    assert any(p["PhoneNumber"] == "021 5" for p in tai_contact["Phones"])
    pobox = next(a for a in contacts["Mere Ngata"]["Addresses"] if a["AddressType"] == "POBOX")
    assert pobox["City"] == "Whanganui"
    pages = [
        r.query["page"]
        for r in xero.requests_for(CLIENT_ID)
        if r.method == "GET" and r.path.endswith("/Contacts") and "page" in r.query
    ]
    assert pages[:2] == [["1"], ["2"]]
    posts = [
        r for r in xero.requests_for(CLIENT_ID) if r.method == "POST" and "/Contacts" in r.path
    ]
    assert posts and max(len(r.json["Contacts"]) for r in posts) <= 2  # BATCH_SIZE

    # An edit, an archive and a member who stops being one.
    tai.display_name, tai.email_address = "Tai Walker-Hona", "tai.hona@example.org"
    tai.save()
    ana.is_archived = True
    ana.save()
    mere.kind = "volunteer"
    mere.town = "Marton"
    mere.save()
    tai_id = tai_contact["ContactID"]
    wait_until(lambda: kauri.contacts[tai_id]["EmailAddress"] == "tai.hona@example.org")
    assert kauri.contacts[tai_id]["Name"] == "Tai Walker-Hona"
    ana_id = contacts["Ana Silva"]["ContactID"]
    wait_until(lambda: kauri.contacts[ana_id]["ContactStatus"] == "ARCHIVED")
    wait_until(lambda: not OutboxEntry.objects.exists())
    mere_pobox = next(
        a for a in kauri.contacts[existing["ContactID"]]["Addresses"] if a["AddressType"] == "POBOX"
    )
    assert mere_pobox["City"] == "Whanganui"  # out of scope now: left as it was
    assert len(kauri.contacts) == 5

    # The sync log names members by what the mapping makes of them, not by str(member).
    row = SyncLog.objects.filter(funder_id=tai.pk, outcome="updated").get()
    assert (row.funder_name, row.funder_email) == ("Tai Walker-Hona", "tai.hona@example.org")
    created = SyncLog.objects.get(funder_id=ana.pk, outcome="created")
    assert (created.funder_name, created.funder_email) == ("Ana Silva", "ana@example.org")
    assert not SyncLog.objects.filter(funder_name__startswith="Member #").exists()

    # The admin, with ORGANISATION_NAME_FIELD = "title".
    found, _ = changelist(admin_client, "xeroconnection", q="Kauri")
    assert found == ["Kauri Rowing Club"]
    for model in ("syncrun", "synclog", "xerocontactlink"):
        up, down = sorted_by_organisation(admin_client, model)
        assert set(up) == {"Aramoho Bowls", "Kauri Rowing Club"}, model
        assert up == sorted(up) and down == sorted(down, reverse=True), model
    found, cl = changelist(admin_client, "synclog", q="Walker-Hona")
    assert found and {row.funder_id for row in cl.result_list} == {tai.pk}
    found, cl = changelist(admin_client, "synclog", q="ana@example.org")
    assert found and {row.funder_id for row in cl.result_list} == {ana.pk}
    panel = admin_client.get(reverse("admin:crm_member_change", args=[tai.pk]))
    assert panel.status_code == 200 and tai_id.encode() in panel.content
