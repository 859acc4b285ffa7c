"""Corrections made in Xero flowing back into Lookout, through a real worker (issue 21).

The fake Xero plays the bookkeeper; the app hears it by its webhook (served by Django's live
server) or, for an organisation without one, by beat's periodic read of changed contacts.
"""

from __future__ import annotations

import pytest

from lookout_xero import services
from lookout_xero.models import SyncLog, SyncRun, XeroContactLink
from tests.helpers import CLIENT_ID, CLIENT_SECRET, make_connection, make_funder, wait_until

pytestmark = pytest.mark.worker

WEBHOOK_KEY = "corrections-worker-webhook-key"


def link_of(funder):
    return XeroContactLink.objects.get(funder=funder)


def test_xero_wins_by_webhook_and_nothing_goes_back(worker, xero, organisation, live_server):
    org = xero.add_organisation(CLIENT_ID, CLIENT_SECRET)
    funder = make_funder(organisation, "Kea Trust", email="kea@example.org", mobile="021 1")
    connection = make_connection(organisation)
    connection.webhook_key = WEBHOOK_KEY
    connection.enabled = True
    connection.save()
    wait_until(lambda: SyncRun.objects.filter(status="completed").exists())
    services.set_directions(connection, {"EmailAddress": "xero", "Phones": "xero"})
    org.set_webhook(live_server.url + connection.webhook_path, WEBHOOK_KEY)
    contact_id = link_of(funder).xero_contact_id
    since = len(xero.requests_for(CLIENT_ID))

    change = org.edit(
        contact_id,
        EmailAddress="kea.trust@example.org",
        Phones=[{"PhoneType": "MOBILE", "PhoneNumber": "027 77"}],
    )
    assert change.delivery.status == 200
    wait_until(lambda: SyncLog.objects.filter(outcome="taken").count() == 2)
    funder.refresh_from_db()
    assert (funder.email, funder.mobile) == ("kea.trust@example.org", "027 77")
    # The funder's save queued a drain: it ran, found Xero holding every value, wrote nothing.
    wait_until(lambda: not services.next_due_in(connection.pk) and not link_of(funder).drift)
    calls = [r.kind for r in xero.requests_for(CLIENT_ID)[since:]]
    assert calls == ["get_contacts"], calls


def test_an_organisation_without_a_webhook_learns_by_beats_read(worker, xero, organisation):
    worker.stop()
    worker.start(settings={"LOOKOUT_XERO_READ_CHANGES_SECONDS": "1"})
    org = xero.add_organisation(CLIENT_ID, CLIENT_SECRET)
    funder = make_funder(organisation, "Weka Society", phone="03 555")
    connection = make_connection(organisation, enabled=True)
    wait_until(lambda: SyncRun.objects.filter(status="completed").exists())
    services.set_directions(connection, {"Phones": "xero"})
    contact_id = link_of(funder).xero_contact_id

    org.edit(contact_id, Phones=[{"PhoneType": "DEFAULT", "PhoneNumber": "03 999"}])
    wait_until(lambda: (funder.refresh_from_db(), funder.phone)[1] == "03 999", timeout=30)
    reads = [r for r in xero.requests_for(CLIENT_ID) if r.header("if-modified-since")]
    assert reads and all(r.query.get("page") for r in reads)
    assert not [r for r in xero.writes_to(contact_id) if "03 999" in r.body.decode()]
