"""The customer's one-time credentials link, the admin's side of it, and the audit trail."""

from __future__ import annotations

import re
import time
from datetime import timedelta
from io import StringIO

import pytest
from django.contrib.admin.models import LogEntry
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection as db
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from lookout_xero import credentials
from lookout_xero.models import XeroConnection, XeroContactLink, XeroCredentialsLink
from project.funders.models import Organisation
from tests.helpers import CLIENT_ID, CLIENT_SECRET, make_connection, make_funder

pytestmark = pytest.mark.django_db

PRIVATE = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Robots-Tag": "noindex, nofollow",
}
NOT_FOUND = "This link does not work"


class HttpsClient(Client):
    """The customer's browser: over https, as these pages insist when DEBUG is off."""

    def request(self, **environ):
        return super().request(**{**environ, "wsgi.url_scheme": "https", "SERVER_PORT": "443"})


@pytest.fixture
def client():
    return HttpsClient()


def link_path(organisation, **kwargs) -> str:
    return credentials.create_link(organisation, **kwargs)[1]


def assert_private(response, *, form=False):
    """Private headers; a page with the form lets its own Referer back to this site only."""
    expected = {**PRIVATE, "Referrer-Policy": "same-origin"} if form else PRIVATE
    for name, value in expected.items():
        assert response[name] == value, (name, response.status_code)


def submit(client, path, client_id=CLIENT_ID, secret=CLIENT_SECRET, webhook_key=""):
    """As a browser does: open the link (which moves the token out of the URL), then post the
    form to the page it landed on."""
    data = {"client_id": client_id, "client_secret": secret, "webhook_key": webhook_key}
    opened = client.get(path)
    return client.post(opened["Location"] if opened.status_code == 302 else path, data)


def stored_bytes(connection_pk, column) -> bytes:
    with db.cursor() as cursor:
        cursor.execute(
            f"SELECT {column} FROM lookout_xero_xeroconnection WHERE id = %s", [connection_pk]
        )
        return bytes(cursor.fetchone()[0])


# --- the command ---------------------------------------------------------------------------


def test_command_prints_the_link_last_and_the_page_names_the_organisation(client, organisation):
    out = StringIO()
    call_command("xero_credentials_link", organisation=str(organisation.pk), hours=0.5, stdout=out)
    url = out.getvalue().strip().splitlines()[-1]
    assert url.startswith("http://127.0.0.1:8000/xero/credentials/")
    link = XeroCredentialsLink.objects.get()
    assert timedelta(minutes=29) < link.expires_at - timezone.now() <= timedelta(minutes=30)
    assert link.token_hash not in url  # only a hash is stored, and it is not the URL

    response = client.get(url.removeprefix("http://127.0.0.1:8000"), follow=True)
    assert response.status_code == 200
    assert_private(response, form=True)
    page = response.content.decode()
    assert "Connect Harbour Trust's Xero to Lookout" in page
    assert "accounting.contacts" in page
    for name in ("client_id", "client_secret", "webhook_key"):
        assert f'name="{name}"' in page
    link.refresh_from_db()
    assert link.opened_at is not None


def test_command_refuses_bad_input(organisation, settings):
    with pytest.raises(CommandError, match="No organisation"):
        call_command("xero_credentials_link", organisation="999999")
    with pytest.raises(CommandError, match="at most 720 hours"):
        call_command("xero_credentials_link", organisation=str(organisation.pk), hours=0)
    settings.LOOKOUT_XERO = {**settings.LOOKOUT_XERO, "SITE_URL": ""}
    with pytest.raises(CommandError, match="SITE_URL"):
        call_command("xero_credentials_link", organisation=str(organisation.pk))
    assert not XeroCredentialsLink.objects.exists()


# --- dead links: tampered, expired, spent, revoked --------------------------------------------


def test_a_tampered_or_unknown_link_is_a_404_that_names_nobody(client, organisation):
    path = link_path(organisation)
    token = path.rstrip("/").rsplit("/", 1)[1]
    flipped = token[:-3] + ("A" if token[-3] != "A" else "B") + token[-2:]
    for bad in (flipped, token + "x", "nonsense", token.split(":")[0]):
        response = client.get(reverse("lookout_xero:credentials", args=[bad]))
        assert response.status_code == 404
        assert_private(response)
        body = response.content.decode()
        assert NOT_FOUND in body
        assert "Harbour" not in body


def test_an_expired_link_is_refused_before_and_by_the_database(client, organisation):
    short = link_path(organisation, hours=1 / 3600)  # one second
    time.sleep(1.2)
    assert client.get(short).status_code == 404
    # A link the database says has expired (the signed expiry is still in the future).
    path = link_path(organisation)
    XeroCredentialsLink.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    response = client.get(path)
    assert response.status_code == 404
    assert "Harbour" not in response.content.decode()


def test_a_new_link_revokes_the_old_one(client, organisation):
    old = link_path(organisation)
    new = link_path(organisation)
    assert client.get(old).status_code == 404
    assert client.get(new, follow=True).status_code == 200
    assert XeroCredentialsLink.objects.filter(revoked_at__isnull=False).count() == 1


# --- submitting ------------------------------------------------------------------------------


def test_refused_credentials_say_why_and_the_link_stays_usable(client, organisation, xero):
    xero.add_organisation(CLIENT_ID, CLIENT_SECRET, name="Harbour Trust Ltd")
    path = link_path(organisation)
    response = submit(client, path, secret="wrong-secret-123")
    assert response.status_code == 400
    assert_private(response, form=True)
    body = response.content.decode()
    assert "did not accept this Client ID and Client Secret" in body
    assert "Check both in your Xero developer portal" in body
    assert "wrong-secret-123" not in body
    # Only the secret is typed again: the Client ID is kept (it is not a secret).
    assert f'spellcheck="false" value="{CLIENT_ID}">' in body
    assert XeroCredentialsLink.objects.get().tries == 1
    assert not XeroConnection.objects.exists()
    # Missing fields: said plainly, no try used up.
    response = client.post(path, {"client_id": CLIENT_ID})
    assert "Fill in the Client ID and the Client Secret" in response.content.decode()
    assert XeroCredentialsLink.objects.get().tries == 1
    assert submit(client, path).status_code == 200


def test_accepted_credentials_are_stored_encrypted_disabled_and_the_link_is_spent(
    client, organisation, xero
):
    xero.add_organisation(CLIENT_ID, CLIENT_SECRET, name="Harbour Trust Ltd")
    path = link_path(organisation)
    response = submit(client, path, webhook_key="webhook-key-abcdef")
    assert response.status_code == 200
    assert_private(response)
    body = response.content.decode()
    assert "Harbour Trust Ltd" in body
    assert "can do more than Lookout needs" not in body
    assert CLIENT_SECRET not in body and "webhook-key-abcdef" not in body

    connection = XeroConnection.objects.get(organisation=organisation)
    assert connection.enabled is False
    assert (connection.client_id, connection.client_secret) == (CLIENT_ID, CLIENT_SECRET)
    assert connection.webhook_key == "webhook-key-abcdef"
    assert connection.scope == "accounting.contacts"
    assert connection.granted_scopes == "accounting.contacts"
    assert connection.credentials_received_at is not None
    assert connection.xero_tenant_name == "Harbour Trust Ltd"
    for column in ("client_id", "client_secret", "webhook_key"):
        assert b"org-a" not in stored_bytes(connection.pk, column)
        assert b"webhook-key" not in stored_bytes(connection.pk, column)
    link = XeroCredentialsLink.objects.get()
    assert link.used_at is not None and link.xero_tenant_name == "Harbour Trust Ltd"
    # Spent: both reading and submitting answer 404 now.
    assert client.get(path).status_code == 404
    assert submit(client, path).status_code == 404


def test_broader_scopes_are_warned_about_and_flagged_in_the_admin(
    client, admin_client, organisation, xero
):
    xero.add_organisation(
        CLIENT_ID,
        CLIENT_SECRET,
        name="Harbour Trust Ltd",
        scopes=("accounting.contacts", "accounting.settings", "payroll.employees"),
    )
    response = submit(client, link_path(organisation))
    body = response.content.decode()
    assert "can do more than Lookout needs" in body
    assert "payroll.employees" in body
    connection = XeroConnection.objects.get()
    assert connection.extra_scopes == ["accounting.settings", "payroll.employees"]
    listing = admin_client.get(reverse("admin:lookout_xero_xeroconnection_changelist"))
    assert "More than accounting.contacts" in listing.content.decode()
    page = admin_client.get(
        reverse("admin:lookout_xero_xeroconnection_change", args=[connection.pk])
    )
    assert "Credentials received from the customer link on" in page.content.decode()


def test_a_connection_that_refuses_any_scope_is_stored_with_none(client, organisation, xero):
    xero.add_organisation(CLIENT_ID, CLIENT_SECRET, reject_explicit_scope=True)
    assert submit(client, link_path(organisation)).status_code == 200
    assert XeroConnection.objects.get().scope == ""


def test_an_existing_enabled_connection_gets_new_credentials_and_stays_as_it_was(
    client, organisation, xero
):
    xero.add_organisation(CLIENT_ID, "the-new-secret-000")
    connection = make_connection(organisation, secret="the-old-secret-000", enabled=False)
    assert submit(client, link_path(organisation), secret="the-new-secret-000").status_code == 200
    connection.refresh_from_db()
    assert connection.client_secret == "the-new-secret-000"
    assert connection.enabled is False
    assert XeroConnection.objects.count() == 1


def test_refused_tries_are_limited_per_link(client, organisation, xero, settings):
    xero.add_organisation(CLIENT_ID, CLIENT_SECRET)
    settings.LOOKOUT_XERO = {**settings.LOOKOUT_XERO, "LINK_MAX_TRIES": 3}
    path = link_path(organisation)
    assert submit(client, path, secret="nope-1").status_code == 400
    assert submit(client, path, secret="nope-2").status_code == 400
    locked = submit(client, path, secret="nope-3")
    assert locked.status_code == 429
    assert_private(locked)
    assert "refused 3 times and accepts no more" in locked.content.decode()
    # Locked means locked, even for the right credentials, and for reading.
    assert submit(client, path).status_code == 429
    assert client.get(path).status_code == 429
    assert not XeroConnection.objects.exists()
    calls = [r for r in xero.requests if r.path.endswith("/connect/token")]
    assert len(calls) == 3  # a locked link does not even ask Xero


def test_every_answer_is_private_even_a_csrf_refusal(organisation, xero):
    path = link_path(organisation)
    strict = HttpsClient(enforce_csrf_checks=True)
    response = strict.post(path, {"client_id": "x", "client_secret": "y"})
    assert response.status_code == 403
    assert_private(response)
    assert not XeroCredentialsLink.objects.filter(tries__gt=0).exists()
    # With the token from the page, the same client is let through (to Xero's refusal).
    page = strict.get(path, follow=True)
    token = strict.cookies["csrftoken"].value
    response = strict.post(
        page.redirect_chain[-1][0],
        {"client_id": "x", "client_secret": "y", "csrfmiddlewaretoken": token},
        headers={"Origin": "https://testserver"},
    )
    assert response.status_code == 400
    assert_private(response, form=True)
    assert HttpsClient().put(path).status_code == 405


def test_plain_http_is_redirected_or_refused_when_debug_is_off(organisation, settings):
    settings.DEBUG = False
    client = Client()
    path = link_path(organisation)
    response = client.get(path)
    assert response.status_code == 301
    assert response["Location"] == f"https://testserver{path}"
    assert_private(response)
    assert submit(client, path).status_code == 403
    assert client.get(path, secure=True, follow=True).status_code == 200
    settings.DEBUG = True  # the demo on a laptop has no https
    assert client.get(path, follow=True).status_code == 200


# --- the admin's side ------------------------------------------------------------------------


def messages_of(response) -> list[str]:
    return [str(m) for m in response.context["messages"]]


def test_admin_creates_links_from_the_list_the_page_and_for_an_organisation_without_one(
    admin_client, organisation, client
):
    connection = make_connection(organisation)
    changelist = reverse("admin:lookout_xero_xeroconnection_changelist")
    response = admin_client.post(
        changelist,
        {"action": "create_credentials_link", "_selected_action": [connection.pk]},
        follow=True,
    )
    [message] = [m for m in messages_of(response) if "Credentials link" in m]
    url = re.search(r"<code data-lx-copy-source>([^<]+)</code>", message)[1]
    # A copy button beside the URL (admin.js copies it; the admin allows a script file).
    shown = response.content.decode()
    button = '<button type="button" class="button" data-lx-copy>Copy</button>'
    assert f"<code data-lx-copy-source>{url}</code> {button}" in shown
    assert "lookout_xero/admin.js" in shown
    assert client.get(url.removeprefix("http://127.0.0.1:8000"), follow=True).status_code == 200

    page_button = reverse(
        "admin:lookout_xero_xeroconnection_credentials_link", args=[connection.pk]
    )
    response = admin_client.post(page_button, follow=True)
    assert any("it is not shown again" in m for m in messages_of(response))
    assert client.get(url.removeprefix("http://127.0.0.1:8000")).status_code == 404  # revoked

    newcomer = Organisation.objects.create(name="Newcomer Society")
    chooser = reverse("admin:lookout_xero_xeroconnection_credentials_link_new")
    assert admin_client.get(chooser).status_code == 200
    response = admin_client.post(chooser, {"organisation": newcomer.pk}, follow=True)
    assert any("Newcomer Society" in m for m in messages_of(response))
    assert XeroCredentialsLink.objects.filter(organisation=newcomer).count() == 1
    assert XeroCredentialsLink.objects.count() == 3

    page = admin_client.get(
        reverse("admin:lookout_xero_xeroconnection_change", args=[connection.pk])
    )
    history = page.content.decode()
    assert "Create credentials link" in history
    assert history.count("Created a credentials link") == 2
    assert "revoked" in history and "not opened" in history


def test_staff_without_the_credentials_permission_cannot_make_links(
    client, organisation, django_user_model
):
    from django.contrib.auth.models import Permission

    user = django_user_model.objects.create_user("viewer", password="pw", is_staff=True)
    user.user_permissions.set(
        Permission.objects.filter(
            content_type__app_label="lookout_xero",
            codename__in=["view_xeroconnection", "change_xeroconnection"],
        )
    )
    client.force_login(user)
    connection = make_connection(organisation)
    url = reverse("admin:lookout_xero_xeroconnection_credentials_link", args=[connection.pk])
    assert client.post(url).status_code == 403
    assert (
        client.get(reverse("admin:lookout_xero_xeroconnection_credentials_link_new")).status_code
        == 403
    )
    assert not XeroCredentialsLink.objects.exists()


def test_who_did_what_is_recorded_and_shown_without_a_secret(
    admin_client, organisation, django_capture_on_commit_callbacks
):
    add = reverse("admin:lookout_xero_xeroconnection_add")
    admin_client.post(
        add,
        {
            "organisation": organisation.pk,
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
            "scope": "accounting.contacts",
        },
    )
    connection = XeroConnection.objects.get()
    change = reverse("admin:lookout_xero_xeroconnection_change", args=[connection.pk])
    form = {"client_id": CLIENT_ID, "client_secret": "", "scope": "accounting.contacts"}
    with django_capture_on_commit_callbacks():
        admin_client.post(change, {**form, "enabled": "on"})
        admin_client.post(change, {**form, "enabled": "on", "client_secret": "replaced-secret-9"})
        admin_client.post(
            reverse("admin:lookout_xero_xeroconnection_sync_now", args=[connection.pk])
        )
        admin_client.post(change, form)
    funder = make_funder(organisation, "Ada Lovelace")
    link = XeroContactLink.objects.create(
        connection=connection,
        funder=funder,
        state=XeroContactLink.State.CONFLICT,
        conflict_candidates=[{"contact_id": "c-1", "name": "Ada Lovelace"}],
    )
    with django_capture_on_commit_callbacks():
        admin_client.post(
            reverse("admin:lookout_xero_xerocontactlink_resolve", args=[link.pk]),
            {"decision": "ignore"},
        )
    admin_client.post(
        reverse("admin:lookout_xero_xeroconnection_credentials_link", args=[connection.pk])
    )

    said = list(LogEntry.objects.order_by("pk").values_list("change_message", flat=True))
    for expected in (
        "Set the Client Secret.",
        "Enabled the sync.",
        "Replaced the Client Secret.",
        "Ran Sync now",
        "Disabled the sync.",
        "Resolved a conflict: “Ada Lovelace” will not be synced",
        "Created a credentials link",
    ):
        assert any(expected in message for message in said), (expected, said)
    assert LogEntry.objects.filter(user__username="admin").count() == LogEntry.objects.count()
    page = admin_client.get(change).content.decode()
    for expected in ("Replaced the Client Secret.", "Ran Sync now", "Resolved a conflict"):
        assert expected in page
    everything = " ".join(said) + page
    assert CLIENT_SECRET not in everything and "replaced-secret-9" not in everything


def test_test_connection_shows_the_granted_scopes_and_keeps_them(admin_client, organisation, xero):
    xero.add_organisation(
        CLIENT_ID, CLIENT_SECRET, scopes=("accounting.contacts", "accounting.transactions")
    )
    connection = make_connection(organisation)
    answer = admin_client.post(
        reverse("admin:lookout_xero_xeroconnection_test_connection"),
        {
            "client_id": CLIENT_ID,
            "client_secret": "",
            "scope": "accounting.contacts",
            "connection": connection.pk,
        },
    ).json()
    assert answer["ok"] is True
    assert answer["scopes"] == ["accounting.contacts", "accounting.transactions"]
    assert "Xero granted: accounting.contacts, accounting.transactions." in answer["message"]
    assert "can do more than accounting.contacts (accounting.transactions)" in answer["message"]
    connection.refresh_from_db()
    assert connection.extra_scopes == ["accounting.transactions"]


def test_one_who_did_what_line_per_save_with_the_right_verb(
    admin_client, organisation, django_capture_on_commit_callbacks
):
    connection = make_connection(organisation)
    change = reverse("admin:lookout_xero_xeroconnection_change", args=[connection.pk])
    form = {"client_id": CLIENT_ID, "client_secret": "", "scope": connection.scope}
    admin_client.post(change, {**form, "webhook_key": "first-webhook-key"})
    admin_client.post(change, {**form, "webhook_key": "second-webhook-key"})
    admin_client.post(change, form)  # nothing changed: nothing to say
    said = list(LogEntry.objects.order_by("pk").values_list("change_message", flat=True))
    assert said == ["Set the webhook key.", "Replaced the webhook key."]


def test_credentials_given_through_a_link_are_recorded_as_the_customers(
    admin_client, client, organisation, xero, django_user_model
):
    xero.add_organisation(CLIENT_ID, "the-new-secret-000")
    connection = make_connection(organisation, secret="the-old-secret-000", enabled=True)
    maker = django_user_model.objects.get(username="admin")
    link, url = credentials.create_link(organisation, user=maker)
    LogEntry.objects.all().delete()  # the link's own "Created a credentials link" row
    assert submit(client, url, secret="the-new-secret-000").status_code == 200
    [row] = LogEntry.objects.all()
    assert row.object_id == str(connection.pk) and row.user == maker
    assert row.change_message == (
        f"Through credentials link #{link.pk}, the customer: replaced the Client Secret."
    )
    page = admin_client.get(
        reverse("admin:lookout_xero_xeroconnection_change", args=[connection.pk])
    ).content.decode()
    assert row.change_message in page and "the-new-secret-000" not in page


@pytest.mark.parametrize("before", ["none", "disabled", "enabled"])
def test_the_answer_says_what_happens_next_for_a_new_disabled_or_enabled_connection(
    client, organisation, xero, before
):
    xero.add_organisation(CLIENT_ID, CLIENT_SECRET, name="Harbour Trust Ltd")
    if before != "none":
        make_connection(organisation, secret="old-secret-000", enabled=before == "enabled")
    path = link_path(organisation)
    form_page = client.get(client.get(path)["Location"]).content.decode()
    body = submit(client, path).content.decode()
    said = {
        "none": "data-lx-sync-new",
        "disabled": "data-lx-sync-off",
        "enabled": "data-lx-sync-on",
    }
    assert [key for key, mark in said.items() if mark in body] == [before]
    switches_on = "the Lookout team switches it on"
    assert (switches_on in body) is (before != "enabled")
    assert ("Lookout uses them as soon as Xero accepts them" in form_page) is (before == "enabled")
