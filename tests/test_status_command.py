"""`manage.py xero_status [--json]`: states, figures, exit codes, its query count, and the admin's
"needs attention" filter, which must agree with it.

Each state is produced by the real sync against the fake Xero (in-process), as in test_sync.
"""

from __future__ import annotations

import json
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import connection as db_connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from lookout_xero import services, status
from lookout_xero.models import OutboxEntry, XeroConnection, XeroContactLink
from project.funders.models import Organisation
from tests.helpers import CLIENT_SECRET, make_connection, make_funder

pytestmark = pytest.mark.django_db

STATES = ["healthy", "disabled", "error", "paused", "conflict", "syncing"]
NEEDS_ATTENTION = {"error", "paused", "conflict"}


def build(xero, state: str, name: str | None = None) -> XeroConnection:
    """A connection of an organisation called after its state, put there by the real sync."""
    organisation = Organisation.objects.create(name=name or state.title())
    client_id = f"client-{organisation.pk}"
    org = xero.add_organisation(client_id, CLIENT_SECRET)
    connection = make_connection(organisation, client_id=client_id, enabled=state != "disabled")
    if state == "disabled":
        return connection
    services.run_full_sync(connection.runs.get().pk)
    if state == "healthy":
        make_funder(organisation, f"{organisation.name} Member")
    elif state == "error":
        connection.client_secret = "wrong-" + CLIENT_SECRET
        connection.save()
        make_funder(organisation, "Waiting")
    elif state == "paused":
        make_funder(organisation, "Throttled")
        org.set_limits(day_remaining=0)
    elif state == "conflict":
        org.add_contact(Name="Harbour Books Ltd")
        make_funder(organisation, "Harbour Books Ltd", email="other@example.org")
        OutboxEntry.objects.filter(connection=connection).update(looked_up=True)
    elif state == "syncing":
        make_funder(organisation, "Not Yet Pushed")
        return connection  # left in the outbox
    services.drain(connection.pk)
    if state == "conflict":  # waited longer than ALERT_AFTER_MINUTES
        XeroContactLink.objects.filter(connection=connection).update(
            updated_at=timezone.now() - timedelta(hours=2)
        )
    return connection


def run_status(*args) -> tuple[int, str]:
    out, err = StringIO(), StringIO()
    try:
        call_command("xero_status", *args, stdout=out, stderr=err)
    except SystemExit as exit:
        return exit.code, out.getvalue()
    return 0, out.getvalue()


@pytest.mark.parametrize("state", STATES)
def test_each_state_its_line_json_and_exit_code(xero, state):
    connection = build(xero, state)
    expected_code = 1 if state in NEEDS_ATTENTION else 0

    code, out = run_status()
    assert code == expected_code
    [line] = out.splitlines()
    fields = line.split(" | ")
    expected_state = "error" if state == "error" else state.replace("conflict", "healthy")
    assert fields[:2] == [state.title(), expected_state]
    assert fields[-1] == (
        "NEEDS ATTENTION: " + ("conflicts" if state == "conflict" else state)
        if expected_code
        else "ok"
    )

    code, out = run_status("--json")
    assert code == expected_code
    [row] = json.loads(out)
    assert row["organisation"] == state.title() and row["state"] == expected_state
    assert row["needs_attention"] is bool(expected_code)
    assert row["connection_id"] == connection.pk
    assert CLIENT_SECRET not in out and "wrong-" not in out


def test_figures_in_the_line_and_the_json(xero):
    connection = build(xero, "syncing", name="Kauri Arts")
    OutboxEntry.objects.update(created_at=timezone.now() - timedelta(minutes=90))
    XeroConnection.objects.filter(pk=connection.pk).update(
        day_limit_remaining=4321, limits_seen_at=timezone.now(), last_synced_at=None
    )
    code, out = run_status()
    assert code == 0
    assert out.strip() == (
        "Kauri Arts | syncing | pending 1 (oldest 1h30m) | conflicts 0 | failures 0 | "
        "waiting for a decision 0 | last successful sync never | calls left today 4,321 | ok"
    )
    [row] = json.loads(run_status("--json")[1])
    assert row["pending"] == 1 and 5390 <= row["oldest_pending_seconds"] <= 5420
    assert (row["conflicts"], row["failures"], row["calls_left_today"]) == (0, 0, 4321)
    assert row["last_synced_at"] is None and row["attention"] == []


def test_a_fresh_conflict_is_counted_but_does_not_need_attention_yet(xero, settings):
    build(xero, "conflict")
    XeroContactLink.objects.update(updated_at=timezone.now())
    code, out = run_status()
    assert code == 0 and "| conflicts 1 |" in out and out.strip().endswith("| ok")
    settings.LOOKOUT_XERO = {**settings.LOOKOUT_XERO, "ALERT_AFTER_MINUTES": 0}
    assert run_status()[0] == 1


def test_a_disabled_connection_in_error_needs_no_attention(xero):
    connection = build(xero, "error")
    connection.refresh_from_db()
    connection.enabled = False
    connection.save()
    code, out = run_status()
    assert code == 0 and "| disabled |" in out


def test_no_connections(db):
    assert run_status() == (0, "No Xero connections.\n")
    assert run_status("--json") == (0, "[]\n")


def test_all_states_together_exit_non_zero_sorted_by_organisation(xero):
    for state in STATES:
        build(xero, state)
    code, out = run_status("--json")
    rows = json.loads(out)
    assert code == 1
    assert [row["organisation"] for row in rows] == sorted(s.title() for s in STATES)
    assert {row["organisation"] for row in rows if row["needs_attention"]} == {
        s.title() for s in NEEDS_ATTENTION
    }


def test_query_count_does_not_grow_with_connections(xero):
    def queries_for_status() -> int:
        with CaptureQueriesContext(db_connection) as queries:
            run_status("--json")
        return len(queries)

    build(xero, "conflict", name="Org 0")
    one = queries_for_status()
    for number in range(1, 50):
        build(xero, ["healthy", "error", "syncing", "disabled"][number % 4], name=f"Org {number}")
    fifty = queries_for_status()
    assert len(json.loads(run_status("--json")[1])) == 50
    assert one == fifty == 1  # connections, organisations and every count: one SELECT


# --- the admin's filter is the same definition -------------------------------------------------


def test_admin_needs_attention_filter_matches_xero_status(xero, admin_client):
    for state in STATES:
        build(xero, state)
    changelist = reverse("admin:lookout_xero_xeroconnection_changelist")

    def listed(query: str) -> set[str]:
        response = admin_client.get(f"{changelist}?{query}")
        assert response.status_code == 200
        return {str(c.organisation) for c in response.context["cl"].result_list}

    rows = json.loads(run_status("--json")[1])
    attention = {row["organisation"] for row in rows if row["needs_attention"]}
    assert listed("needs_attention=yes") == attention == {s.title() for s in NEEDS_ATTENTION}
    assert listed("needs_attention=no") == {s.title() for s in STATES} - attention
    assert set(status.ATTENTION_KINDS) == {"error", "paused", "conflicts", "failures", "decisions"}
