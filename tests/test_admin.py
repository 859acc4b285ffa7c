"""The admin with Django's test client: secrets, permissions, actions, queries, conflicts, log."""

from __future__ import annotations

import json
from datetime import timedelta
from io import StringIO

import pytest
from django.contrib.auth.models import Permission
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone

from lookout_xero import services
from lookout_xero.models import (
    OutboxEntry,
    SyncLog,
    SyncRun,
    XeroAlert,
    XeroConnection,
    XeroContactLink,
)
from project.funders.models import Organisation
from tests.helpers import CLIENT_ID, CLIENT_SECRET, make_connection, make_funder

pytestmark = pytest.mark.django_db

NEW_SECRET = "n3w-secret-ALSO-DO-NOT-LEAK"
TOKEN = "access-token-DO-NOT-LEAK"


def url(name, *args, query=""):
    return reverse(f"admin:lookout_xero_{name}", args=args) + (f"?{query}" if query else "")


def change_url(connection):
    return url("xeroconnection_change", connection.pk)


def text(response) -> str:
    return response.content.decode()


def messages_of(response) -> list[str]:
    return [str(m) for m in response.context["messages"]] if response.context else []


def form_data(connection, **changes):
    """The connection change form as the browser would post it (Enabled unticked = absent)."""
    data = {"client_id": connection.client_id, "client_secret": "", "scope": connection.scope}
    if connection.enabled:
        data["enabled"] = "on"
    data.update(changes)
    return {key: value for key, value in data.items() if value is not None}


@pytest.fixture
def staff_client(client, django_user_model):
    """Staff who may view and operate Xero sync, but not see credentials or the switch."""
    user = django_user_model.objects.create_user("viewer", password="pw", is_staff=True)
    user.user_permissions.set(
        Permission.objects.filter(
            content_type__app_label="lookout_xero",
            codename__in=[
                "view_xeroconnection",
                "change_xeroconnection",
                "view_syncrun",
                "view_synclog",
                "view_xerocontactlink",
            ],
        )
        | Permission.objects.filter(content_type__app_label="funders")
    )
    client.force_login(user)
    return client


def conflict_link(connection, funder, *candidates):
    return XeroContactLink.objects.create(
        connection=connection,
        funder=funder,
        state=XeroContactLink.State.CONFLICT,
        last_error="2 Xero contacts have this name",
        conflict_candidates=[
            {"contact_id": cid, "name": name, "email": "", "status": "ACTIVE"}
            for cid, name in candidates
        ],
    )


# --- the Client Secret is write-only ---------------------------------------------------------


def test_secret_is_never_rendered_blank_keeps_it_and_typing_replaces_it(admin_client, organisation):
    connection = make_connection(organisation)
    set_at = connection.client_secret_set_at
    page = text(admin_client.get(change_url(connection)))
    assert CLIENT_SECRET not in page
    assert "Set on " in page and 'name="client_secret"' in page

    response = admin_client.post(change_url(connection), form_data(connection, scope=""))
    assert response.status_code == 302
    connection.refresh_from_db()
    assert connection.client_secret == CLIENT_SECRET and connection.scope == ""
    assert connection.client_secret_set_at == set_at

    response = admin_client.post(
        change_url(connection), form_data(connection, client_secret=NEW_SECRET), follow=True
    )
    connection.refresh_from_db()
    assert connection.client_secret == NEW_SECRET
    assert connection.client_secret_set_at > set_at
    assert NEW_SECRET not in text(response) and CLIENT_SECRET not in text(response)
    page = text(admin_client.get(change_url(connection)))
    assert NEW_SECRET not in page


def test_a_form_opened_before_the_sync_wrote_does_not_write_it_back(admin_client, organisation):
    connection = make_connection(organisation, enabled=True)
    page_opened_with = form_data(connection, scope="accounting.contacts accounting.settings.read")
    until = timezone.now() + timedelta(hours=2)
    XeroConnection.objects.filter(pk=connection.pk).update(  # the sync, meanwhile
        paused_until=until, lease_token="held-by-a-worker", drain_requested=True
    )
    assert admin_client.post(change_url(connection), page_opened_with).status_code == 302
    fresh = XeroConnection.objects.get(pk=connection.pk)
    assert fresh.scope == "accounting.contacts accounting.settings.read"
    assert (fresh.paused_until, fresh.lease_token, fresh.drain_requested) == (
        until,
        "held-by-a-worker",
        True,
    )


def test_a_form_with_errors_does_not_echo_the_typed_secret(admin_client, organisation):
    response = admin_client.post(
        url("xeroconnection_add"),
        {"organisation": organisation.pk, "client_id": "", "client_secret": NEW_SECRET},
    )
    assert response.status_code == 200 and response.context["errors"]
    assert NEW_SECRET not in text(response)
    assert not XeroConnection.objects.exists()


def test_new_connection_needs_a_secret_and_starts_with_the_default_scope(
    admin_client, organisation
):
    page = text(admin_client.get(url("xeroconnection_add")))
    assert 'value="accounting.contacts"' in page
    assert "Enabling runs a full sync of all unarchived membership funders" in page
    response = admin_client.post(
        url("xeroconnection_add"), {"organisation": organisation.pk, "client_id": CLIENT_ID}
    )
    assert "Paste the Client Secret" in text(response)


# --- permissions -----------------------------------------------------------------------------


def test_staff_without_the_permission_see_status_but_no_credentials_or_switch(
    staff_client, organisation
):
    connection = make_connection(organisation)
    response = staff_client.get(change_url(connection))
    page = text(response)
    assert response.status_code == 200
    assert "Sync status" in page
    for name in ("client_id", "client_secret", "scope", "enabled"):
        assert f'name="{name}"' not in page
    assert CLIENT_ID not in page and "Test connection" not in page
    assert not response.context["adminform"].form.fields

    staff_client.post(
        change_url(connection), {"client_id": "hijack", "enabled": "on", "scope": "x"}
    )
    connection.refresh_from_db()
    assert (connection.client_id, connection.enabled, connection.scope) == (
        CLIENT_ID,
        False,
        "accounting.contacts",
    )
    assert staff_client.get(url("xeroconnection_add")).status_code == 403
    test = staff_client.post(url("xeroconnection_test_connection"), {"connection": connection.pk})
    assert test.status_code == 403
    assert staff_client.get(url("xeroconnection_status", connection.pk)).status_code == 200
    assert staff_client.get(url("synclog_changelist")).status_code == 200


def test_staff_with_the_permission_see_and_change_credentials(
    client, django_user_model, organisation
):
    connection = make_connection(organisation)
    user = django_user_model.objects.create_user("manager", password="pw", is_staff=True)
    user.user_permissions.set(
        Permission.objects.filter(
            content_type__app_label="lookout_xero",
            codename__in=[
                "view_xeroconnection",
                "change_xeroconnection",
                "manage_xero_credentials",
            ],
        )
    )
    client.force_login(user)
    page = text(client.get(change_url(connection)))
    assert 'name="client_id"' in page and 'name="enabled"' in page and CLIENT_SECRET not in page
    client.post(change_url(connection), form_data(connection, client_id="client-new"))
    connection.refresh_from_db()
    assert connection.client_id == "client-new"


# --- Test connection -------------------------------------------------------------------------


def test_test_connection_names_the_organisation_or_says_why_and_enables_nothing(
    admin_client, organisation, xero
):
    xero.add_organisation(CLIENT_ID, CLIENT_SECRET, name="Harbour Trust Ltd")
    xero.add_organisation("scope-less", "s", name="New Style", reject_explicit_scope=True)
    connection = make_connection(organisation)
    test_url = url("xeroconnection_test_connection")

    def check(**fields):
        data = {"client_id": CLIENT_ID, "scope": "accounting.contacts", **fields}
        response = admin_client.post(test_url, data)
        assert response.status_code == 200
        assert CLIENT_SECRET not in text(response)
        return response.json()

    wrong = check(client_secret="wrong")
    assert not wrong["ok"] and "did not accept this Client ID and Client Secret" in wrong["message"]
    typed = check(client_secret=CLIENT_SECRET)
    assert typed["ok"] and "Harbour Trust Ltd" in typed["message"]
    stored = check(client_secret="", connection=connection.pk)
    assert stored["ok"] and stored["tenant_name"] == "Harbour Trust Ltd"
    scope = check(client_id="scope-less", client_secret="s")
    assert not scope["ok"] and "refused the scope" in scope["message"]
    assert check(client_id="", client_secret="x")["ok"] is False

    connection.refresh_from_db()
    assert not connection.enabled and not SyncRun.objects.exists()
    assert admin_client.get(test_url).status_code == 405


def test_test_connection_says_when_xero_cannot_be_reached(admin_client, settings, xero):
    settings.LOOKOUT_XERO = {**settings.LOOKOUT_XERO, "TOKEN_URL": "http://127.0.0.1:9/token"}
    answer = admin_client.post(
        url("xeroconnection_test_connection"), {"client_id": "a", "client_secret": "b"}
    ).json()
    assert not answer["ok"] and "Could not reach Xero" in answer["message"]


# --- status ----------------------------------------------------------------------------------


def test_status_json_has_the_panel_figures_and_no_secret_or_token(admin_client, organisation):
    connection = make_connection(organisation, enabled=True)
    XeroConnection.objects.filter(pk=connection.pk).update(
        access_token=TOKEN,
        min_limit_remaining=42,
        day_limit_remaining=4321,
        limits_seen_at=timezone.now(),
    )
    for funder in [make_funder(organisation, f"F{i}") for i in range(3)]:
        OutboxEntry.objects.get_or_create(connection=connection, funder=funder)
    response = admin_client.get(url("xeroconnection_status", connection.pk))
    body = text(response)
    assert CLIENT_SECRET not in body and TOKEN not in body and CLIENT_ID not in body
    data = json.loads(body)
    assert data["health"]["key"] == "syncing"
    assert data["pending"] == 3
    assert data["calls_left"] == "42 this minute, 4,321 today"
    assert data["run"]["status"] == "pending" and data["run"]["active"]


def test_health_words_for_each_state(organisation):
    from lookout_xero import status

    connection = make_connection(organisation)
    assert status.health(connection).label == "Disabled"
    connection.enabled = True
    assert status.health(connection).label == "Healthy"
    assert status.health(connection, syncing=True).label == "Syncing"
    connection.paused_until = timezone.now() + timedelta(hours=2)
    assert status.health(connection).label.startswith("Paused until ")
    connection.state, connection.error_code = XeroConnection.State.ERROR, "invalid_client"
    state = status.health(connection)
    assert (state.key, state.label) == ("error", "Error") and "Client Secret" in state.reason


def test_connection_list_shows_status_counts_without_a_query_per_row(
    admin_client, django_assert_max_num_queries
):
    for i in range(30):
        organisation = Organisation.objects.create(name=f"Org {i:02}")
        connection = make_connection(organisation, client_id=f"c{i}", enabled=i % 3 != 0)
        funders = [make_funder(organisation, f"Funder {i}-{n}") for n in range(3)]
        XeroContactLink.objects.create(
            connection=connection, funder=funders[0], state=XeroContactLink.State.CONFLICT
        )
        XeroContactLink.objects.create(
            connection=connection, funder=funders[1], state=XeroContactLink.State.FAILED
        )
    with django_assert_max_num_queries(8):
        response = admin_client.get(url("xeroconnection_changelist"))
    page = text(response)
    assert page.count("lx-badge--disabled") == 10
    assert page.count("lx-badge--syncing") == 20  # enabled: a full sync is pending
    assert "?connection=" in page and "state__exact=failed" in page
    assert CLIENT_SECRET not in page
    listed = response.context["cl"].result_list
    # The list shows no credentials, so it neither loads nor decrypts them.
    assert all(
        {"client_id", "client_secret", "access_token"} <= c.get_deferred_fields() for c in listed
    )


# --- actions: they enqueue -------------------------------------------------------------------


def test_sync_now_action_records_a_run_and_starts_it_on_commit(
    admin_client, organisation, django_capture_on_commit_callbacks
):
    connection = make_connection(organisation, enabled=True)
    first = connection.runs.get()
    with django_capture_on_commit_callbacks() as callbacks:
        response = admin_client.post(
            url("xeroconnection_changelist"),
            {"action": "sync_now", "_selected_action": [connection.pk]},
            follow=True,
        )
    run = connection.runs.exclude(pk=first.pk).get()
    assert (run.trigger, run.status, run.dry_run) == ("manual", "pending", False)
    first.refresh_from_db()
    assert first.status == "cancelled"
    assert len(callbacks) == 1
    assert f"full sync #{run.pk} queued" in " ".join(messages_of(response))


def test_sync_now_on_a_disabled_connection_says_so_and_starts_nothing(admin_client, organisation):
    connection = make_connection(organisation)
    response = admin_client.post(url("xeroconnection_sync_now", connection.pk), follow=True)
    assert "disabled" in " ".join(messages_of(response))
    assert not SyncRun.objects.exists()
    assert admin_client.get(url("xeroconnection_sync_now", connection.pk)).status_code == 405


def test_retry_failed_button_queues_failed_funders(
    admin_client, organisation, django_capture_on_commit_callbacks
):
    failed = [make_funder(organisation, f"Failed {i}") for i in range(3)]
    fine = make_funder(organisation, "Fine")
    connection = make_connection(organisation, enabled=True)
    for funder in failed:
        XeroContactLink.objects.create(
            connection=connection, funder=funder, state=XeroContactLink.State.FAILED
        )
    XeroContactLink.objects.create(
        connection=connection, funder=fine, state=XeroContactLink.State.SYNCED
    )
    with django_capture_on_commit_callbacks() as callbacks:
        response = admin_client.post(url("xeroconnection_retry_failed", connection.pk))
    assert response.status_code == 302 and response.url == change_url(connection)
    assert set(OutboxEntry.objects.values_list("funder_id", flat=True)) == {f.pk for f in failed}
    assert len(callbacks) == 1


def test_enabling_in_the_form_starts_a_full_sync_and_stays_to_show_progress(
    admin_client, organisation, django_capture_on_commit_callbacks
):
    connection = make_connection(organisation)
    with django_capture_on_commit_callbacks() as callbacks:
        response = admin_client.post(
            change_url(connection), form_data(connection, enabled="on", _save="Save")
        )
    assert response.status_code == 302 and response.url == change_url(connection)
    assert connection.runs.get().trigger == "enabled"
    assert len(callbacks) == 1
    page = text(admin_client.get(response.url))
    assert "Enabled: a full sync of all unarchived membership funders has started" in page
    assert 'role="progressbar"' in page and "Cancel this sync" in page


def test_cancel_ends_the_run_and_drops_what_it_queued(admin_client, organisation):
    funders = [make_funder(organisation, f"M{i}") for i in range(4)]
    connection = make_connection(organisation, enabled=True)
    run = connection.runs.get()
    SyncRun.objects.filter(pk=run.pk).update(status="running", in_scope=4, created=1)
    for funder in funders[1:]:
        OutboxEntry.objects.create(connection=connection, funder=funder, run=run)
    response = admin_client.post(url("xeroconnection_cancel_run", connection.pk), follow=True)
    run.refresh_from_db()
    assert run.status == "cancelled" and "Cancelled by admin" in run.message
    assert not OutboxEntry.objects.exists()
    assert f"Cancelled full sync #{run.pk}" in " ".join(messages_of(response))


def test_push_now_action_and_button_on_the_funder_admin(
    admin_client, organisation, django_capture_on_commit_callbacks
):
    other = Organisation.objects.create(name="No Xero Here")
    funders = [make_funder(organisation, f"P{i}") for i in range(3)]
    stranger = make_funder(other, "Stranger")
    make_connection(organisation, enabled=True)
    with django_capture_on_commit_callbacks() as callbacks:
        response = admin_client.post(
            reverse("admin:funders_funder_changelist"),
            {"action": "push_to_xero", "_selected_action": [f.pk for f in [*funders, stranger]]},
            follow=True,
        )
    assert set(OutboxEntry.objects.values_list("funder_id", flat=True)) == {f.pk for f in funders}
    assert len(callbacks) == 1
    said = " ".join(messages_of(response))
    assert "Queued 3 funder(s)" in said and "1 funder(s) not queued" in said

    OutboxEntry.objects.all().delete()
    response = admin_client.post(url("xerocontactlink_push", funders[0].pk))
    assert response.url == reverse("admin:funders_funder_change", args=[funders[0].pk])
    assert list(OutboxEntry.objects.values_list("funder_id", flat=True)) == [funders[0].pk]


def test_funder_page_shows_the_xero_panel_with_push_now(admin_client, staff_client, organisation):
    funder = make_funder(organisation, "Panel Funder")
    connection = make_connection(organisation, enabled=True)
    XeroContactLink.objects.create(
        connection=connection,
        funder=funder,
        state=XeroContactLink.State.SYNCED,
        xero_contact_id="0f0e6d5c-1111-2222-3333-444455556666",
        last_error="",
        last_synced_at=timezone.now(),
    )
    page = text(admin_client.get(reverse("admin:funders_funder_change", args=[funder.pk])))
    assert "Xero sync" in page and "lx-badge--healthy" in page
    assert 'href="https://go.xero.com/Contacts/View/0f0e6d5c-1111-2222-3333-444455556666"' in page
    assert "data-lx-push=" in page and 'rel="noopener"' in page
    # The panel does not break saving the funder.
    data = {"name": "Renamed", "organisation": organisation.pk, "funder_type": "membership"}
    data.update({"xero_links-TOTAL_FORMS": "1", "xero_links-INITIAL_FORMS": "1"})
    data.update(
        {"xero_links-0-id": XeroContactLink.objects.get().pk, "xero_links-0-funder": funder.pk}
    )
    response = admin_client.post(reverse("admin:funders_funder_change", args=[funder.pk]), data)
    assert response.status_code == 302
    funder.refresh_from_db()
    assert funder.name == "Renamed"


# --- runs and the log ------------------------------------------------------------------------


def make_log(connection, funder=None, outcome="created", run=None, **fields):
    return SyncLog.objects.create(
        connection=connection,
        run=run,
        funder=funder,
        funder_name=funder.name if funder else "",
        funder_email=funder.email if funder else "",
        outcome=outcome,
        **fields,
    )


def test_run_list_and_detail_link_to_that_runs_log_rows(admin_client, organisation):
    connection = make_connection(organisation, enabled=True)
    run = connection.runs.get()
    SyncRun.objects.filter(pk=run.pk).update(status="completed", in_scope=2, created=2)
    funder = make_funder(organisation, "In The Run")
    make_log(connection, funder, run=run)
    make_log(connection, make_funder(organisation, "Not In The Run"))
    listing = text(admin_client.get(url("syncrun_changelist")))
    assert f"Full sync #{run.pk}" in listing and "2 / 2 (100%)" in listing
    detail = text(admin_client.get(url("syncrun_change", run.pk)))
    assert f"?run={run.pk}" in detail
    log = text(admin_client.get(url("synclog_changelist", query=f"run={run.pk}")))
    assert "In The Run" in log and "Not In The Run" not in log


def test_log_filters_search_and_links(admin_client, organisation):
    other = Organisation.objects.create(name="Other Org")
    here = make_connection(organisation, enabled=True)
    there = make_connection(other, client_id="c2", enabled=True)
    alice = make_funder(organisation, "Alice Ngata", email="alice@example.org")
    bob = make_funder(other, "Bob Smith", email="bob@example.org")
    make_log(here, alice, xero_contact_id="aaaaaaaa-0000-0000-0000-000000000001")
    make_log(there, bob, outcome="failed", message="Email address must be valid.")
    old = make_log(here, alice, outcome="updated")
    SyncLog.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(days=400))

    def rows(query):
        response = admin_client.get(url("synclog_changelist", query=query))
        assert response.status_code == 200, query
        return [(r.funder_name, r.outcome) for r in response.context["cl"].result_list]

    assert rows("outcome__exact=failed") == [("Bob Smith", "failed")]
    assert set(rows(f"connection__organisation__id__exact={organisation.pk}")) == {
        ("Alice Ngata", "created"),
        ("Alice Ngata", "updated"),
    }
    assert rows("q=bob%40example.org") == [("Bob Smith", "failed")]
    assert rows("q=aaaaaaaa-0000") == [("Alice Ngata", "created")]
    assert rows("q=Ngata&created_at__year=" + str(timezone.now().year)) == [
        ("Alice Ngata", "created")
    ]
    page = text(admin_client.get(url("synclog_changelist")))
    assert f'href="{reverse("admin:funders_funder_change", args=[alice.pk])}"' in page
    assert (
        '<a href="https://go.xero.com/Contacts/View/aaaaaaaa-0000-0000-0000-000000000001" '
        'target="_blank" rel="noopener"'
    ) in page
    assert "Failed</span>" in page  # a badge with words
    detail = admin_client.get(url("synclog_change", old.pk))
    assert detail.status_code == 200 and 'name="_save"' not in text(detail)
    # The same check sees the button where there is one: the connection page has it.
    assert 'name="_save"' in text(admin_client.get(url("xeroconnection_change", here.pk)))


def test_log_list_queries_do_not_grow_with_rows(
    admin_client, organisation, django_assert_max_num_queries
):
    connection = make_connection(organisation, enabled=True)
    run = connection.runs.get()
    for i in range(60):
        funder = make_funder(organisation, f"Logged {i}", email=f"l{i}@example.org")
        make_log(connection, funder, run=run if i % 2 else None, xero_contact_id=f"id-{i}")
    with django_assert_max_num_queries(9):
        response = admin_client.get(url("synclog_changelist"))
    assert text(response).count("go.xero.com/Contacts/View/") == 60


# --- conflicts -------------------------------------------------------------------------------


def test_conflicts_queue_shows_funder_beside_candidates(
    admin_client, organisation, django_assert_max_num_queries
):
    connection = make_connection(organisation, enabled=True)
    for i in range(24):
        funder = make_funder(organisation, f"Twin {i}", email=f"twin{i}@example.org")
        conflict_link(connection, funder, (f"c-{i}-a", f"Twin {i}"), (f"c-{i}-b", f"twin {i}"))
    with django_assert_max_num_queries(7):
        response = admin_client.get(url("xerocontactlink_conflicts"))
    page = text(response)
    assert page.count('value="link"') == 48
    assert "Twin 3" in page and "twin3@example.org" in page and "LKT-" in page
    assert "Create as new: “Twin 3 (2)”" in page
    assert 'href="https://go.xero.com/Contacts/View/c-3-a" target="_blank" rel="noopener"' in page


def test_resolving_conflicts_links_creates_or_ignores_and_queues_the_push(
    admin_client, organisation, django_capture_on_commit_callbacks
):
    funders = [make_funder(organisation, f"Clash {i}") for i in range(3)]
    connection = make_connection(organisation, enabled=True)
    links = [conflict_link(connection, f, ("x-1", "A"), ("x-2", "B")) for f in funders]
    resolve = [url("xerocontactlink_resolve", link.pk) for link in links]

    with django_capture_on_commit_callbacks() as callbacks:
        admin_client.post(resolve[0], {"decision": "link", "contact_id": "x-2"})
        admin_client.post(resolve[1], {"decision": "create"})
        response = admin_client.post(resolve[2], {"decision": "ignore"}, follow=True)
    for link in links:
        link.refresh_from_db()
    assert (links[0].state, links[0].xero_contact_id, links[0].matched_by) == (
        "pending",
        "x-2",
        "person",
    )
    assert (links[1].state, links[1].xero_contact_id, links[1].name_suffix) == (
        "pending",
        "",
        " (2)",
    )
    assert links[2].state == "ignored"
    queued = set(OutboxEntry.objects.values_list("funder_id", flat=True))
    assert queued == {links[0].funder_id, links[1].funder_id}
    # Each resolution that queues a funder asks for a drain once it commits; "ignore" asks for none.
    assert len(callbacks) == 2
    assert "will not be synced" in " ".join(messages_of(response))
    assert "Clash" not in text(admin_client.get(url("xerocontactlink_conflicts")))


def test_a_forged_candidate_is_refused(admin_client, organisation):
    funder = make_funder(organisation, "Careful")
    connection = make_connection(organisation, enabled=True)
    link = conflict_link(connection, funder, ("x-1", "A"))
    response = admin_client.post(
        url("xerocontactlink_resolve", link.pk),
        {"decision": "link", "contact_id": "someone-elses"},
        follow=True,
    )
    link.refresh_from_db()
    assert link.state == "conflict" and not OutboxEntry.objects.exists()
    assert "not one of this conflict's candidates" in " ".join(messages_of(response))


def test_staff_without_change_permission_cannot_resolve_or_push(
    client, django_user_model, organisation
):
    user = django_user_model.objects.create_user("reader", password="pw", is_staff=True)
    user.user_permissions.set(
        Permission.objects.filter(
            content_type__app_label="lookout_xero", codename__startswith="view_"
        )
    )
    client.force_login(user)
    connection = make_connection(organisation, enabled=True)
    funder = make_funder(organisation, "Reader Test")
    link = conflict_link(connection, funder, ("x-1", "A"))
    assert client.get(url("xerocontactlink_conflicts")).status_code == 200
    assert (
        client.post(url("xerocontactlink_resolve", link.pk), {"decision": "ignore"}).status_code
        == 403
    )
    assert client.post(url("xerocontactlink_push", funder.pk)).status_code == 403
    assert client.post(url("xeroconnection_sync_now", connection.pk)).status_code == 403
    assert "Sync now (full)" not in text(client.get(change_url(connection)))


# --- preview ---------------------------------------------------------------------------------


@pytest.fixture
def seeded(xero, organisation):
    """A Xero organisation with contacts, and funders that each meet a different fate."""
    org = xero.add_organisation(CLIENT_ID, CLIENT_SECRET, name="Harbour Trust Ltd")
    org.add_contact(Name="Rangi Holdings", EmailAddress="rangi@example.org")
    org.add_contact(Name="harbour BOOKS")
    org.add_contact(Name="Twin Co", EmailAddress="twin@example.org")
    org.add_contact(Name="Twin Co Ltd", EmailAddress="twin@example.org")
    make_funder(organisation, "Brand New")
    make_funder(organisation, "Rangi Parata", email="rangi@example.org")
    make_funder(organisation, "Harbour Books")
    make_funder(organisation, "Twin", email="twin@example.org")
    make_funder(organisation, "", first_name="", last_name="")  # no name: Xero would refuse it
    return org


def contact_writes(xero):
    return [
        r
        for r in xero.requests_for(CLIENT_ID)
        if r.method in ("POST", "PUT") and "/Contacts" in r.path
    ]


def test_preview_button_queues_a_dry_run_and_shows_its_report(
    admin_client, organisation, seeded, xero, django_capture_on_commit_callbacks
):
    connection = make_connection(organisation)
    with django_capture_on_commit_callbacks() as callbacks:
        started = admin_client.post(url("xeroconnection_preview", connection.pk)).json()
    assert len(callbacks) == 1
    run = SyncRun.objects.get(pk=started["run"]["id"])
    assert run.dry_run and started["run"]["active"]
    assert admin_client.get(started["url"]).json()["active"]

    services.run_full_sync(run.pk)  # what the worker does with the queued task
    answer = admin_client.get(started["url"]).json()
    assert answer["status"] == "completed"
    html = answer["html"]
    assert '<strong data-lx-count="create">1</strong>' in html
    assert '<strong data-lx-count="link">2</strong>' in html and "1 by e-mail address" in html
    assert '<strong data-lx-count="conflict">1</strong>' in html
    assert '<strong data-lx-count="invalid">1</strong>' in html
    assert "Brand New" in html and "Rangi Parata" in html and "Twin Co Ltd" in html
    assert contact_writes(xero) == []
    connection.refresh_from_db()
    assert not connection.enabled and not XeroContactLink.objects.exists()


def test_xero_sync_dry_run_previews_a_disabled_connection_in_process(organisation, seeded, xero):
    connection = make_connection(organisation)
    out = StringIO()
    call_command(
        "xero_sync", organisation=str(organisation.pk), full=True, dry_run=True, stdout=out
    )
    output = out.getvalue()
    assert "nothing was written to Xero" in output
    assert "would create:           1" in output
    assert "would link:             2 (1 by e-mail address, 1 by name)" in output
    assert "conflicts:              1" in output
    assert "rejected by validation: 1" in output
    assert "- Brand New" in output and "by e-mail address to “Rangi Holdings”" in output
    assert "2 Xero contacts have this e-mail address (“Twin Co”, “Twin Co Ltd”)" in output
    run = connection.runs.get()
    assert run.dry_run and run.status == "completed" and run.report["counts"]["create"] == 1
    assert contact_writes(xero) == []
    assert not OutboxEntry.objects.exists() and not XeroContactLink.objects.exists()
    connection.refresh_from_db()
    assert not connection.enabled


def test_xero_sync_dry_run_needs_full(organisation):
    from django.core.management.base import CommandError

    make_connection(organisation)
    with pytest.raises(CommandError, match="--full"):
        call_command("xero_sync", organisation=str(organisation.pk), dry_run=True)


# --- secrets everywhere ----------------------------------------------------------------------


def test_no_page_or_json_shows_the_secret_or_the_token(admin_client, organisation):
    funder = make_funder(organisation, "Some Funder")
    connection = make_connection(organisation, enabled=True)
    XeroConnection.objects.filter(pk=connection.pk).update(access_token=TOKEN)
    run = connection.runs.get()
    link = conflict_link(connection, funder, ("x-1", "A"))
    log = make_log(connection, funder, run=run)
    pages = [
        url("xeroconnection_changelist"),
        change_url(connection),
        url("xeroconnection_status", connection.pk),
        url("xeroconnection_history", connection.pk),
        url("xeroconnection_delete", connection.pk),
        url("syncrun_changelist"),
        url("syncrun_change", run.pk),
        url("synclog_changelist"),
        url("synclog_change", log.pk),
        url("xerocontactlink_changelist"),
        url("xerocontactlink_change", link.pk),
        url("xerocontactlink_conflicts"),
        reverse("admin:funders_funder_change", args=[funder.pk]),
    ]
    for page in pages:
        response = admin_client.get(page)
        assert response.status_code == 200, page
        body = text(response)
        assert CLIENT_SECRET not in body and TOKEN not in body, page


# --- deleting what the sync rows belong to ---------------------------------------------------


def test_deleting_a_synced_funder_takes_its_link_and_is_not_blocked(admin_client, organisation):
    funder = make_funder(organisation, "Leaving Funder")
    connection = make_connection(organisation, enabled=True)
    XeroContactLink.objects.create(connection=connection, funder=funder, state="synced")
    make_log(connection, funder)
    delete_url = reverse("admin:funders_funder_delete", args=[funder.pk])
    page = admin_client.get(delete_url)
    assert not page.context["perms_lacking"]
    admin_client.post(delete_url, {"post": "yes"})
    assert not XeroContactLink.objects.exists()
    assert SyncLog.objects.get().funder_name == "Leaving Funder"  # the record stays


def test_log_rows_cannot_be_deleted_by_hand(admin_client, organisation):
    connection = make_connection(organisation)
    log = make_log(connection, make_funder(organisation, "Kept"))
    assert admin_client.get(url("synclog_delete", log.pk)).status_code == 403
    changelist = admin_client.get(url("synclog_changelist"))
    assert "delete_selected" not in text(changelist)
    assert url("synclog_delete", log.pk) not in text(
        admin_client.get(url("synclog_change", log.pk))
    )


def test_connection_delete_page_counts_rows_instead_of_listing_them(
    admin_client, organisation, django_assert_max_num_queries
):
    connection = make_connection(organisation, enabled=True)
    for i in range(40):
        make_log(connection, make_funder(organisation, f"Gone {i}"))
    delete_url = url("xeroconnection_delete", connection.pk)
    with django_assert_max_num_queries(12):
        page = text(admin_client.get(delete_url))
    assert "Sync log: 40" in page and "Gone 1" not in page
    admin_client.post(delete_url, {"post": "yes"})
    assert not XeroConnection.objects.exists() and not SyncLog.objects.exists()


def test_alert_history_lists_each_episode_read_only_without_a_query_per_row(
    admin_client, organisation, django_assert_max_num_queries
):
    connection = make_connection(organisation, enabled=True)
    now = timezone.now()
    XeroAlert.objects.create(
        connection=connection,
        kind=XeroAlert.Kind.ERROR,
        detail="Xero refused the Client ID or Client Secret",
        opened_at=now - timedelta(hours=2),
        notified_at=now - timedelta(hours=2),
        resolved_at=now - timedelta(hours=1),
        resolved_notified_at=now - timedelta(hours=1),
    )
    for i in range(20):
        other = make_connection(
            Organisation.objects.create(name=f"Other {i:02}"), client_id=f"o{i}"
        )
        XeroAlert.objects.create(connection=other, kind=XeroAlert.Kind.PAUSED, notified_at=now)
    XeroAlert.objects.create(connection=connection, kind=XeroAlert.Kind.CONFLICTS)

    with django_assert_max_num_queries(8):
        page = text(admin_client.get(url("xeroalert_changelist")))
    assert page.count("lx-badge--error") == 21 and page.count("lx-badge--healthy") == 1
    assert CLIENT_SECRET not in page

    # The connection page links to its own organisation's episodes, open and over.
    connection_page = text(admin_client.get(change_url(connection)))
    alerts_url = url(
        "xeroalert_changelist", query=f"connection__organisation__id__exact={organisation.pk}"
    )
    assert alerts_url in connection_page
    response = admin_client.get(alerts_url + "&open=yes")
    assert [a.kind for a in response.context["cl"].result_list] == ["conflicts"]
    response = admin_client.get(alerts_url + "&open=no")
    [over] = response.context["cl"].result_list
    detail = text(admin_client.get(url("xeroalert_change", over.pk)))
    assert "Xero refused the Client ID or Client Secret" in detail and 'name="_save"' not in detail
    assert admin_client.get(url("xeroalert_add")).status_code == 403


# --- search finds people (issue 20) -----------------------------------------------------------


@pytest.fixture
def people(organisation):
    connection = make_connection(organisation, enabled=True)
    aroha = make_funder(organisation, "Aroha Parata", email="aroha@kauri.example.org")
    ben = make_funder(organisation, "Ben Smith", email="ben@rimu.example.org")
    for funder, contact_id in ((aroha, "aaaa1111-0000-0000-0000-000000000001"), (ben, "")):
        XeroContactLink.objects.create(
            connection=connection, funder=funder, xero_contact_id=contact_id, state="synced"
        )
        SyncLog.objects.create(
            connection=connection,
            funder=funder,
            funder_name=funder.name,
            funder_email=funder.email,
            xero_contact_id=contact_id,
            outcome="updated",
        )
    return aroha, ben


@pytest.mark.parametrize("page", ["xerocontactlink_changelist", "synclog_changelist"])
def test_links_and_the_log_find_a_funder_by_name_email_contact_number_and_contact_id(
    admin_client, people, page
):
    aroha, _ = people
    for term in (
        "aroha parata",
        "aroha@kauri",
        f"LKT-{aroha.pk}",
        f"lkt-{aroha.pk}",
        "aaaa1111-0000",
    ):
        found = text(admin_client.get(url(page, query=f"q={term}")))
        assert "Aroha Parata" in found and "Ben Smith" not in found, term
    found = text(admin_client.get(url(page, query="q=rimu.example")))
    assert "Ben Smith" in found and "Aroha Parata" not in found
    nothing = text(admin_client.get(url(page, query="q=LKT-not-a-number")))
    assert "Aroha Parata" not in nothing and "Ben Smith" not in nothing


def test_the_conflicts_queue_finds_a_funder_by_name(admin_client, organisation):
    connection = make_connection(organisation, enabled=True)
    for name in ("Kowhai Music Trust", "Totara Club"):
        funder = make_funder(organisation, name, email=f"{name[:5].lower()}@example.org")
        conflict_link(connection, funder, ("c-1", name), ("c-2", name.upper()))
    found = text(admin_client.get(url("xerocontactlink_conflicts", query="q=kowhai")))
    assert "Kowhai Music Trust" in found and "Totara Club" not in found
    assert 'value="kowhai"' in found
    none = text(admin_client.get(url("xerocontactlink_conflicts", query="q=nobody")))
    assert "No conflict for a funder matching “nobody”" in none


def test_the_scope_help_default_and_the_customer_page_agree(admin_client, organisation, client):
    from lookout_xero import credentials

    page = text(admin_client.get(url("xeroconnection_add")))
    assert 'value="accounting.contacts"' in page  # the default
    assert "The sync needs only accounting.contacts" in page
    assert "require" not in page.split('id="id_scope_helptext"')[-1][:400]
    opened = client.get(credentials.create_link(organisation)[1], follow=True, secure=True)
    customer = opened.content.decode()
    assert "tick <strong>only <code>accounting.contacts</code></strong>" in customer


def test_every_list_and_panel_shows_dates_in_one_format(admin_client, organisation):
    from datetime import UTC, datetime

    at = datetime(2026, 11, 30, 15, 26, tzinfo=UTC)
    connection = make_connection(organisation, enabled=True)
    XeroConnection.objects.filter(pk=connection.pk).update(last_synced_at=at)
    funder = make_funder(organisation, "Dated Funder")
    run = SyncRun.objects.create(connection=connection, status="completed", finished_at=at)
    SyncRun.objects.filter(pk=run.pk).update(created_at=at, started_at=at)
    SyncLog.objects.create(connection=connection, funder=funder, outcome="updated", created_at=at)
    XeroContactLink.objects.create(
        connection=connection, funder=funder, state="synced", last_synced_at=at
    )
    XeroAlert.objects.create(connection=connection, kind="conflicts", opened_at=at, notified_at=at)
    for page in (
        url("xeroconnection_changelist"),
        url("syncrun_changelist"),
        url("syncrun_change", run.pk),
        url("synclog_changelist"),
        url("xerocontactlink_changelist"),
        url("xeroalert_changelist"),
        url("xeroconnection_change", connection.pk),
        reverse("admin:funders_funder_change", args=[funder.pk]),
    ):
        shown = text(admin_client.get(page))
        assert "30 Nov 2026, 15:26 UTC" in shown, page
        assert "p.m." not in shown and "a.m." not in shown and "Nov. 30" not in shown, page
