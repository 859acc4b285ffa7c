"""The admin's view of the bookkeeper's changes in Xero: the webhook panel, drift, holds."""

from __future__ import annotations

import pytest
from django.urls import reverse
from django.utils import timezone

from lookout_xero.models import OutboxEntry, XeroContactLink
from tests.helpers import make_connection, make_funder

pytestmark = pytest.mark.django_db

CONTACT = "0f0e6d5c-1111-2222-3333-444455556666"


def links_url(query=""):
    return reverse("admin:lookout_xero_xerocontactlink_changelist") + (f"?{query}" if query else "")


def link(connection, funder, contact_id, **fields):
    return XeroContactLink.objects.create(
        connection=connection, funder=funder, xero_contact_id=contact_id, **fields
    )


def test_the_connection_page_shows_the_webhook_url_key_and_counts(
    admin_client, organisation, settings
):
    settings.LOOKOUT_XERO = {**settings.LOOKOUT_XERO, "SITE_URL": "https://lookout.example.org"}
    connection = make_connection(organisation, enabled=True)
    connection.webhook_key = "webhook-KEY-do-not-leak"
    connection.save()
    funders = [make_funder(organisation, f"F{i}") for i in range(4)]
    link(connection, funders[0], "a" * 36, matched_by="merge", state="synced")
    link(connection, funders[1], "b" * 36, state="xarchived", archived_by="xero")
    link(connection, funders[2], "c" * 36, state="gdpr")
    drift = {"Phones.DEFAULT.PhoneNumber": {"lookout": "555", "xero": "021 999"}}
    link(connection, funders[3], "d" * 36, drift=drift, drift_seen_at=timezone.now())

    page = admin_client.get(
        reverse("admin:lookout_xero_xeroconnection_change", args=[connection.pk])
    ).content.decode()
    url = f"https://lookout.example.org/xero/webhooks/{connection.webhook_id}/"
    assert f"<code data-lx-webhook-url>{url}</code>" in page
    assert "data-lx-webhook-key>set<" in page
    assert "webhook-KEY-do-not-leak" not in page
    assert "data-lx-webhook-last>never<" in page
    for key in ("merged", "archived_in_xero", "gdpr", "drifted"):
        assert f'data-lx-count="{key}">1<' in page, key


def test_drift_shows_on_the_funder_panel_and_in_a_filter(admin_client, organisation):
    connection = make_connection(organisation, enabled=True)
    drifted = make_funder(organisation, "Drifted Funder")
    same = make_funder(organisation, "Same Funder")
    drift = {"Phones.DEFAULT.PhoneNumber": {"lookout": "555 0101", "xero": "021 999"}}
    link(connection, drifted, CONTACT, state="synced", drift=drift, drift_seen_at=timezone.now())
    link(connection, same, "e" * 36, state="synced")

    panel = admin_client.get(
        reverse("admin:funders_funder_change", args=[drifted.pk])
    ).content.decode()
    assert "Changed in Xero" in panel
    assert "<code>Phones.DEFAULT.PhoneNumber</code>: Xero “021 999”, Lookout “555 0101”" in panel

    listed = admin_client.get(links_url("drift=yes")).content.decode()
    assert "Drifted Funder" in listed and "Same Funder" not in listed
    unchanged = admin_client.get(links_url("drift=no")).content.decode()
    assert "Same Funder" in unchanged and "Drifted Funder" not in unchanged


def test_actions_push_the_profile_restore_in_xero_and_stop_syncing(admin_client, organisation):
    connection = make_connection(organisation, enabled=True)
    drifted = link(
        connection,
        make_funder(organisation, "Drifted"),
        CONTACT,
        state="synced",
        payload_hash="h",
        drift={"Name": {"lookout": "Drifted", "xero": "Other"}},
        drift_seen_at=timezone.now(),
    )
    archived = link(
        connection,
        make_funder(organisation, "Archived"),
        "a" * 36,
        state="xarchived",
        archived_by="xero",
        xero_contact_status="ARCHIVED",
    )
    gdpr = link(connection, make_funder(organisation, "Gdpr"), "b" * 36, state="gdpr")

    def act(action, *links):
        data = {"action": action, "_selected_action": [lnk.pk for lnk in links]}
        return admin_client.post(links_url(), data, follow=True)

    OutboxEntry.objects.all().delete()  # what creating the funders queued
    act("push_profile_now", drifted, gdpr)
    drifted.refresh_from_db()
    assert drifted.payload_hash == ""  # sent even though unchanged since the last push
    assert set(OutboxEntry.objects.values_list("funder_id", flat=True)) == {drifted.funder_id}

    act("restore_in_xero", archived, gdpr)
    archived.refresh_from_db()
    gdpr.refresh_from_db()
    assert (archived.state, archived.archived_by) == ("pending", "lookout")
    assert gdpr.state == "gdpr"  # only an archive can be restored

    act("stop_syncing", gdpr)
    gdpr.refresh_from_db()
    assert gdpr.state == "ignored"


def test_a_hold_is_called_a_hold_and_the_funder_panel_offers_stop_syncing(
    admin_client, organisation
):
    from django.contrib.admin.models import LogEntry

    connection = make_connection(organisation, enabled=True)
    held = link(
        connection,
        make_funder(organisation, "Held Funder"),
        CONTACT,
        state="gdpr",
        last_error="Xero holds this contact under a GDPR request.",
    )
    listed = admin_client.get(links_url()).content.decode()
    assert "Last error" not in listed
    assert "Held: Xero holds this contact under a GDPR request." in listed

    funder_page = reverse("admin:funders_funder_change", args=[held.funder_id])
    panel = admin_client.get(funder_page).content.decode()
    assert "Last error" not in panel and "Held: Xero holds this contact" in panel
    stop = reverse("admin:lookout_xero_xerocontactlink_stop", args=[held.pk])
    assert f'data-lx-post="{stop}"' in panel

    # Push now says the held funder was not pushed, instead of "Queued 1 funder".
    OutboxEntry.objects.all().delete()
    push = reverse("admin:lookout_xero_xerocontactlink_push", args=[held.funder_id])
    said = [str(m) for m in admin_client.post(push, follow=True).context["messages"]]
    assert not any("Queued" in m for m in said)
    assert any("held by the bookkeeper's decision in Xero" in m for m in said)
    assert not OutboxEntry.objects.exists()

    assert admin_client.get(stop).status_code == 405
    answer = admin_client.post(stop, follow=True)
    assert answer.redirect_chain[-1][0] == funder_page
    held.refresh_from_db()
    assert held.state == "ignored"
    assert LogEntry.objects.filter(change_message__contains="Stopped syncing: Held Funder").exists()


def test_the_funder_panel_offers_restore_in_xero_beside_an_archived_link(
    admin_client, organisation
):
    connection = make_connection(organisation, enabled=True)
    archived = link(
        connection,
        make_funder(organisation, "Archived Funder"),
        CONTACT,
        state="xarchived",
        archived_by="xero",
        xero_contact_status="ARCHIVED",
        last_error="Archived in Xero by someone other than Lookout.",
    )
    funder_page = reverse("admin:funders_funder_change", args=[archived.funder_id])
    panel = admin_client.get(funder_page).content.decode()
    restore = reverse("admin:lookout_xero_xerocontactlink_restore", args=[archived.pk])
    assert f'data-lx-post="{restore}">Restore in Xero</button>' in panel
    assert admin_client.post(restore, follow=True).redirect_chain[-1][0] == funder_page
    archived.refresh_from_db()
    assert (archived.state, archived.archived_by) == ("pending", "lookout")
