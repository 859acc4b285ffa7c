"""Bookkeepers change Xero too (issue 7): merges, archives, GDPR requests and edits in Xero.

The fake Xero over HTTP plays the bookkeeper, and the app's webhook endpoint is served by
Django's live server: each bookkeeper action is announced by a signed webhook, as Xero does.
The rules are the services': `work` runs in this process what a worker would (plan, read the
events' contacts, drain), so each test says exactly when the work happens. One test takes the
same path through a real worker, from the webhook to the push.
"""

from __future__ import annotations

import json

import pytest
from django.core.management import call_command

from lookout_xero import services, status
from lookout_xero.models import (
    OutboxEntry,
    SyncLog,
    SyncRun,
    XeroConnection,
    XeroContactLink,
    XeroWebhookEvent,
)
from tests.helpers import (
    CLIENT_ID,
    CLIENT_SECRET,
    drain_all,
    make_connection,
    make_funder,
    wait_until,
)

pytestmark = pytest.mark.django_db

WEBHOOK_KEY = "Vq3+bookkeeper/webhook-signing-key=="


def work(connection, rounds=10):
    """Do here what a worker does for the organisation, until nothing is left: plan its pending
    full syncs, apply Xero's webhook events, drain the outbox."""
    runs = SyncRun.objects.filter(connection=connection, status=SyncRun.Status.PENDING)
    events = XeroWebhookEvent.objects.filter(connection=connection)
    for _ in range(rounds):
        for run_id in runs.values_list("pk", flat=True):
            services.run_full_sync(run_id)
        if events.exists():
            services.process_webhooks(connection.pk)
        drain_all(connection)
        if not (runs.exists() or events.exists() or OutboxEntry.objects.exists()):
            return
    raise AssertionError(f"work left after {rounds} rounds")


def enable(organisation, xero, live_server=None):
    """Enable the connection, run its full sync, and point Xero's webhook at the app."""
    connection = make_connection(organisation)
    connection.webhook_key = WEBHOOK_KEY
    connection.enabled = True
    connection.save()
    work(connection)
    assert SyncRun.objects.get().status == SyncRun.Status.COMPLETED
    connection.refresh_from_db()
    if live_server is not None:
        xero.org(CLIENT_ID).set_webhook(live_server.url + connection.webhook_path, WEBHOOK_KEY)
    return connection


def link_of(funder):
    return XeroContactLink.objects.get(funder=funder)


def drained(funder):
    """A drain has taken the funder's pending change: pushed it, or dropped it (held)."""
    return not OutboxEntry.objects.filter(funder=funder).exists()


def writes_since(xero, contact_id, since):
    return [r for r in xero.writes_to(contact_id) if xero.requests.index(r) >= since]


def posted_bodies(xero, since=0):
    return [
        element
        for r in xero.requests[since:]
        if r.is_write
        for element in (r.json or {}).get("Contacts", [])
    ]


# --- rule 1: an ordinary update never changes ContactStatus -----------------------------------


def test_ordinary_updates_send_no_status_only_archive_and_restore_do(xero, organisation):
    org = xero.add_organisation(CLIENT_ID, CLIENT_SECRET)
    funder = make_funder(organisation, "Kauri Trust", email="kauri@example.org")
    connection = enable(organisation, xero)
    contact_id = link_of(funder).xero_contact_id
    since = len(xero.requests)

    funder.phone = "555 0100"
    funder.save()
    work(connection)
    assert "555 0100" in {p["PhoneNumber"] for p in org.contacts[contact_id]["Phones"]}
    funder.archived = True
    funder.save()
    work(connection)
    assert org.contacts[contact_id]["ContactStatus"] == "ARCHIVED"
    assert link_of(funder).archived_by == "lookout"
    funder.archived = False
    funder.save()
    work(connection)
    assert org.contacts[contact_id]["ContactStatus"] == "ACTIVE"

    statuses = [body.get("ContactStatus") for body in posted_bodies(xero, since)]
    assert statuses == [None, "ARCHIVED", "ACTIVE"]


def test_an_update_to_a_contact_archived_in_xero_does_not_revive_it(xero, organisation):
    """No webhook here: the write's answer is the signal (ARCHIVED, not asked for)."""
    org = xero.add_organisation(CLIENT_ID, CLIENT_SECRET)
    funder = make_funder(organisation, "Totara Club")
    connection = enable(organisation, xero)
    contact_id = link_of(funder).xero_contact_id
    org.archive(contact_id)  # Lookout is not told

    funder.city = "Nelson"
    funder.save()
    work(connection)
    assert link_of(funder).state == "xarchived"
    assert org.contacts[contact_id]["ContactStatus"] == "ARCHIVED"  # not revived
    assert len(org.contacts) == 1
    # One read of the contact by id, paged, to see whether it was merged.
    reads = [r for r in xero.requests if r.kind == "get_contacts" and "IDs" in r.query]
    assert len(reads) == 1 and reads[0].query["page"] == ["1"]

    funder.city = "Motueka"
    funder.save()
    work(connection)
    assert drained(funder)  # the drain dropped the paused funder's change
    assert link_of(funder).state == "xarchived"
    assert not any(
        "Motueka" in json.dumps(b) for b in posted_bodies(xero)
    )  # paused: nothing written


# --- rule 2: merged contacts are followed ----------------------------------------------------


@pytest.mark.worker
def test_a_webhook_reaches_a_worker_that_follows_the_merge_and_never_writes_the_old_contact(
    worker, xero, organisation, live_server
):
    """The whole path once, through a real worker: the bookkeeper merges in Xero, Xero's
    webhook reaches the app, the app publishes, a worker reads the contact and moves the link,
    and the funder's next change goes to the survivor."""
    org = xero.add_organisation(CLIENT_ID, CLIENT_SECRET)
    funder = make_funder(organisation, "Rimu Society", email="rimu@example.org", phone="555 1")
    connection = make_connection(organisation)
    connection.webhook_key = WEBHOOK_KEY
    connection.enabled = True
    connection.save()
    wait_until(lambda: SyncRun.objects.filter(status="completed").exists())
    connection.refresh_from_db()
    org.set_webhook(live_server.url + connection.webhook_path, WEBHOOK_KEY)
    x = link_of(funder).xero_contact_id
    y = org.add_contact(Name="Rimu Society Inc", TaxNumber="GST-9")["ContactID"]
    since = len(xero.requests)

    change = org.merge(x, y)
    assert change.delivery.as_xero_expects

    link = wait_until(lambda: (lnk := link_of(funder)).xero_contact_id == y and lnk)
    log = SyncLog.objects.get(outcome="followed_merge")
    assert f"followed a merge in Xero from {x} to {y}" in log.message
    # The change is pushed to the survivor, filling it and blanking nothing of the bookkeeper's.
    wait_until(lambda: org.contacts[y].get("EmailAddress") == "rimu@example.org")
    assert org.contacts[y]["TaxNumber"] == "GST-9"
    assert link.matched_by == "merge"

    funder.email = "office@rimu.example.org"
    funder.save()
    wait_until(lambda: org.contacts[y].get("EmailAddress") == "office@rimu.example.org")
    assert writes_since(xero, x, since) == []  # X is never written to again
    assert org.contacts[x]["ContactStatus"] == "ARCHIVED"
    assert org.contacts[x]["MergedToContactID"] == y
    assert len(org.contacts) == 2
    connection.refresh_from_db()
    assert connection.last_webhook_at is not None


def test_a_merge_in_xero_is_followed_and_the_old_contact_never_written(
    xero, organisation, live_server
):
    org = xero.add_organisation(CLIENT_ID, CLIENT_SECRET)
    funder = make_funder(organisation, "Rimu Society", email="rimu@example.org", phone="555 1")
    connection = enable(organisation, xero, live_server)
    x = link_of(funder).xero_contact_id
    y = org.add_contact(Name="Rimu Society Inc", TaxNumber="GST-9")["ContactID"]
    since = len(xero.requests)

    change = org.merge(x, y)
    assert change.delivery.as_xero_expects
    work(connection)

    link = link_of(funder)
    assert link.xero_contact_id == y and link.matched_by == "merge"
    log = SyncLog.objects.get(outcome="followed_merge")
    assert f"followed a merge in Xero from {x} to {y}" in log.message
    # The change is pushed to the survivor, filling it and blanking nothing of the bookkeeper's.
    assert org.contacts[y].get("EmailAddress") == "rimu@example.org"
    assert org.contacts[y]["TaxNumber"] == "GST-9"

    funder.email = "office@rimu.example.org"
    funder.save()
    work(connection)
    assert org.contacts[y].get("EmailAddress") == "office@rimu.example.org"
    assert writes_since(xero, x, since) == []  # X is never written to again
    assert org.contacts[x]["ContactStatus"] == "ARCHIVED"
    assert org.contacts[x]["MergedToContactID"] == y
    assert len(org.contacts) == 2
    connection.refresh_from_db()
    assert connection.last_webhook_at is not None


def test_a_chain_of_merges_is_followed_to_its_end(xero, organisation, live_server):
    org = xero.add_organisation(CLIENT_ID, CLIENT_SECRET)
    funder = make_funder(organisation, "Matai Arts")
    connection = enable(organisation, xero, live_server)
    x = link_of(funder).xero_contact_id
    y = org.add_contact(Name="Matai Arts Trust")["ContactID"]
    z = org.add_contact(Name="Matai Arts Charitable Trust")["ContactID"]

    with org.webhook_batch() as batch:  # X→Y then Y→Z, announced together
        org.merge(x, y)
        org.merge(y, z)
    assert batch.delivery.status == 200
    work(connection)

    assert link_of(funder).xero_contact_id == z
    assert f"from {x} to {z}" in SyncLog.objects.get(outcome="followed_merge").message
    assert org.contacts[z]["Name"] == "Matai Arts"
    assert xero.writes_to(y) == []


def test_a_merge_into_a_contact_linked_to_another_funder_is_a_conflict(
    xero, organisation, live_server
):
    org = xero.add_organisation(CLIENT_ID, CLIENT_SECRET)
    first = make_funder(organisation, "Harakeke Fund")
    second = make_funder(organisation, "Harakeke Foundation")
    connection = enable(organisation, xero, live_server)
    x, y = link_of(first).xero_contact_id, link_of(second).xero_contact_id
    since = len(xero.requests)

    org.merge(x, y)
    work(connection)
    link = link_of(first)
    assert link.state == "conflict"
    assert link.merged_into == y and "already linked to another funder" in link.last_error
    assert [c["contact_id"] for c in link.conflict_candidates] == [y]
    assert link_of(second).xero_contact_id == y  # the other funder keeps its contact

    first.name = "Harakeke Fund (renamed)"
    first.save()
    work(connection)
    assert drained(first)
    assert writes_since(xero, x, since) == [] and writes_since(xero, y, since) == []
    assert len(org.contacts) == 2


def test_a_write_answer_showing_a_merge_is_followed_and_pushed_again(xero, organisation):
    """No webhook: the update's answer shows ARCHIVED, a read by id shows the merge."""
    org = xero.add_organisation(CLIENT_ID, CLIENT_SECRET)
    funder = make_funder(organisation, "Kowhai Trust")
    connection = enable(organisation, xero)
    x = link_of(funder).xero_contact_id
    y = org.add_contact(Name="Kowhai Trust Board")["ContactID"]
    org.merge(x, y)  # Lookout is not told
    since = len(xero.requests)

    funder.region = "Tasman"
    funder.save()
    work(connection)
    assert link_of(funder).xero_contact_id == y
    assert "Tasman" in json.dumps(org.contacts[y]["Addresses"])
    assert len(writes_since(xero, x, since)) == 1  # the one write that revealed the merge
    assert org.contacts[x]["ContactStatus"] == "ARCHIVED"


# --- rule 3: archived in Xero by someone else --------------------------------------------------


def test_archived_in_xero_pauses_pushes_until_it_is_restored_there(xero, organisation, live_server):
    org = xero.add_organisation(CLIENT_ID, CLIENT_SECRET)
    funder = make_funder(organisation, "Pohutukawa Choir", city="Napier")
    connection = enable(organisation, xero, live_server)
    x = link_of(funder).xero_contact_id
    since = len(xero.requests)

    org.archive(x)
    work(connection)
    assert link_of(funder).state == "xarchived"
    assert link_of(funder).get_state_display() == "Archived in Xero"
    assert status.bookkeeper_counts(connection)["archived_in_xero"] == 1

    funder.city = "Hastings"
    funder.save()
    work(connection)
    assert drained(funder)
    assert writes_since(xero, x, since) == []  # paused: no write...
    assert len(org.contacts) == 1  # ...and no new contact
    assert org.contacts[x]["ContactStatus"] == "ARCHIVED"

    org.restore(x)  # syncing resumes by itself, with the change made meanwhile
    work(connection)
    assert "Hastings" in json.dumps(org.contacts[x]["Addresses"])
    assert link_of(funder).state == "synced"
    assert SyncLog.objects.filter(outcome="resumed").count() == 1


def test_a_person_can_restore_in_xero_or_stop_syncing(xero, organisation, live_server):
    org = xero.add_organisation(CLIENT_ID, CLIENT_SECRET)
    kept = make_funder(organisation, "Kept Funder")
    dropped = make_funder(organisation, "Dropped Funder")
    connection = enable(organisation, xero, live_server)
    kept_id, dropped_id = link_of(kept).xero_contact_id, link_of(dropped).xero_contact_id
    org.archive(kept_id)
    org.archive(dropped_id)
    work(connection)
    assert XeroContactLink.objects.filter(state="xarchived").count() == 2

    assert services.restore_in_xero(link_of(kept))
    services.stop_syncing_funder(link_of(dropped))
    work(connection)
    assert org.contacts[kept_id]["ContactStatus"] == "ACTIVE"
    assert link_of(kept).state == "synced"
    assert link_of(dropped).state == "ignored"
    assert org.contacts[dropped_id]["ContactStatus"] == "ARCHIVED"


# --- rule 4: GDPR requests ---------------------------------------------------------------------


def test_a_gdpr_request_is_never_written_recreated_or_matched_elsewhere(
    xero, organisation, live_server
):
    org = xero.add_organisation(CLIENT_ID, CLIENT_SECRET)
    funder = make_funder(organisation, "Aroha Patel", email="aroha@example.org", phone="555 7")
    connection = enable(organisation, xero, live_server)
    x = link_of(funder).xero_contact_id
    since = len(xero.requests)

    org.gdpr_request(x)
    work(connection)
    link = link_of(funder)
    assert link.state == "gdpr" and "GDPR" in link.last_error

    funder.phone = "555 8"
    funder.save()
    # A contact that would match the funder by e-mail: it must not be linked automatically.
    org.add_contact(Name="A Patel", EmailAddress="aroha@example.org")
    call_command("xero_sync", organisation=organisation.pk, full=True)
    work(connection)
    assert SyncRun.objects.filter(status="completed").count() == 2
    assert drained(funder)  # the save's change was taken, and held
    assert writes_since(xero, x, since) == []
    assert not [r for r in xero.requests[since:] if r.is_write]  # nothing written at all
    assert org.contacts[x]["ContactStatus"] == "GDPRREQUEST"
    assert len(org.contacts) == 2  # never re-created
    assert link_of(funder).xero_contact_id == x and link_of(funder).state == "gdpr"


# --- full sync ---------------------------------------------------------------------------------


def test_a_full_sync_follows_merges_and_respects_archives_and_gdpr(xero, organisation):
    org = xero.add_organisation(CLIENT_ID, CLIENT_SECRET)
    merged = make_funder(organisation, "Merged Funder")
    archived = make_funder(organisation, "Archived Funder")
    gdpr = make_funder(organisation, "Gdpr Funder")
    connection = enable(organisation, xero)  # no webhook: the full sync finds it all
    x1, x2, x3 = (link_of(f).xero_contact_id for f in (merged, archived, gdpr))
    y = org.add_contact(Name="Merged Funder Ltd")["ContactID"]
    org.merge(x1, y)
    org.archive(x2)
    org.gdpr_request(x3)
    since = len(xero.requests)

    call_command("xero_sync", organisation=organisation.pk, full=True)
    work(connection)
    assert SyncRun.objects.filter(status="completed").count() == 2
    assert org.contacts[y]["Name"] == "Merged Funder"
    assert link_of(merged).xero_contact_id == y
    assert (link_of(archived).state, link_of(gdpr).state) == ("xarchived", "gdpr")
    for contact_id in (x1, x2, x3):
        assert writes_since(xero, contact_id, since) == []
    assert len(org.contacts) == 4


# --- rule 5: drift -----------------------------------------------------------------------------


def test_drift_is_recorded_and_lookouts_profile_can_be_pushed_now(xero, organisation, live_server):
    org = xero.add_organisation(CLIENT_ID, CLIENT_SECRET)
    funder = make_funder(organisation, "Tui Choir", phone="555 0101", email="tui@example.org")
    connection = enable(organisation, xero, live_server)
    x = link_of(funder).xero_contact_id

    org.edit(x, Phones=[{"PhoneType": "DEFAULT", "PhoneNumber": "021 999"}])
    work(connection)
    link = link_of(funder)
    assert link.drift == {"Phones.DEFAULT.PhoneNumber": {"lookout": "555 0101", "xero": "021 999"}}
    funder.refresh_from_db()
    assert funder.phone == "555 0101"  # never written back into Lookout
    assert XeroContactLink.objects.filter(drift_seen_at__isnull=False).count() == 1

    assert services.push_profile_now([link]) == 1
    work(connection)
    assert not link_of(funder).drift
    default = next(p for p in org.contacts[x]["Phones"] if p["PhoneType"] == "DEFAULT")
    assert default["PhoneNumber"] == "555 0101"


# --- the endpoint ------------------------------------------------------------------------------


def test_intent_to_receive_signed_200_unsigned_wrong_key_tampered_401(
    transactional_db, xero, organisation, live_server
):
    org = xero.add_organisation(CLIENT_ID, CLIENT_SECRET)
    connection = make_connection(organisation)
    connection.webhook_key = WEBHOOK_KEY
    connection.save()
    url = live_server.url + connection.webhook_path
    assert connection.webhook_path == f"/xero/webhooks/{connection.webhook_id}/"
    org.set_webhook(url, WEBHOOK_KEY)

    deliveries = org.send_intent_to_receive()
    assert [d.status for d in deliveries] == [200, 401]
    assert all(d.as_xero_expects for d in deliveries)
    ok = deliveries[0]
    assert ok.response_body == b"" and "set-cookie" not in ok.response_headers

    assert org.deliver_webhook(ok.body, signature="").status == 401  # unsigned
    tampered = ok.body.replace(b'"events":[]', b'"events":[{}]')
    assert org.deliver_webhook(tampered, signature=ok.signature).status == 401
    org.set_webhook(url, "another-key")
    assert org.deliver_webhook(ok.body).status == 401  # signed with a wrong key
    org.set_webhook(live_server.url + "/xero/webhooks/not-a-connection/", WEBHOOK_KEY)
    assert org.deliver_webhook(ok.body).status == 401  # no such connection
    org.set_webhook(url, WEBHOOK_KEY)
    oversized = ok.body[:-1] + b',"padding":"' + b"x" * 300_000 + b'"}'
    assert (
        org.deliver_webhook(oversized).status == 401
    )  # correctly signed, but not a size Xero sends
    assert org.deliver_webhook(ok.body).status == 200  # and the real one still goes through
    assert not XeroWebhookEvent.objects.exists()  # an intent-to-receive has no events


def test_a_replayed_webhook_is_harmless(xero, organisation, live_server):
    org = xero.add_organisation(CLIENT_ID, CLIENT_SECRET)
    funder = make_funder(organisation, "Kereru Trust")
    connection = enable(organisation, xero, live_server)
    x = link_of(funder).xero_contact_id
    y = org.add_contact(Name="Kereru Trust Inc")["ContactID"]
    delivery = org.merge(x, y).delivery
    work(connection)
    assert link_of(funder).xero_contact_id == y
    assert org.contacts[y]["Name"] == "Kereru Trust"
    writes = len([r for r in xero.requests if r.is_write])

    assert org.resend(delivery).status == 200  # Xero retries byte for byte
    assert XeroWebhookEvent.objects.exists()  # kept, like any delivery...
    work(connection)  # ...and read again: it changes nothing
    assert SyncLog.objects.filter(outcome="followed_merge").count() == 1
    assert link_of(funder).xero_contact_id == y
    assert len([r for r in xero.requests if r.is_write]) == writes


def test_other_tenants_and_other_categories_change_nothing(xero, organisation, live_server):
    org = xero.add_organisation(CLIENT_ID, CLIENT_SECRET)
    funder = make_funder(organisation, "Weka Society")
    connection = enable(organisation, xero, live_server)
    x = link_of(funder).xero_contact_id
    calls = len(xero.requests_for(CLIENT_ID))

    def body(**event):
        base = {"resourceId": x, "eventType": "UPDATE", "eventCategory": "CONTACT"}
        base["tenantId"], base["tenantType"] = org.tenant_id, "ORGANISATION"
        payload = {"events": [{**base, **event}], "firstEventSequence": 1, "lastEventSequence": 1}
        return json.dumps(payload).encode()

    assert org.deliver_webhook(body(tenantId="5b0e6a3b-0000-4000-8000-000000000000")).status == 200
    assert org.deliver_webhook(body(eventCategory="INVOICE")).status == 200
    assert not XeroWebhookEvent.objects.exists()  # neither was kept
    # A genuine event after them is kept and read, and only it.
    assert org.deliver_webhook(body()).status == 200
    assert XeroWebhookEvent.objects.count() == 1
    work(connection)
    reads = [r for r in xero.requests_for(CLIENT_ID)[calls:] if r.kind == "get_contacts"]
    assert len(reads) == 1
    assert link_of(funder).state == "synced" and not link_of(funder).drift


def test_a_disabled_connection_answers_200_and_makes_no_call(xero, organisation, live_server):
    org = xero.add_organisation(CLIENT_ID, CLIENT_SECRET)
    funder = make_funder(organisation, "Kaka Trust")
    connection = enable(organisation, xero, live_server)
    x = link_of(funder).xero_contact_id
    connection.enabled = False
    connection.save()
    calls = len(xero.requests_for(CLIENT_ID))

    change = org.archive(x)
    assert change.delivery.status == 200 and change.delivery.as_xero_expects
    assert not XeroWebhookEvent.objects.exists()
    work(connection)  # what a worker would do for it now: nothing...
    assert services.sweep() == {"runs": 0, "connections": 0, "at_lease_expiry": 0, "webhooks": 0}
    assert len(xero.requests_for(CLIENT_ID)) == calls  # ...and no call of any kind
    assert link_of(funder).state == "synced"


def test_calls_per_event_batch_and_the_answer_time(xero, organisation, live_server):
    """Figures for the report: one paged GET per 50 linked contacts an event batch names."""
    org = xero.add_organisation(CLIENT_ID, CLIENT_SECRET)
    funders = [make_funder(organisation, f"Batch Funder {i:02}") for i in range(60)]
    connection = enable(organisation, xero, live_server)
    ids = [link_of(f).xero_contact_id for f in funders]
    calls = len(xero.requests_for(CLIENT_ID))

    with org.webhook_batch() as batch:
        for contact_id in ids:
            org.archive(contact_id)
    work(connection)
    assert XeroContactLink.objects.filter(state="xarchived").count() == 60
    made = xero.requests_for(CLIENT_ID)[calls:]
    reads = [r for r in made if r.kind == "get_contacts"]
    print(
        f"\n60 events in one delivery: {len(made)} Xero calls "
        f"({len(reads)} GET /Contacts?IDs=…, {len(made) - len(reads)} other); "
        f"the endpoint answered {batch.delivery.status} in {batch.delivery.seconds * 1000:.0f} ms"
    )
    assert [len(r.query["IDs"][0].split(",")) for r in reads] == [50, 10]
    assert not [r for r in made if r.is_write]
    assert batch.delivery.as_xero_expects

    one = org.edit(ids[0], TaxNumber="GST-1").delivery
    print(f"1 event: answered {one.status} in {one.seconds * 1000:.0f} ms")
    assert one.as_xero_expects
    assert XeroConnection.objects.get().last_webhook_at is not None
