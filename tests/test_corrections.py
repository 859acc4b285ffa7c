"""Corrections made in Xero flowing back into Lookout, per connection and field (issue 21).

In-process: the fake Xero over HTTP plays the bookkeeper; each change reaches the app through
its webhook endpoint (a signed delivery posted with Django's test client, as Xero posts it) or
through the periodic read of changed contacts, and the drain runs here. Counting the fake's
requests shows what was written to Xero, and that a value taken from Xero is never sent back.
"""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.urls import reverse
from django.utils import timezone

from lookout_xero import alerts, services
from lookout_xero.models import SyncLog, XeroAlert, XeroConnection, XeroContactLink
from lookout_xero.signals import contact_corrected_in_xero
from lookout_xero.testing.fake_xero.webhooks import contact_event, sign
from tests.helpers import CLIENT_ID, CLIENT_SECRET, drain_all, make_connection, make_funder

pytestmark = pytest.mark.django_db
WEBHOOK_KEY = "corrections-webhook-signing-key"
STREET = {
    "AddressType": "STREET",
    "AddressLine1": "1 Wharf Road",
    "AddressLine2": "",
    "City": "Picton",
    "Region": "Marlborough",
    "PostalCode": "7220",
    "Country": "NZ",
}


@pytest.fixture
def org(xero):
    return xero.add_organisation(CLIENT_ID, CLIENT_SECRET)


@pytest.fixture
def funder(organisation):
    return make_funder(
        organisation,
        "Tui Choir",
        email="tui@example.org",
        phone="03 555 0100",
        mobile="021 100",
        address_line1=STREET["AddressLine1"],
        city=STREET["City"],
        region=STREET["Region"],
        postal_code=STREET["PostalCode"],
        country=STREET["Country"],
    )


@pytest.fixture
def connection(organisation, org, funder):
    """Enabled, its full sync run and drained: the funder is linked and synced."""
    connection = make_connection(organisation, enabled=True)
    services.run_full_sync(connection.runs.get().pk)
    drain_all(connection)
    connection.webhook_key = WEBHOOK_KEY
    connection.save(update_fields=["webhook_key"])
    assert XeroContactLink.objects.get(funder=funder).state == "synced"
    return connection


def contact_of(funder):
    return XeroContactLink.objects.get(funder=funder).xero_contact_id


def link_of(funder):
    return XeroContactLink.objects.get(funder=funder)


def tell_lookout(client, connection, org, contact_id):
    """Xero's webhook for this contact, signed, to the app's endpoint; then its processing."""
    body = json.dumps(
        {
            "events": [contact_event(contact_id, org.tenant_id, "UPDATE")],
            "firstEventSequence": 1,
            "lastEventSequence": 1,
            "entropy": "ABCDEFGHIJ",
        }
    ).encode()
    response = client.post(
        connection.webhook_path,
        body,
        content_type="application/json",
        HTTP_X_XERO_SIGNATURE=sign(WEBHOOK_KEY, body),
    )
    assert response.status_code == 200
    services.process_webhooks(connection.pk)


def writes(xero, since):
    return [r for r in xero.requests[since:] if r.is_write]


def log_messages(outcome):
    return list(
        SyncLog.objects.filter(outcome=outcome).order_by("pk").values_list("message", flat=True)
    )


# --- choosing directions ----------------------------------------------------------------------


def test_every_field_is_lookouts_until_someone_chooses(connection, capsys):
    call_command("xero_directions", organisation=connection.organisation_id)
    lines = capsys.readouterr().out.split()
    assert "EmailAddress=lookout" in lines and "Name=lookout" in lines
    assert all(line.endswith("=lookout") for line in lines)

    call_command(
        "xero_directions",
        "EmailAddress=xero",
        "Phones=ASK",
        organisation=connection.organisation_id,
    )
    lines = capsys.readouterr().out.split()
    assert {"EmailAddress=xero", "Phones=ask", "Addresses=lookout", "Name=lookout"} <= set(lines)
    connection.refresh_from_db()
    assert connection.directions == {"EmailAddress": "xero", "Phones": "ask"}  # defaults unsaved

    for wrong in ("EmailAddress=maybe", "Nickname=xero", "Website=xero", "EmailAddress"):
        with pytest.raises(CommandError):
            call_command("xero_directions", wrong, organisation=connection.organisation_id)


# --- each direction, for an e-mail, a phone and an address -----------------------------------

CASES = {
    "email": (
        {"EmailAddress": "tui.choir@example.org"},
        {"email": "tui.choir@example.org"},
        "EmailAddress",
    ),
    "phone": (
        {"Phones": [{"PhoneType": "MOBILE", "PhoneNumber": "021 999"}]},
        {"mobile": "021 999"},
        "Phones",
    ),
    "address": (
        {"Addresses": [{**STREET, "City": "Nelson", "PostalCode": "7010"}]},
        {"city": "Nelson", "postal_code": "7010"},
        "Addresses",
    ),
}


@pytest.mark.parametrize("case", CASES)
def test_lookout_wins_by_default_the_drift_is_shown_and_lookouts_next_push_sends_its_value(
    case, client, xero, org, connection, funder
):
    edit, xero_values, _field = CASES[case]
    org.edit(contact_of(funder), **edit)
    tell_lookout(client, connection, org, contact_of(funder))

    link = link_of(funder)
    assert link.drift and all(not v.get("waiting") for v in link.drift.values())
    assert link.decision_since is None
    funder.refresh_from_db()
    assert all(getattr(funder, name) != value for name, value in xero_values.items())

    funder.name = "Tui Choir Inc"  # Lookout's next edit sends its whole profile
    funder.save()
    drain_all(connection)
    assert not link_of(funder).drift
    flat = json.dumps(org.contacts[contact_of(funder)])
    assert all(value not in flat for value in xero_values.values())


@pytest.mark.parametrize("case", CASES)
def test_xero_wins_the_correction_is_written_into_the_funder_and_not_sent_back(
    case, client, xero, org, connection, funder, django_capture_on_commit_callbacks
):
    edit, xero_values, field = CASES[case]
    services.set_directions(connection, {field: "xero"})
    heard = []

    def receiver(sender, funder, fields, contact_fields, chosen_by, **kwargs):
        heard.append((funder.pk, fields, contact_fields, chosen_by))

    contact_corrected_in_xero.connect(receiver)
    try:
        org.edit(contact_of(funder), **edit)
        since = len(xero.requests)
        with django_capture_on_commit_callbacks(execute=True):  # the signal waits for a commit
            tell_lookout(client, connection, org, contact_of(funder))
        drain_all(connection)  # the push the funder's save queued
    finally:
        contact_corrected_in_xero.disconnect(receiver)

    funder.refresh_from_db()
    assert {name: getattr(funder, name) for name in xero_values} == xero_values
    assert heard == [(funder.pk, sorted(xero_values), [field], "")]
    assert not link_of(funder).drift
    # The webhook's one read, and nothing written back: no ping-pong.
    calls = xero.requests[since:]
    assert [r.kind for r in calls] == ["get_contacts"] and not writes(xero, since)
    [message] = log_messages(SyncLog.Outcome.TAKEN)
    assert message.startswith(f"took {field} from Xero: ")
    assert message.endswith("(the field's setting)")

    # Xero tells again (another edit elsewhere, a replay): nothing more happens.
    tell_lookout(client, connection, org, contact_of(funder))
    drain_all(connection)
    assert not writes(xero, since) and len(log_messages(SyncLog.Outcome.TAKEN)) == 1


def test_the_log_row_says_what_was_taken(client, org, connection, funder):
    services.set_directions(connection, {"EmailAddress": "xero"})
    org.edit(contact_of(funder), EmailAddress="tui.choir@example.org")
    tell_lookout(client, connection, org, contact_of(funder))
    assert log_messages(SyncLog.Outcome.TAKEN) == [
        "took EmailAddress from Xero: tui@example.org → tui.choir@example.org (the field's setting)"
    ]


@pytest.mark.parametrize("case", CASES)
def test_ask_holds_the_field_until_a_person_takes_xeros_value(
    case, client, xero, org, connection, funder, admin_user
):
    edit, xero_values, field = CASES[case]
    services.set_directions(connection, {field: "ask"})
    org.edit(contact_of(funder), **edit)
    tell_lookout(client, connection, org, contact_of(funder))
    link = link_of(funder)
    assert link.drift and all(v["waiting"] for v in link.drift.values())
    assert link.decision_since is not None

    # Lookout changes something else meanwhile: that goes, the field waiting stays as in Xero.
    funder.tax_number = "GST-123"
    funder.save()
    since = len(xero.requests)
    drain_all(connection)
    assert len(writes(xero, since)) == 1
    contact = json.dumps(org.contacts[contact_of(funder)])
    assert "GST-123" in contact and all(value in contact for value in xero_values.values())
    assert link_of(funder).drift == link.drift  # still waiting

    since = len(xero.requests)
    taken, refused = services.take_xero_values(link_of(funder), [field], user=admin_user)
    assert (taken, refused) == ([field], {})
    drain_all(connection)
    assert not writes(xero, since)  # Xero already holds it
    funder.refresh_from_db()
    assert {name: getattr(funder, name) for name in xero_values} == xero_values
    link = link_of(funder)
    assert not link.drift and link.decision_since is None
    [message] = log_messages(SyncLog.Outcome.TAKEN)
    assert message.endswith(f"(chosen by {admin_user.get_username()})")


@pytest.mark.parametrize("case", CASES)
def test_ask_then_keep_lookouts_sends_lookouts_value(
    case, client, xero, org, connection, funder, admin_user
):
    edit, xero_values, field = CASES[case]
    services.set_directions(connection, {field: "ask"})
    org.edit(contact_of(funder), **edit)
    tell_lookout(client, connection, org, contact_of(funder))
    before = {name: getattr(funder, name) for name in xero_values}

    assert services.keep_lookout_values(link_of(funder), [field], user=admin_user) == [field]
    since = len(xero.requests)
    drain_all(connection)
    assert len(writes(xero, since)) == 1
    contact = json.dumps(org.contacts[contact_of(funder)])
    assert all(value not in contact for value in xero_values.values())
    funder.refresh_from_db()
    assert {name: getattr(funder, name) for name in xero_values} == before
    assert not link_of(funder).drift
    [message] = log_messages(SyncLog.Outcome.KEPT)
    assert message.startswith(f"kept Lookout's {field}: ")


# --- both sides changed the same field since the last sync ------------------------------------


def both_changed(client, org, connection, funder):
    """Lookout's edit is saved (its push not yet sent) when Xero's edit is told."""
    funder.email = "lookout@example.org"
    funder.save()
    org.edit(contact_of(funder), EmailAddress="xero@example.org")
    tell_lookout(client, connection, org, contact_of(funder))


def test_both_changed_lookout_wins(client, xero, org, connection, funder):
    both_changed(client, org, connection, funder)
    drain_all(connection)
    assert org.contacts[contact_of(funder)]["EmailAddress"] == "lookout@example.org"
    assert not link_of(funder).drift


def test_both_changed_xero_wins_and_lookouts_value_is_in_the_log(
    client, xero, org, connection, funder
):
    services.set_directions(connection, {"EmailAddress": "xero"})
    since = len(xero.requests)
    both_changed(client, org, connection, funder)
    drain_all(connection)
    funder.refresh_from_db()
    assert funder.email == "xero@example.org"
    assert org.contacts[contact_of(funder)]["EmailAddress"] == "xero@example.org"
    assert not writes(xero, since)
    assert log_messages(SyncLog.Outcome.TAKEN) == [
        "took EmailAddress from Xero: lookout@example.org → xero@example.org (the field's setting)"
    ]


def test_both_changed_ask_shows_both_and_writes_nothing_until_a_person_picks(
    client, xero, org, connection, funder, admin_user
):
    services.set_directions(connection, {"EmailAddress": "ask"})
    since = len(xero.requests)
    both_changed(client, org, connection, funder)
    drain_all(connection)
    assert not writes(xero, since)  # neither side's value is lost
    funder.refresh_from_db()
    assert funder.email == "lookout@example.org"
    assert org.contacts[contact_of(funder)]["EmailAddress"] == "xero@example.org"
    assert link_of(funder).drift["EmailAddress"]["xero"] == "xero@example.org"

    services.keep_lookout_values(link_of(funder), ["EmailAddress"], user=admin_user)
    drain_all(connection)
    assert org.contacts[contact_of(funder)]["EmailAddress"] == "lookout@example.org"


# --- a value the funder cannot hold -----------------------------------------------------------


def test_a_value_the_funder_cannot_hold_is_refused_logged_once_and_stays_drift(
    client, xero, org, connection, funder
):
    services.set_directions(connection, {"EmailAddress": "xero"})
    # Xero's check lets two dots in a row through; an e-mail address it is not.
    org.edit(contact_of(funder), EmailAddress="tui..choir@example.org")
    tell_lookout(client, connection, org, contact_of(funder))
    funder.refresh_from_db()
    assert funder.email == "tui@example.org"
    link = link_of(funder)
    assert link.drift["EmailAddress"] == {
        "lookout": "tui@example.org",
        "xero": "tui..choir@example.org",
        "waiting": True,
    }
    assert link.decision_since is not None
    [message] = log_messages(SyncLog.Outcome.REFUSED)
    assert "did not take EmailAddress from Xero (tui..choir@example.org)" in message
    assert "is not a valid e-mail address" in message

    since = len(xero.requests)
    tell_lookout(client, connection, org, contact_of(funder))  # told again: no second row
    drain_all(connection)
    assert len(log_messages(SyncLog.Outcome.REFUSED)) == 1
    assert not writes(xero, since)


# --- without a webhook: the periodic read of changed contacts ---------------------------------


def test_an_organisation_without_a_webhook_reads_what_changed(
    xero, org, connection, funder, settings
):
    settings.LOOKOUT_XERO = {**settings.LOOKOUT_XERO, "PAGE_SIZE": 100}
    services.set_directions(connection, {"Phones": "xero"})
    assert services.connections_to_read() == [connection.pk]
    since = len(xero.requests)
    assert services.read_changes(connection.pk) is None  # the first read: since the full sync
    reads = xero.requests[since:]
    assert [r.kind for r in reads] == ["get_contacts"]
    assert reads[0].header("if-modified-since") and reads[0].query["pageSize"] == ["100"]

    others = [org.add_contact(Name=f"Bookkeeper's {i:03}")["ContactID"] for i in range(150)]
    org.edit(contact_of(funder), Phones=[{"PhoneType": "MOBILE", "PhoneNumber": "027 42"}])
    since = len(xero.requests)
    services.read_changes(connection.pk)
    drain_all(connection)
    calls = xero.requests[since:]
    assert [r.kind for r in calls] == ["get_contacts", "get_contacts"]  # 151 changed: 2 pages
    funder.refresh_from_db()
    assert funder.mobile == "027 42"
    assert others and not writes(xero, since)

    connection.refresh_from_db()
    assert connection.changes_read_at > timezone.now() - timedelta(seconds=30)
    # Minutes later, nothing changed since: one call, an empty page.
    later = timezone.now() + timedelta(minutes=2)
    XeroConnection.objects.filter(pk=connection.pk).update(changes_read_at=later)
    since = len(xero.requests)
    services.read_changes(connection.pk)
    assert [r.query["page"] for r in xero.requests[since:]] == [["1"]]


def test_a_verified_webhook_or_a_disabled_connection_is_not_read(xero, org, connection):
    XeroConnection.objects.filter(pk=connection.pk).update(last_webhook_at=timezone.now())
    assert services.connections_to_read() == []
    XeroConnection.objects.filter(pk=connection.pk).update(last_webhook_at=None, enabled=False)
    assert services.connections_to_read() == []
    since = len(xero.requests)
    assert services.read_changes(connection.pk) is None
    assert xero.requests[since:] == []


def test_a_new_webhook_key_is_not_verified_until_xero_signs_with_it(client, org, connection):
    tell_lookout(client, connection, org, "00000000-0000-0000-0000-00000000beef")
    connection.refresh_from_db()
    assert connection.last_webhook_at is not None
    connection.webhook_key = "another-key"
    connection.save(update_fields=["webhook_key"])
    connection.refresh_from_db()
    assert connection.last_webhook_at is None
    assert services.connections_to_read() == [connection.pk]


# --- waiting for a decision: status and alerts ------------------------------------------------


def test_funders_waiting_for_a_decision_make_an_alert_episode_after_a_while(
    client, org, connection, funder, capsys, settings
):
    services.set_directions(connection, {"EmailAddress": "ask"})
    org.edit(contact_of(funder), EmailAddress="tui.choir@example.org")
    tell_lookout(client, connection, org, contact_of(funder))

    rows = json.loads(_status_json(capsys))
    assert rows[0]["waiting_for_decision"] == 1 and not rows[0]["needs_attention"]
    alerts.check_alerts()
    assert not XeroAlert.objects.exists()

    long_ago = timezone.now() - timedelta(minutes=settings.LOOKOUT_XERO["ALERT_AFTER_MINUTES"] + 1)
    XeroContactLink.objects.update(decision_since=long_ago)
    rows = json.loads(_status_json(capsys, exit_code=1))
    assert rows[0]["attention"] == ["decisions"]
    alerts.check_alerts()
    alert = XeroAlert.objects.get()
    assert alert.kind == "decisions" and "Tui Choir: EmailAddress" in alert.detail

    services.take_xero_values(link_of(funder))
    alerts.check_alerts()
    alert.refresh_from_db()
    assert alert.resolved_at is not None


def _status_json(capsys, exit_code=0):
    if exit_code:
        with pytest.raises(SystemExit) as exited:
            call_command("xero_status", "--json")
        assert exited.value.code == exit_code
    else:
        call_command("xero_status", "--json")
    return capsys.readouterr().out


def test_choosing_lookout_again_ends_the_wait(client, org, connection, funder):
    services.set_directions(connection, {"EmailAddress": "ask"})
    org.edit(contact_of(funder), EmailAddress="tui.choir@example.org")
    tell_lookout(client, connection, org, contact_of(funder))
    assert link_of(funder).decision_since is not None
    services.set_directions(connection, {"EmailAddress": "lookout"})
    link = link_of(funder)
    assert link.decision_since is None and not link.drift["EmailAddress"].get("waiting")


# --- the admin: the connection's directions, the funder's panel, the list's action -------------


def test_the_admin_flow(admin_client, client, xero, org, connection, funder):
    page = admin_client.get(
        reverse("admin:lookout_xero_xeroconnection_change", args=[connection.pk])
    )
    body = page.content.decode()
    assert "Who wins when a value differs in Xero" in body and 'name="direction-Phones"' in body
    answer = admin_client.post(
        reverse("admin:lookout_xero_xeroconnection_directions", args=[connection.pk]),
        {"direction-EmailAddress": "ask", "direction-Phones": "xero"},
    )
    assert answer.status_code == 302
    connection.refresh_from_db()
    assert connection.directions == {"EmailAddress": "ask", "Phones": "xero"}

    org.edit(contact_of(funder), EmailAddress="tui.choir@example.org")
    tell_lookout(client, connection, org, contact_of(funder))
    page = admin_client.get(reverse("admin:funders_funder_change", args=[funder.pk]))
    body = page.content.decode()
    assert "Waiting for a decision" in body
    assert "tui@example.org" in body and "tui.choir@example.org" in body
    take = reverse(
        "admin:lookout_xero_xerocontactlink_take", args=[link_of(funder).pk, "EmailAddress"]
    )
    assert take in body
    changes = reverse("admin:lookout_xero_xerocontactlink_changelist") + "?drift=waiting"
    assert funder.name in admin_client.get(changes).content.decode()

    assert admin_client.post(take).status_code == 302
    funder.refresh_from_db()
    assert funder.email == "tui.choir@example.org" and not link_of(funder).drift

    org.edit(contact_of(funder), EmailAddress="choir@example.org")
    tell_lookout(client, connection, org, contact_of(funder))
    answer = admin_client.post(
        reverse("admin:lookout_xero_xerocontactlink_changelist"),
        {"action": "take_xero_values", "_selected_action": [link_of(funder).pk]},
    )
    assert answer.status_code == 302
    funder.refresh_from_db()
    assert funder.email == "choir@example.org"


@pytest.mark.parametrize("direction", ["ask", "xero"])
def test_a_push_before_xero_has_told_reads_first_and_loses_neither_change(
    direction, xero, org, connection, funder
):
    """No webhook yet (or none at all): Lookout's edit is pushed while Xero's is unknown."""
    services.set_directions(connection, {"EmailAddress": direction})
    org.edit(contact_of(funder), EmailAddress="xero@example.org")
    funder.email = "lookout@example.org"
    funder.phone = "03 555 0200"
    funder.save()
    since = len(xero.requests)
    drain_all(connection)
    calls = [r.kind for r in xero.requests[since:]]
    assert calls.count("get_contacts") >= 1 and len(writes(xero, since)) == 1
    contact = org.contacts[contact_of(funder)]
    assert contact["EmailAddress"] == "xero@example.org"  # the bookkeeper's change survives
    assert "03 555 0200" in json.dumps(contact["Phones"])  # Lookout's other change went
    funder.refresh_from_db()
    if direction == "xero":
        assert funder.email == "xero@example.org"
        [message] = log_messages(SyncLog.Outcome.TAKEN)
        assert "lookout@example.org → xero@example.org" in message
    else:
        assert funder.email == "lookout@example.org"  # both kept, a person decides
        assert link_of(funder).drift["EmailAddress"]["waiting"]


def test_a_connection_where_lookout_wins_everything_does_not_read_before_writing(
    xero, org, connection, funder
):
    funder.phone = "03 555 0300"
    funder.save()
    since = len(xero.requests)
    drain_all(connection)
    assert [r.kind for r in xero.requests[since:]] == ["update_or_create_contacts"]
