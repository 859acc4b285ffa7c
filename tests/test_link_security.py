"""A credentials link, or any change of credentials, can never redirect an organisation's data;
the customer's page holds against brute force, framing, and tokens left in logs.

Someone holding a forwarded link is not necessarily the customer: their credentials may reach
their own Xero organisation. These tests follow that stranger, and the worker that would sync
there, against the fake Xero over real HTTP.
"""

from __future__ import annotations

import logging
import re
import threading

import pytest
from django.contrib.auth.models import Permission
from django.db import connection as db_connection
from django.test import Client
from django.urls import reverse

from lookout_xero import credentials, services
from lookout_xero.models import (
    OutboxEntry,
    XeroConnection,
    XeroContactLink,
    XeroCredentialsLink,
    XeroPendingCredentials,
    XeroWebhookEvent,
)
from tests.helpers import CLIENT_ID, CLIENT_SECRET, make_connection, make_funder
from tests.test_credentials import HttpsClient, link_path, submit

STRANGER_ID, STRANGER_SECRET = "client-stranger", "stranger-secret-0000"


@pytest.fixture
def client():
    return HttpsClient()


@pytest.fixture
def org(xero):
    return xero.add_organisation(CLIENT_ID, CLIENT_SECRET, name="Harbour Trust Ltd")


@pytest.fixture
def stranger(xero):
    return xero.add_organisation(STRANGER_ID, STRANGER_SECRET, name="Stranger Books Ltd")


@pytest.fixture
def synced(organisation, org):
    """An enabled connection that has synced one funder with the customer's Xero."""
    make_funder(organisation, "Ada Member", email="ada@example.org")
    connection = make_connection(organisation, enabled=True)
    services.run_full_sync(connection.runs.get().pk)
    services.drain(connection.pk)
    assert len(org.contacts) == 1
    connection.refresh_from_db()
    assert connection.xero_tenant_id == org.tenant_id
    return connection


def confirm_url(connection, name="use_new_tenant"):
    return reverse(f"admin:lookout_xero_xeroconnection_{name}", args=[connection.pk])


def change_page(admin_client, connection) -> str:
    url = reverse("admin:lookout_xero_xeroconnection_change", args=[connection.pk])
    return admin_client.get(url).content.decode()


def contact_calls(xero, client_id) -> dict:
    """Calls that read or wrote contacts (a credentials check only asks for a token and
    the organisation's name)."""
    return {
        k: n for k, n in xero.call_counts(client_id).items() if k not in ("token", "connections")
    }


# --- 1. a link for another Xero organisation waits for the team --------------------------------


def test_a_link_giving_another_xero_organisation_waits_for_the_team_and_sends_nothing_there(
    client, admin_client, organisation, synced, org, stranger, xero
):
    response = submit(client, link_path(organisation), STRANGER_ID, STRANGER_SECRET)
    assert response.status_code == 200
    body = response.content.decode()
    assert "data-lx-waiting" in body and "The Lookout team will confirm" in body
    assert "Harbour Trust Ltd" not in body  # the holder learns nothing of the customer's Xero

    synced.refresh_from_db()
    assert (synced.client_id, synced.client_secret) == (CLIENT_ID, CLIENT_SECRET)
    assert synced.enabled and synced.state == "ok"
    assert synced.xero_tenant_name == "Harbour Trust Ltd"
    pending = XeroPendingCredentials.objects.get(connection=synced)
    assert (pending.client_id, pending.xero_tenant_name) == (STRANGER_ID, "Stranger Books Ltd")
    with db_connection.cursor() as cursor:
        cursor.execute("SELECT client_id, client_secret FROM lookout_xero_xeropendingcredentials")
        raw = b"".join(bytes(value) for value in cursor.fetchone())
    assert STRANGER_ID.encode() not in raw and STRANGER_SECRET.encode() not in raw

    # Syncing carries on with the customer's Xero; the stranger's sees no contact call.
    funder = make_funder(organisation, "Bea Member")
    services.drain(synced.pk)
    assert XeroContactLink.objects.get(funder=funder).xero_contact_id in org.contacts
    assert contact_calls(xero, STRANGER_ID) == {} and stranger.contacts == {}

    page = change_page(admin_client, synced)
    text = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", page))
    assert (
        "The customer link gave credentials for Xero organisation Stranger Books Ltd; this "
        "connection synced with Harbour Trust Ltd." in text
    )
    assert "Use the new Xero organisation" in page and "Discard" in page
    assert STRANGER_SECRET not in page


def test_the_page_and_discard_work_even_when_the_waiting_credentials_cannot_be_decrypted(
    client, admin_client, organisation, synced, stranger, settings
):
    from cryptography.fernet import Fernet

    submit(client, link_path(organisation), STRANGER_ID, STRANGER_SECRET)
    pending = XeroPendingCredentials.objects.get()
    lost = Fernet(Fernet.generate_key())  # as if encrypted with a key since removed
    with db_connection.cursor() as cursor:
        cursor.execute(
            "UPDATE lookout_xero_xeropendingcredentials SET client_secret = %s WHERE id = %s",
            [lost.encrypt(b"whatever"), pending.pk],
        )
    assert "Stranger Books Ltd" in change_page(admin_client, synced)
    admin_client.post(confirm_url(synced, "discard_new_tenant"), {"tenant": stranger.tenant_id})
    assert not XeroPendingCredentials.objects.exists()


def test_confirming_the_new_organisation_takes_the_credentials_and_syncs_there_afresh(
    client, admin_client, organisation, synced, org, stranger, django_capture_on_commit_callbacks
):
    submit(client, link_path(organisation), STRANGER_ID, STRANGER_SECRET)
    with django_capture_on_commit_callbacks():
        response = admin_client.post(confirm_url(synced), {"tenant": stranger.tenant_id})
    assert response.status_code == 302
    synced.refresh_from_db()
    assert (synced.client_id, synced.client_secret) == (STRANGER_ID, STRANGER_SECRET)
    assert (synced.xero_tenant_id, synced.xero_tenant_name) == (
        stranger.tenant_id,
        "Stranger Books Ltd",
    )
    assert synced.enabled and not XeroPendingCredentials.objects.exists()
    assert XeroContactLink.objects.get().xero_contact_id == ""  # the old contacts mean nothing
    run = synced.runs.filter(status="pending").get()
    services.run_full_sync(run.pk)
    services.drain(synced.pk)
    assert [c["Name"] for c in stranger.contacts.values()] == ["Ada Member"]
    assert "Confirmed the Xero organisation" in change_page(admin_client, synced)


def test_discarding_keeps_the_connection_as_it_was(
    client, admin_client, organisation, synced, stranger
):
    submit(client, link_path(organisation), STRANGER_ID, STRANGER_SECRET)
    # A stale page (the tenant shown is not what waits) changes nothing.
    admin_client.post(confirm_url(synced), {"tenant": "not-what-waits"})
    assert XeroPendingCredentials.objects.exists()
    admin_client.post(confirm_url(synced, "discard_new_tenant"), {"tenant": stranger.tenant_id})
    assert not XeroPendingCredentials.objects.exists()
    synced.refresh_from_db()
    assert (synced.client_id, synced.client_secret) == (CLIENT_ID, CLIENT_SECRET)
    assert synced.xero_tenant_id != stranger.tenant_id
    assert "waits for your confirmation" not in change_page(admin_client, synced)


def test_another_client_id_for_the_same_organisation_waits_too(
    client, organisation, synced, org, xero
):
    second = xero.add_organisation("client-second-app", "second-secret-000")
    second.tenant_id = org.tenant_id  # a second custom connection to the same organisation
    response = submit(client, link_path(organisation), "client-second-app", "second-secret-000")
    assert "data-lx-waiting" in response.content.decode()
    synced.refresh_from_db()
    assert synced.client_id == CLIENT_ID
    assert XeroPendingCredentials.objects.get().client_id == "client-second-app"


def test_a_rotated_secret_applies_at_once_and_syncing_carries_on(
    client, organisation, synced, org, django_capture_on_commit_callbacks
):
    org.client_secret = "rotated-secret-1111"
    with django_capture_on_commit_callbacks() as callbacks:
        response = submit(client, link_path(organisation), CLIENT_ID, "rotated-secret-1111")
    body = response.content.decode()
    assert response.status_code == 200 and "data-lx-waiting" not in body
    assert "data-lx-accepted" in body and "data-lx-sync-on" in body
    assert not XeroPendingCredentials.objects.exists()
    synced.refresh_from_db()
    assert synced.client_secret == "rotated-secret-1111" and synced.enabled
    assert callbacks  # the drain that was waiting for fixed credentials is asked for
    make_funder(organisation, "After Rotation")
    services.drain(synced.pk)
    assert "After Rotation" in [c["Name"] for c in org.contacts.values()]


def test_a_connection_that_never_synced_takes_other_credentials_at_once(
    client, organisation, stranger
):
    connection = make_connection(organisation)  # never synced: nothing to protect
    submit(client, link_path(organisation), STRANGER_ID, STRANGER_SECRET)
    connection.refresh_from_db()
    assert connection.client_id == STRANGER_ID
    assert not XeroPendingCredentials.objects.exists()


def test_the_confirm_buttons_need_the_permission_a_post_and_csrf(
    client, organisation, synced, stranger, django_user_model
):
    submit(client, link_path(organisation), STRANGER_ID, STRANGER_SECRET)
    operator = django_user_model.objects.create_user("operator", password="pw", is_staff=True)
    operator.user_permissions.set(
        Permission.objects.filter(
            content_type__app_label="lookout_xero",
            codename__in=["view_xeroconnection", "change_xeroconnection"],
        )
    )
    staff = Client()
    staff.force_login(operator)
    for name in ("use_new_tenant", "discard_new_tenant"):
        assert (
            staff.post(confirm_url(synced, name), {"tenant": stranger.tenant_id}).status_code == 403
        )
    page = staff.get(reverse("admin:lookout_xero_xeroconnection_change", args=[synced.pk]))
    assert "Stranger Books" not in page.content.decode()

    manager = django_user_model.objects.create_superuser("boss", password="pw")
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(manager)
    assert strict.get(confirm_url(synced)).status_code == 405
    assert strict.post(confirm_url(synced), {"tenant": stranger.tenant_id}).status_code == 403
    missing = reverse("admin:lookout_xero_xeroconnection_use_new_tenant", args=[999999])
    superuser = Client()
    superuser.force_login(manager)
    assert superuser.post(missing, {"tenant": stranger.tenant_id}).status_code == 404
    assert XeroPendingCredentials.objects.exists()
    synced.refresh_from_db()
    assert synced.client_id == CLIENT_ID


def test_the_confirm_buttons_go_through_the_model_admins_queryset(
    client, organisation, synced, stranger, django_user_model
):
    from django.contrib.admin import AdminSite
    from django.http import Http404
    from django.test import RequestFactory

    from lookout_xero.admin import XeroConnectionAdmin
    from lookout_xero.link_admin import discard_new_tenant, use_new_tenant

    class OnlySomeOrganisations(XeroConnectionAdmin):
        """A host that limits its staff to some organisations (here: none)."""

        def get_queryset(self, request):
            return super().get_queryset(request).none()

    submit(client, link_path(organisation), STRANGER_ID, STRANGER_SECRET)
    model_admin = OnlySomeOrganisations(XeroConnection, AdminSite(name="limited"))
    for view in (use_new_tenant, discard_new_tenant):
        request = RequestFactory().post("/", {"tenant": stranger.tenant_id})
        request.user = django_user_model.objects.create_superuser(f"boss-{view.__name__}")
        with pytest.raises(Http404):
            view(request, model_admin, str(synced.pk))
    assert XeroPendingCredentials.objects.exists()


# --- 1. a worker never follows credentials to another organisation -----------------------------


def credentials_changed_in_a_shell(connection, client_id, secret):
    """No save(), no signal: only the columns (and the cached token goes with them)."""
    XeroConnection.objects.filter(pk=connection.pk).update(
        client_id=client_id, client_secret=secret, access_token="", access_token_expires_at=None
    )


def test_a_drain_stops_before_writing_to_another_organisation(
    organisation, synced, stranger, xero, admin_client
):
    credentials_changed_in_a_shell(synced, STRANGER_ID, STRANGER_SECRET)
    make_funder(organisation, "Would Leak")
    services.drain(synced.pk)
    assert contact_calls(xero, STRANGER_ID) == {} and stranger.contacts == {}
    synced.refresh_from_db()
    assert (synced.state, synced.error_code) == ("error", "tenant_changed")
    assert "Stranger Books Ltd" in synced.error_message
    assert synced.other_tenant_id == stranger.tenant_id
    assert OutboxEntry.objects.count() == 1  # waits for a person
    page = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", change_page(admin_client, synced)))
    assert (
        "The connection's credentials now reach Xero organisation Stranger Books Ltd; this "
        "connection synced with Harbour Trust Ltd." in page
    )
    services.drain(synced.pk)  # in Error: not one more call
    assert contact_calls(xero, STRANGER_ID) == {}


def test_credentials_put_back_end_the_stop_and_syncing_carries_on_where_it_was(
    organisation, synced, stranger, org, xero, admin_client
):
    credentials_changed_in_a_shell(synced, STRANGER_ID, STRANGER_SECRET)
    funder = make_funder(organisation, "Waits Safely")
    services.drain(synced.pk)
    synced.refresh_from_db()
    assert synced.error_code == "tenant_changed"
    synced.client_id, synced.client_secret = CLIENT_ID, CLIENT_SECRET
    synced.save()  # the team puts the customer's credentials back
    synced.refresh_from_db()
    assert (synced.state, synced.other_tenant_id) == ("ok", "")
    assert "waits for your confirmation" not in change_page(admin_client, synced)
    services.drain(synced.pk)
    assert XeroContactLink.objects.get(funder=funder).xero_contact_id in org.contacts
    assert contact_calls(xero, STRANGER_ID) == {}


def test_webhook_processing_stops_before_reading_another_organisation(
    organisation, synced, stranger, xero
):
    link = XeroContactLink.objects.get()
    XeroWebhookEvent.objects.create(connection=synced, xero_contact_id=link.xero_contact_id)
    credentials_changed_in_a_shell(synced, STRANGER_ID, STRANGER_SECRET)
    services.process_webhooks(synced.pk)
    assert contact_calls(xero, STRANGER_ID) == {}
    synced.refresh_from_db()
    assert (synced.state, synced.error_code) == ("error", "tenant_changed")


def test_a_never_synced_connection_needs_no_confirmation(organisation, stranger, xero):
    connection = make_connection(organisation, client_id=STRANGER_ID, secret=STRANGER_SECRET)
    XeroConnection.objects.filter(pk=connection.pk).update(enabled=True)
    funder = make_funder(organisation, "First Member")
    OutboxEntry.objects.get_or_create(connection=connection, funder=funder)
    services.drain(connection.pk)
    connection.refresh_from_db()
    assert connection.state == "ok" and connection.xero_tenant_id == stranger.tenant_id
    assert len(stranger.contacts) == 1


# --- 1. the submission writes only the credentials, under a lock --------------------------------


@pytest.mark.django_db(transaction=True)
def test_a_connection_disabled_during_the_check_stays_disabled(organisation, xero, org):
    connection = make_connection(organisation)
    XeroConnection.objects.filter(pk=connection.pk).update(enabled=True)
    link, _ = credentials.create_link(organisation)
    org.client_secret = "rotated-secret-2222"
    held = xero.delay_next(30, path_contains="/connect/token")
    results = []

    def customer() -> None:
        try:
            results.append(
                credentials.submit(link, client_id=CLIENT_ID, client_secret="rotated-secret-2222")
            )
        finally:
            db_connection.close()

    submission = threading.Thread(target=customer)
    submission.start()
    assert xero.wait_for(lambda fake: fake.count("token") >= 1)
    team = XeroConnection.objects.get(pk=connection.pk)
    team.enabled = False  # the team switches the sync off while Xero is being asked
    team.save()
    held.release()
    submission.join(10)
    assert results and results[0].accepted
    connection.refresh_from_db()
    assert connection.client_secret == "rotated-secret-2222"
    assert connection.enabled is False


# --- 4. the customer's page ---------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_parallel_submissions_cannot_exceed_link_max_tries(organisation, xero, org, settings):
    settings.LOOKOUT_XERO = {**settings.LOOKOUT_XERO, "LINK_MAX_TRIES": 3}
    link, _ = credentials.create_link(organisation)
    xero.delay_next(0.5, times=10, path_contains="/connect/token")  # so that they overlap
    results = []
    start = threading.Barrier(8)

    def guess(n: int) -> None:
        try:
            start.wait()
            results.append(
                credentials.submit(link, client_id=CLIENT_ID, client_secret=f"guess-{n:04}")
            )
        finally:
            db_connection.close()

    threads = [threading.Thread(target=guess, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert len(results) == 8
    assert xero.count("token") == 3  # only as many guesses as the link allows reached Xero
    assert sum(result.locked for result in results) == 5
    assert XeroCredentialsLink.objects.get().tries == 3


def test_the_check_from_the_web_gives_up_soon(client, organisation, xero, org, settings):
    settings.LOOKOUT_XERO = {**settings.LOOKOUT_XERO, "CHECK_TIMEOUT": 0.5}
    xero.delay_next(3, path_contains="/connect/token")
    response = submit(client, link_path(organisation))
    assert response.status_code == 400
    assert "Could not reach Xero" in response.content.decode()
    assert not XeroConnection.objects.exists()


def test_the_token_leaves_the_url_after_the_first_visit(client, organisation, xero, org, caplog):
    path = link_path(organisation)
    token = path.rstrip("/").rsplit("/", 1)[1]
    opened = client.get(path)
    assert opened.status_code == 302
    page_url = opened["Location"]
    assert token not in page_url and page_url.startswith("/xero/credentials/page/")
    form = client.get(page_url)
    assert form.status_code == 200 and token not in form.content.decode()
    assert 'method="post"' in form.content.decode() and "action=" not in form.content.decode()

    # Without the session that opened the link, the token-free address opens nothing; a 4xx
    # on it logs no token.
    with caplog.at_level(logging.WARNING, logger="django.request"):
        assert HttpsClient().get(page_url).status_code == 404
    assert token not in caplog.text

    # The same link on another device still works while it is unspent.
    phone = HttpsClient()
    phone_page = phone.get(path, follow=True)
    assert phone_page.status_code == 200 and "Connect Harbour Trust" in phone_page.content.decode()

    accepted = client.post(page_url, {"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET})
    assert accepted.status_code == 200 and "data-lx-accepted" in accepted.content.decode()
    assert client.get(page_url).status_code == 404  # spent
    assert phone.get(phone_page.redirect_chain[-1][0]).status_code == 404
    assert phone.get(path).status_code == 404


def test_two_links_open_in_one_browser_stay_apart(client, organisation, xero, org):
    from project.funders.models import Organisation

    other = Organisation.objects.create(name="Other Society")
    first = client.get(link_path(organisation))["Location"]
    second = client.get(link_path(other))["Location"]
    assert first != second
    assert "Connect Harbour Trust" in client.get(first).content.decode()
    assert "Connect Other Society" in client.get(second).content.decode()
    client.post(first, {"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET})
    assert XeroConnection.objects.get().organisation == organisation


def test_the_customer_pages_cannot_be_framed_and_run_no_script(
    client, organisation, xero, org, settings
):
    settings.X_FRAME_OPTIONS = "SAMEORIGIN"  # the host allows framing elsewhere
    path = link_path(organisation)
    answers = {
        "redirect": client.get(path),
        "form": client.get(path, follow=True),
        "refused": submit(client, path, secret="wrong-secret-0000"),
        "not found": client.get(reverse("lookout_xero:credentials", args=["nonsense"])),
        "accepted": submit(client, path),
    }
    for name, response in answers.items():
        assert response["X-Frame-Options"] == "DENY", name
        policy = response["Content-Security-Policy"]
        assert "frame-ancestors 'none'" in policy, name
        assert "default-src 'none'" in policy and "script-src" not in policy, name
        assert "unsafe-inline" not in policy, name
        body = response.content.decode()
        assert "<script" not in body.lower(), name
        nonce = re.search(r"'nonce-([^']+)'", policy).group(1)
        if "<style" in body:
            assert f'<style nonce="{nonce}">' in body, name
    assert "style=" not in answers["form"].content.decode()
    nonces = {answers[name]["Content-Security-Policy"] for name in ("form", "refused")}
    assert len(nonces) == 2  # a new nonce for every answer
