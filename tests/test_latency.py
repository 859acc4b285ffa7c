"""Latency under load: a drain a person asked for goes ahead of work nobody is watching.

The worker test runs a real worker on the run's real broker; what it checks is the order in
which Xero receives the writes, not wall-clock thresholds.
"""

from __future__ import annotations

import pytest
from django.db import transaction

from lookout_xero import dispatch, queues, services
from lookout_xero.models import SyncRun, XeroConnection
from project.funders.models import Organisation
from tests.helpers import CLIENT_ID, CLIENT_SECRET, make_connection, make_funder, wait_until

BACKLOG_ORGS = 8


@pytest.mark.django_db(transaction=True)
def test_a_save_and_push_now_ask_for_an_edit_drain_and_a_full_sync_for_a_backlog_drain(
    organisation, published, xero
):
    xero.add_organisation(CLIENT_ID, CLIENT_SECRET)
    connection = make_connection(organisation, enabled=True)
    services.run_full_sync(SyncRun.objects.get().pk, attempt=1)  # nothing to queue yet
    published.clear()
    with transaction.atomic():
        funder = make_funder(organisation, "Edited")
    services.push_now(XeroConnection.objects.get(pk=connection.pk), [funder.pk])
    assert published == [("lookout_xero.drain_outbox", queues.EDITS)] * 2
    published.clear()
    services.start_full_sync(connection, trigger=SyncRun.Trigger.MANUAL)
    run = SyncRun.objects.filter(status="pending").get()
    services.run_full_sync(run.pk, attempt=1)
    assert ("lookout_xero.drain_outbox", queues.DRAIN) in published
    assert ("lookout_xero.drain_outbox", queues.EDITS) not in published
    assert queues.ALL[0] == queues.EDITS  # a worker without -Q takes it first


@pytest.mark.worker
def test_an_edit_drain_overtakes_the_drains_of_full_sync_backlogs(worker, xero, organisation):
    xero.add_organisation(CLIENT_ID, CLIENT_SECRET)
    make_connection(organisation, enabled=True)
    wait_until(lambda: SyncRun.objects.filter(status="completed").exists())
    backlog = []
    for i in range(BACKLOG_ORGS):
        client_id = f"backlog-{i}"
        xero.add_organisation(client_id, CLIENT_SECRET, name=f"Backlog {i}")
        other = Organisation.objects.create(name=f"Backlog {i}")
        funders = [make_funder(other, f"Backlog {i} member {n}") for n in range(3)]
        connection = make_connection(other, client_id=client_id)
        # Enabled without the switch: what its full sync's plan leaves (queued funders and a
        # drain on the backlog queue), without the planning.
        XeroConnection.objects.filter(pk=connection.pk).update(enabled=True)
        for funder in funders:
            services.queue_funder(connection.pk, funder.pk)
        backlog.append(connection.pk)
    # Xero holds the backlog's writes until the edit is queued, so the backlog outlasts it.
    held = xero.delay_next(60, times=BACKLOG_ORGS + 1, method="POST")
    for connection_id in backlog:
        dispatch.send(dispatch.DRAIN_OUTBOX, connection_id)
    # The worker's two processes are busy with the first backlog drains; the rest wait.
    wait_until(lambda: len(posts(xero)) >= 2, timeout=30)

    with transaction.atomic():
        make_funder(organisation, "Edited meanwhile", email="edit@example.org")
    held.release()

    wait_until(lambda: len(posts(xero)) == BACKLOG_ORGS + 1, timeout=120, interval=0.2)
    order = [record.client_id for record in posts(xero)]
    ahead = order.index(CLIENT_ID)
    print(f"\nthe edit's write reached Xero after {ahead} of {BACKLOG_ORGS} backlog writes")
    # Two backlog drains were running when the edit was saved, and a third may have been
    # taken in the same instant; the other five waited behind it.
    assert ahead <= 3, order


def posts(xero):
    return sorted(
        (r for r in xero.requests if r.method == "POST" and "/Contacts" in r.path),
        key=lambda r: r.received_at,
    )


@pytest.mark.django_db
def test_a_drain_hands_its_backlog_over_after_its_slice_so_organisations_take_turns(
    organisation, xero, settings
):
    settings.LOOKOUT_XERO = {**settings.LOOKOUT_XERO, "DRAIN_SLICE_SECONDS": 0}
    big = xero.add_organisation(CLIENT_ID, CLIENT_SECRET)
    connection = make_connection(organisation, enabled=True)
    services.run_full_sync(SyncRun.objects.get().pk)
    for i in range(150):  # three batches of 50
        make_funder(organisation, f"Member {i:03}")
    passes = []
    while True:
        follow_up = services.drain_once(connection.pk)
        passes.append(len(big.contacts))
        if follow_up is None:
            break
        assert follow_up.seconds == 0  # at once, but behind what is queued meanwhile
        assert XeroConnection.objects.get(pk=connection.pk).lease_token == ""  # handed over
    assert passes == [50, 100, 150]
