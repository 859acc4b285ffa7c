"""Who may do what in lookout_xero's admin: every combination of the connection's permissions
against every page, action, button and JSON endpoint, with Django's test client.

Each endpoint is one test; inside it, the 16 combinations of view / change / delete /
manage_xero_credentials each run in a savepoint rolled back afterwards, so every combination
starts from the same rows. Every answer is searched for the secrets, and the rows are compared
before and after: what a combination may not change stays as it was.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from itertools import combinations

import pytest
from django.contrib.admin.models import LogEntry
from django.contrib.auth.models import Permission
from django.db import transaction
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
    XeroCredentialsLink,
    XeroPendingCredentials,
)
from tests.helpers import CLIENT_ID, CLIENT_SECRET, make_connection, make_funder

pytestmark = pytest.mark.django_db

WEBHOOK_KEY = "webhook-key-DO-NOT-LEAK-0123456789"
TOKEN = "access-token-DO-NOT-LEAK"
NEW_SECRET = "n3w-secret-ALSO-DO-NOT-LEAK"
OLD_TENANT = "11111111-1111-1111-1111-111111111111"
NEW_TENANT = "22222222-2222-2222-2222-222222222222"
SECRETS = (CLIENT_SECRET, WEBHOOK_KEY, TOKEN, NEW_SECRET)

CODENAMES = {
    "view": "view_xeroconnection",
    "change": "change_xeroconnection",
    "delete": "delete_xeroconnection",
    "manage": "manage_xero_credentials",
}
COMBINATIONS = [
    frozenset(chosen) for size in range(5) for chosen in combinations(sorted(CODENAMES), size)
]
# Every user may read the sync's own rows and the host's funders; only the connection's
# permissions vary.
BASE_CODENAMES = [
    "view_syncrun",
    "view_synclog",
    "view_xerocontactlink",
    "view_xeroalert",
    "view_funder",
    "change_funder",
    "view_organisation",
]


def admin_url(name, *args):
    return reverse(f"admin:{name}", args=args)


@dataclass
class World:
    """The rows every combination starts from."""

    organisation: object
    connection: XeroConnection
    conflict: XeroContactLink
    failed: XeroContactLink
    synced: XeroContactLink
    archived: XeroContactLink
    funder: object
    preview: SyncRun
    log: SyncLog
    alert: XeroAlert


@pytest.fixture
def world(organisation, xero):
    xero.add_organisation(CLIENT_ID, CLIENT_SECRET, name="Harbour Trust Ltd")
    connection = make_connection(organisation, enabled=True)  # starts a full sync: a run
    XeroConnection.objects.filter(pk=connection.pk).update(
        access_token=TOKEN,
        webhook_key=WEBHOOK_KEY,
        client_secret_set_at=timezone.now(),
        xero_tenant_id=OLD_TENANT,
        xero_tenant_name="Harbour Trust Ltd",
    )
    connection.refresh_from_db()
    # A customer link's credentials reaching another Xero organisation, waiting for a person.
    XeroPendingCredentials.objects.create(
        connection=connection,
        client_id="another-client-id",
        client_secret=NEW_SECRET,
        xero_tenant_id=NEW_TENANT,
        xero_tenant_name="Stranger Ltd",
    )
    links = {}
    for state in ("conflict", "failed", "synced", "xarchived"):
        funder = make_funder(organisation, f"Funder {state}", email=f"{state}@example.org")
        links[state] = XeroContactLink.objects.create(
            connection=connection,
            funder=funder,
            state=state,
            xero_contact_id="" if state == "conflict" else f"contact-{state}",
            conflict_candidates=[{"contact_id": "x-1", "name": "A", "email": "", "status": ""}],
        )
    # The bookkeeper changed the synced funder's e-mail in Xero; it waits for a decision.
    XeroContactLink.objects.filter(pk=links["synced"].pk).update(
        last_sent={"EmailAddress": "synced@example.org"},
        drift={
            "EmailAddress": {
                "lookout": "synced@example.org",
                "xero": "corrected@example.org",
                "waiting": True,
            }
        },
        drift_seen_at=timezone.now(),
        decision_since=timezone.now(),
    )
    OutboxEntry.objects.all().delete()
    preview = services.start_preview(connection, enqueue=False)
    log = SyncLog.objects.create(
        connection=connection, funder_name="Funder synced", outcome="updated", run=preview
    )
    alert = XeroAlert.objects.create(
        connection=connection, kind="error", detail="x", opened_at=timezone.now()
    )
    return World(
        organisation,
        connection,
        links["conflict"],
        links["failed"],
        links["synced"],
        links["xarchived"],
        links["synced"].funder,
        preview,
        log,
        alert,
    )


def fingerprint(world: World) -> dict:
    """What any endpoint could change, read fresh from the database."""
    connection = XeroConnection.objects.filter(pk=world.connection.pk).first()
    return {
        "connection": connection
        and (
            connection.client_id,
            connection.client_secret,
            connection.webhook_key,
            connection.scope,
            connection.enabled,
            connection.state,
            connection.directions,
        ),
        "connections": XeroConnection.objects.count(),
        "tenant": connection and connection.xero_tenant_id,
        "waiting": sorted(XeroPendingCredentials.objects.values_list("pk", "xero_tenant_id")),
        "runs": sorted(SyncRun.objects.values_list("pk", "status", "dry_run")),
        "outbox": OutboxEntry.objects.count(),
        "links": sorted(XeroContactLink.objects.values_list("pk", "state", "xero_contact_id")),
        "drift": sorted(
            (pk, sorted(drift)) for pk, drift in XeroContactLink.objects.values_list("pk", "drift")
        ),
        "credentials_links": sorted(
            XeroCredentialsLink.objects.values_list("pk", "revoked_at", "used_at")
        ),
        # Django notes a save of an unchanged form ("No fields changed."): not a change.
        "audit": LogEntry.objects.exclude(change_message="[]").count(),
    }


def any_of(*perms) -> Callable[[frozenset], bool]:
    return lambda held: bool(held & set(perms))


def all_of(*perms) -> Callable[[frozenset], bool]:
    return lambda held: set(perms) <= held


def everyone(held) -> bool:
    return True


def no_one(held) -> bool:
    return False


def can_see_list_and(*perms) -> Callable[[frozenset], bool]:
    """Actions: the list opens with view or change, and the action needs these as well."""
    return lambda held: bool(held & {"view", "change"}) and set(perms) <= held


@dataclass
class Endpoint:
    name: str
    method: str
    url: Callable[[World], str]
    may: Callable[[frozenset], bool]
    data: Callable[[World], dict] = lambda w: {}
    # A write: allowed, it changes the rows; refused, nothing changes. A read changes nothing
    # and answers 200 when allowed, 403 when not.
    writes: bool = False

    def __str__(self) -> str:
        return self.name


def connection_url(name):
    return lambda w: admin_url(f"lookout_xero_xeroconnection_{name}", w.connection.pk)


def action(name, ids, url="lookout_xero_xeroconnection_changelist"):
    def data(w):
        return {"action": name, "_selected_action": [str(pk) for pk in ids(w)], "post": "yes"}

    return {"url": lambda w: admin_url(url), "data": data, "method": "post", "writes": True}


ENDPOINTS = [
    # --- the connection admin's own pages
    Endpoint(
        "connection list",
        "get",
        lambda w: admin_url("lookout_xero_xeroconnection_changelist"),
        any_of("view", "change"),
    ),
    Endpoint("connection page", "get", connection_url("change"), any_of("view", "change")),
    Endpoint("connection history", "get", connection_url("history"), any_of("view", "change")),
    Endpoint("add page", "get", lambda w: admin_url("lookout_xero_xeroconnection_add"), no_one),
    Endpoint(
        "add",
        "post",
        lambda w: admin_url("lookout_xero_xeroconnection_add"),
        no_one,
        data=lambda w: {
            "organisation": w.organisation.pk,
            "client_id": "new",
            "client_secret": NEW_SECRET,
            "scope": "",
        },
        writes=True,
    ),
    Endpoint(
        "change credentials",
        "post",
        connection_url("change"),
        all_of("change", "manage"),
        data=lambda w: {
            "client_id": "client-changed",
            "client_secret": NEW_SECRET,
            "scope": "accounting.contacts",
            "webhook_key": "new-webhook-key-DO-NOT-LEAK",
            "enabled": "on",
        },
        writes=True,
    ),
    Endpoint(
        "switch off",
        "post",
        connection_url("change"),
        all_of("change", "manage"),
        data=lambda w: {
            "client_id": CLIENT_ID,
            "client_secret": "",
            "scope": "accounting.contacts",
        },
        writes=True,
    ),
    Endpoint("delete page", "get", connection_url("delete"), all_of("delete", "manage")),
    Endpoint(
        "delete",
        "post",
        connection_url("delete"),
        all_of("delete", "manage"),
        data=lambda w: {"post": "yes"},
        writes=True,
    ),
    Endpoint(
        "delete selected (action)",
        may=can_see_list_and("delete", "manage"),
        **action("delete_selected", lambda w: [w.connection.pk]),
    ),
    Endpoint(
        "sync now (action)",
        may=can_see_list_and("change"),
        **action("sync_now", lambda w: [w.connection.pk]),
    ),
    Endpoint(
        "retry failed (action)",
        may=can_see_list_and("change"),
        **action("retry_failed", lambda w: [w.connection.pk]),
    ),
    Endpoint(
        "create credentials link (action)",
        may=can_see_list_and("manage"),
        **action("create_credentials_link", lambda w: [w.connection.pk]),
    ),
    # --- the connection page's buttons and JSON
    Endpoint(
        "test connection (JSON)",
        "post",
        lambda w: admin_url("lookout_xero_xeroconnection_test_connection"),
        all_of("manage"),
        data=lambda w: {"client_id": CLIENT_ID, "connection": w.connection.pk, "scope": ""},
    ),
    Endpoint(
        "use the new Xero organisation",
        "post",
        connection_url("use_new_tenant"),
        all_of("manage"),
        data=lambda w: {"tenant": NEW_TENANT},
        writes=True,
    ),
    Endpoint(
        "discard the new Xero organisation",
        "post",
        connection_url("discard_new_tenant"),
        all_of("manage"),
        data=lambda w: {"tenant": NEW_TENANT},
        writes=True,
    ),
    Endpoint("status (JSON)", "get", connection_url("status"), any_of("view", "change")),
    Endpoint(
        "preview status (JSON)",
        "get",
        lambda w: admin_url(
            "lookout_xero_xeroconnection_preview_status", w.connection.pk, w.preview.pk
        ),
        any_of("view", "change"),
    ),
    Endpoint("preview", "post", connection_url("preview"), all_of("change"), writes=True),
    Endpoint("sync now", "post", connection_url("sync_now"), all_of("change"), writes=True),
    Endpoint(
        "who wins when a value differs in Xero (directions)",
        "post",
        connection_url("directions"),
        all_of("change"),
        data=lambda w: {"direction-EmailAddress": "xero", "direction-Phones": "ask"},
        writes=True,
    ),
    Endpoint("retry failed", "post", connection_url("retry_failed"), all_of("change"), writes=True),
    Endpoint("cancel run", "post", connection_url("cancel_run"), all_of("change"), writes=True),
    Endpoint(
        "credentials link",
        "post",
        connection_url("credentials_link"),
        all_of("manage"),
        writes=True,
    ),
    Endpoint(
        "organisation picker",
        "get",
        lambda w: admin_url("lookout_xero_xeroconnection_credentials_link_new"),
        all_of("manage"),
    ),
    Endpoint(
        "organisation picker (submit)",
        "post",
        lambda w: admin_url("lookout_xero_xeroconnection_credentials_link_new"),
        all_of("manage"),
        data=lambda w: {"organisation": w.organisation.pk},
        writes=True,
    ),
    # --- links, conflicts, the funder's panel
    Endpoint(
        "link list", "get", lambda w: admin_url("lookout_xero_xerocontactlink_changelist"), everyone
    ),
    Endpoint(
        "link page",
        "get",
        lambda w: admin_url("lookout_xero_xerocontactlink_change", w.synced.pk),
        everyone,
    ),
    Endpoint(
        "conflicts", "get", lambda w: admin_url("lookout_xero_xerocontactlink_conflicts"), everyone
    ),
    Endpoint(
        "resolve",
        "post",
        lambda w: admin_url("lookout_xero_xerocontactlink_resolve", w.conflict.pk),
        all_of("change"),
        data=lambda w: {"decision": "ignore"},
        writes=True,
    ),
    Endpoint(
        "push now",
        "post",
        lambda w: admin_url("lookout_xero_xerocontactlink_push", w.funder.pk),
        all_of("change"),
        writes=True,
    ),
    Endpoint(
        "restore in Xero (the funder panel's button)",
        "post",
        lambda w: admin_url("lookout_xero_xerocontactlink_restore", w.archived.pk),
        all_of("change"),
        writes=True,
    ),
    Endpoint(
        "stop syncing (the funder panel's button)",
        "post",
        lambda w: admin_url("lookout_xero_xerocontactlink_stop", w.archived.pk),
        all_of("change"),
        writes=True,
    ),
    Endpoint(
        "take Xero's value (the funder panel's button)",
        "post",
        lambda w: admin_url("lookout_xero_xerocontactlink_take", w.synced.pk, "EmailAddress"),
        all_of("change"),
        writes=True,
    ),
    Endpoint(
        "keep Lookout's (the funder panel's button)",
        "post",
        lambda w: admin_url("lookout_xero_xerocontactlink_keep", w.synced.pk, "EmailAddress"),
        all_of("change"),
        writes=True,
    ),
    Endpoint(
        "take Xero's values (action)",
        may=all_of("change"),
        **action(
            "take_xero_values", lambda w: [w.synced.pk], "lookout_xero_xerocontactlink_changelist"
        ),
    ),
    Endpoint(
        "push profile now (action)",
        may=all_of("change"),
        **action(
            "push_profile_now", lambda w: [w.synced.pk], "lookout_xero_xerocontactlink_changelist"
        ),
    ),
    Endpoint(
        "restore in Xero (action)",
        may=all_of("change"),
        **action(
            "restore_in_xero", lambda w: [w.archived.pk], "lookout_xero_xerocontactlink_changelist"
        ),
    ),
    Endpoint(
        "stop syncing (action)",
        may=all_of("change"),
        **action(
            "stop_syncing", lambda w: [w.synced.pk], "lookout_xero_xerocontactlink_changelist"
        ),
    ),
    Endpoint(
        "funder page (Xero panel)",
        "get",
        lambda w: admin_url("funders_funder_change", w.funder.pk),
        everyone,
    ),
    Endpoint(
        "push to Xero (funder action)",
        may=all_of("change"),
        **action("push_to_xero", lambda w: [w.funder.pk], "funders_funder_changelist"),
    ),
    # --- runs, the log, alerts (read-only for everyone)
    Endpoint("run list", "get", lambda w: admin_url("lookout_xero_syncrun_changelist"), everyone),
    Endpoint(
        "run page",
        "get",
        lambda w: admin_url("lookout_xero_syncrun_change", w.preview.pk),
        everyone,
    ),
    Endpoint("log list", "get", lambda w: admin_url("lookout_xero_synclog_changelist"), everyone),
    Endpoint(
        "log page", "get", lambda w: admin_url("lookout_xero_synclog_change", w.log.pk), everyone
    ),
    Endpoint(
        "alert list", "get", lambda w: admin_url("lookout_xero_xeroalert_changelist"), everyone
    ),
    Endpoint(
        "alert page",
        "get",
        lambda w: admin_url("lookout_xero_xeroalert_change", w.alert.pk),
        everyone,
    ),
]


def label(held: frozenset) -> str:
    return "+".join(sorted(held)) or "none"


@pytest.fixture
def users(django_user_model):
    """One staff member per combination (no password: logged in with force_login)."""
    base = list(
        Permission.objects.filter(
            content_type__app_label__in=["lookout_xero", "funders"], codename__in=BASE_CODENAMES
        )
    )
    by_codename = {
        p.codename: p
        for p in Permission.objects.filter(
            content_type__app_label="lookout_xero", codename__in=CODENAMES.values()
        )
    }
    made = {}
    for held in COMBINATIONS:
        user = django_user_model.objects.create_user(f"staff-{label(held)}", is_staff=True)
        user.user_permissions.set(base + [by_codename[CODENAMES[p]] for p in held])
        made[held] = user
    return made


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=str)
def test_each_combination_of_permissions_reveals_no_secret_and_changes_only_what_it_may(
    endpoint, world, users, client
):
    problems = []
    for held, user in users.items():
        with transaction.atomic():
            client.force_login(user)
            before = fingerprint(world)
            send = getattr(client, endpoint.method)
            response = send(endpoint.url(world), endpoint.data(world))
            after = fingerprint(world)
            body = response.content.decode(errors="replace")
            who = f"{label(held)}: {endpoint.method.upper()} {endpoint.name}"
            for secret in SECRETS:
                if secret in body:
                    problems.append(f"{who} shows a secret ({secret[:6]}…)")
            allowed = endpoint.may(held)
            if endpoint.writes:
                if allowed and after == before:
                    problems.append(
                        f"{who} was allowed but changed nothing ({response.status_code})"
                    )
                if not allowed and after != before:
                    problems.append(f"{who} changed rows it may not change")
            else:
                if after != before:
                    problems.append(f"{who} changed rows, and it only reads")
                expected = 200 if allowed else 403
                if response.status_code != expected:
                    problems.append(f"{who} answered {response.status_code}, not {expected}")
            transaction.set_rollback(True)
        services.clear_enabled()
    assert not problems, "\n".join(problems)


# --- what the read-only connection page shows instead of the secrets -------------------------


def test_viewing_without_change_shows_when_the_secret_was_set_never_its_value(world, users, client):
    client.force_login(users[frozenset({"view", "manage"})])
    page = client.get(admin_url("lookout_xero_xeroconnection_change", world.connection.pk))
    body = page.content.decode()
    assert page.status_code == 200
    assert "set on " in body and CLIENT_ID in body
    assert CLIENT_SECRET not in body and WEBHOOK_KEY not in body
    assert 'name="client_secret"' not in body and 'name="webhook_key"' not in body
    XeroConnection.objects.filter(pk=world.connection.pk).update(webhook_key="")
    body = client.get(
        admin_url("lookout_xero_xeroconnection_change", world.connection.pk)
    ).content.decode()
    assert "not set" in body


def test_deleting_needs_the_credentials_permission_as_well(world, users, client):
    client.force_login(users[frozenset({"view", "delete"})])
    page = client.get(admin_url("lookout_xero_xeroconnection_change", world.connection.pk))
    delete_url = admin_url("lookout_xero_xeroconnection_delete", world.connection.pk)
    assert delete_url not in page.content.decode()
    changelist = client.get(admin_url("lookout_xero_xeroconnection_changelist"))
    assert "delete_selected" not in changelist.content.decode()
    assert client.post(delete_url, {"post": "yes"}).status_code == 403
    assert XeroConnection.objects.filter(pk=world.connection.pk).exists()


def test_the_matrix_covers_every_page_button_and_action(world, admin_user, rf):
    """A new page, button or action must join the matrix above, or this fails."""
    from django.contrib import admin
    from django.urls import resolve

    from project.funders.models import Funder

    covered = {resolve(endpoint.url(world).split("?")[0]).url_name for endpoint in ENDPOINTS}
    actions = {endpoint.data(world).get("action") for endpoint in ENDPOINTS} - {None}
    request = rf.get("/")
    request.user = admin_user
    missing = []
    for model in (XeroConnection, XeroContactLink, SyncRun, SyncLog, XeroAlert, Funder):
        model_admin = admin.site.get_model_admin(model)
        for pattern in model_admin.get_urls():
            name = getattr(pattern, "name", None)
            # Django's own pages are in the matrix for the connection; the read-only sync rows
            # have no add or delete page (ReadOnlyAdmin), and the funder's are the host's.
            if not name or model is Funder or name.endswith(("_autocomplete",)):
                continue
            if model in (SyncRun, SyncLog, XeroAlert, XeroContactLink) and name.endswith(
                ("_add", "_delete", "_history")
            ):
                continue
            if name not in covered:
                missing.append(name)
        for name in model_admin.get_actions(request):
            if name not in actions and not (
                model is not XeroConnection and name == "delete_selected"
            ):
                missing.append(f"action {name} on {model.__name__}")
    assert missing == []


# --- a host that limits staff to some organisations ------------------------------------------


def limited_url(name, *args, query=""):
    return reverse(f"limited:{name}", args=args) + (f"?{query}" if query else "")


@pytest.fixture
def two_organisations(organisation, users):
    """Harbour Trust (this staff member's) and Other Trust (not theirs), each with a conflict."""
    from project.funders.models import Organisation
    from tests.restricted_admin import ALLOWED

    assert organisation.name == ALLOWED
    other = Organisation.objects.create(name="Other Trust")
    made = {}
    for org in (organisation, other):
        connection = make_connection(org, enabled=True)
        funder = make_funder(org, f"Member of {org.name}")
        link = XeroContactLink.objects.create(
            connection=connection,
            funder=funder,
            state="conflict",
            conflict_candidates=[{"contact_id": "x-1", "name": "A", "email": "", "status": ""}],
        )
        made[org.name] = (org, connection, funder, link)
    OutboxEntry.objects.all().delete()
    return made["Harbour Trust"], made["Other Trust"]


@pytest.mark.urls("tests.restricted_admin")
def test_a_host_that_limits_staff_to_some_organisations_stays_limited(
    two_organisations, users, client
):
    (mine, my_connection, my_funder, my_link), (other, connection, funder, link) = two_organisations
    client.force_login(users[frozenset({"view", "change", "delete", "manage"})])

    # The conflicts queue lists this staff member's organisation only, whatever is asked for.
    for query in ("", f"connection={connection.pk}"):
        page = client.get(limited_url("lookout_xero_xerocontactlink_conflicts", query=query))
        assert page.status_code == 200
        assert str(funder) not in page.content.decode()
    assert (
        str(my_funder)
        in client.get(limited_url("lookout_xero_xerocontactlink_conflicts")).content.decode()
    )

    # Resolving the other organisation's conflict, or pushing its funder, finds nothing.
    resolve = client.post(
        limited_url("lookout_xero_xerocontactlink_resolve", link.pk), {"decision": "ignore"}
    )
    push = client.post(limited_url("lookout_xero_xerocontactlink_push", funder.pk))
    assert (resolve.status_code, push.status_code) == (404, 404)
    for name in ("take", "keep"):  # a change made in Xero: decided for theirs only
        url = limited_url(f"lookout_xero_xerocontactlink_{name}", link.pk, "EmailAddress")
        assert client.post(url).status_code == 404
    link.refresh_from_db()
    assert link.state == "conflict" and not OutboxEntry.objects.exists()
    action = client.post(
        limited_url("funders_funder_changelist"),
        {"action": "push_to_xero", "_selected_action": [funder.pk]},
    )
    assert action.status_code in (200, 302) and not OutboxEntry.objects.exists()

    # The credentials link's picker offers only this staff member's organisation.
    picker = client.get(limited_url("lookout_xero_xeroconnection_credentials_link_new"))
    choices = [str(choice) for choice in picker.context["form"].fields["organisation"].queryset]
    assert choices == [str(mine)]
    refused = client.post(
        limited_url("lookout_xero_xeroconnection_credentials_link_new"),
        {"organisation": other.pk},
    )
    assert refused.status_code == 200 and refused.context["form"].errors
    assert not XeroCredentialsLink.objects.filter(organisation=other).exists()

    # The other connection's own pages and buttons find nothing either.
    for name in (
        "status",
        "sync_now",
        "credentials_link",
        "cancel_run",
        "retry_failed",
        "directions",
    ):
        method = client.get if name == "status" else client.post
        assert (
            method(limited_url(f"lookout_xero_xeroconnection_{name}", connection.pk)).status_code
            == 404
        )
    assert not XeroCredentialsLink.objects.exists()

    # The lists' filters (organisation, run) offer only this staff member's organisation.
    for name in ("synclog", "syncrun", "xerocontactlink", "xeroalert"):
        page = client.get(limited_url(f"lookout_xero_{name}_changelist"))
        assert page.status_code == 200
        assert str(other) not in page.content.decode(), name
        if name in ("syncrun", "xerocontactlink"):  # their rows are still listed
            assert str(mine) in page.content.decode(), name

    # What is theirs still works: the limit is not a wall.
    client.post(
        limited_url("lookout_xero_xerocontactlink_resolve", my_link.pk), {"decision": "ignore"}
    )
    client.post(limited_url("lookout_xero_xerocontactlink_push", my_funder.pk))
    my_link.refresh_from_db()
    assert my_link.state != "conflict"
    assert OutboxEntry.objects.filter(connection=my_connection).exists()
    assert not OutboxEntry.objects.filter(connection=connection).exists()
    made = client.post(
        limited_url("lookout_xero_xeroconnection_credentials_link_new"), {"organisation": mine.pk}
    )
    assert (
        made.status_code == 302 and XeroCredentialsLink.objects.filter(organisation=mine).exists()
    )
