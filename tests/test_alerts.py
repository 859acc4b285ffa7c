"""Alerts: one e-mail per episode and one on recovery, for each kind, with no secret in them.

In-process tests run the real sync against the fake Xero to produce each state, then
`alerts.check_alerts` with Django's locmem e-mail backend (pytest-django's default), so
`mail.outbox` holds every message. The end-to-end test lets a real worker produce the state
*and* run the check from its beat; the worker's e-mail goes to Django's file backend in a folder
the test reads (`Worker.mail_dir`), and the test also runs the check itself, so a duplicate sent
by either process would be counted.
"""

from __future__ import annotations

import email
import email.policy
import json
import os
import subprocess
import sys
from datetime import timedelta

import django
import pytest
from django.core import mail
from django.core.mail.backends.base import BaseEmailBackend
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone

from lookout_xero import alerts, services
from lookout_xero.models import OutboxEntry, XeroAlert, XeroConnection, XeroContactLink
from tests.conftest import ROOT, _database_url
from tests.helpers import CLIENT_ID, CLIENT_SECRET, make_connection, make_funder, wait_until

WRONG_SECRET = "wr0ng-secret-NEVER-IN-MAIL"
SITE = "https://lookout.example.org"
TEAM = ["team@lookout.example", "oncall@lookout.example"]


@pytest.fixture
def alert_settings(settings):
    settings.LOOKOUT_XERO = {
        **settings.LOOKOUT_XERO,
        "ALERT_RECIPIENTS": TEAM,
        "ALERT_AFTER_MINUTES": 30,
        "SITE_URL": SITE + "/",
    }
    settings.DEFAULT_FROM_EMAIL = "lookout-xero@lookout.example"
    return settings


@pytest.fixture
def org(xero):
    return xero.add_organisation(CLIENT_ID, CLIENT_SECRET, name="Harbour Trust Ltd")


@pytest.fixture
def connection(db, alert_settings, organisation, org):
    """An enabled connection whose (empty) full sync has run."""
    connection = make_connection(organisation, enabled=True)
    services.run_full_sync(connection.runs.get().pk)
    return connection


def texts(messages) -> list[str]:
    return [f"{m.subject}\n{m.body}\n{m.to}\n{m.from_email}" for m in messages]


def assert_no_secret(messages, *secrets):
    connection = XeroConnection.objects.first()
    secrets = [*secrets, CLIENT_SECRET, WRONG_SECRET]
    if connection and connection.access_token:
        secrets.append(connection.access_token)
    for text in texts(messages):
        for secret in secrets:
            assert secret not in text


def connection_link(connection) -> str:
    return SITE + reverse("admin:lookout_xero_xeroconnection_change", args=[connection.pk])


# --- each kind: once per episode, once on recovery ----------------------------------------------


@pytest.mark.django_db
def test_refused_credentials_alert_once_then_resolved_once(xero, connection, organisation, org):
    connection.client_secret = WRONG_SECRET
    connection.save()  # as the admin's form does
    make_funder(organisation, "Waiting Funder")
    services.drain(connection.pk)
    assert XeroConnection.objects.get().state == "error"

    assert alerts.check_alerts()["sent"] == 1
    assert alerts.check_alerts()["sent"] == 0  # the same episode: no second mail
    [alert] = mail.outbox
    assert alert.to == TEAM and alert.from_email == "lookout-xero@lookout.example"
    assert alert.subject == (
        "Xero sync needs attention: Harbour Trust: Xero refused the connection"
    )
    assert "Xero did not accept the Client ID and Client Secret" in alert.body
    assert "Xero said:" in alert.body and "invalid_client" in alert.body
    assert f"Connection page: {connection_link(connection)}" in alert.body

    connection.client_secret = CLIENT_SECRET
    connection.save()  # fixed: the error is cleared
    alerts.check_alerts()
    alerts.check_alerts()
    assert len(mail.outbox) == 2
    resolved = mail.outbox[1]
    assert resolved.subject == "Resolved: Xero sync of Harbour Trust: Xero refused the connection"
    assert "The connection now: Healthy." in resolved.body
    assert connection_link(connection) in resolved.body

    # Refused again later: a new episode, a new e-mail.
    connection.client_secret = WRONG_SECRET + "-again"
    connection.save()
    make_funder(organisation, "Another Funder")
    services.drain(connection.pk)
    alerts.check_alerts()
    assert len(mail.outbox) == 3 and "needs attention" in mail.outbox[2].subject
    assert XeroAlert.objects.filter(kind="error").count() == 2
    assert_no_secret(mail.outbox, WRONG_SECRET + "-again")


@pytest.mark.django_db
def test_revoked_connection_alert(xero, connection, organisation, org):
    make_funder(organisation, "After Revocation")
    xero.fail_next(403)
    services.drain(connection.pk)
    alerts.check_alerts()
    [alert] = mail.outbox
    assert "custom connection may have been revoked" in alert.body
    assert_no_secret(mail.outbox)


@pytest.mark.django_db
def test_day_limit_pause_alert_once_then_resolved_when_it_resumes(
    xero, connection, organisation, org
):
    make_funder(organisation, "Throttled")
    org.set_limits(day_remaining=0)
    services.drain(connection.pk)
    connection.refresh_from_db()
    assert connection.is_paused

    alerts.check_alerts()
    alerts.check_alerts()
    [alert] = mail.outbox
    assert alert.subject.endswith("Paused by Xero's daily call limit")
    assert "paused until" in alert.body and "resumes by itself" in alert.body

    # The pause ends (Xero's Retry-After has passed): the sweep resumes and the drain delivers.
    XeroConnection.objects.update(paused_until=timezone.now() - timedelta(seconds=1))
    org.set_limits(day_remaining=100)
    services.sweep()
    services.drain(connection.pk)
    assert len(org.contacts) == 1
    alerts.check_alerts()
    alerts.check_alerts()
    assert [m.subject for m in mail.outbox][1] == (
        "Resolved: Xero sync of Harbour Trust: Paused by Xero's daily call limit"
    )
    assert len(mail.outbox) == 2
    assert_no_secret(mail.outbox)


@pytest.mark.django_db
def test_conflicts_alert_only_after_waiting_alert_after_minutes(
    xero, connection, organisation, org
):
    org.add_contact(Name="harbour books ltd", EmailAddress="x@example.org")
    clash = make_funder(organisation, "Harbour Books Ltd", email="other@example.org")
    OutboxEntry.objects.update(looked_up=True)  # as after a full sync: no look-up first
    services.drain(connection.pk)
    assert XeroContactLink.objects.get(funder=clash).state == "conflict"

    assert alerts.check_alerts() == {"opened": 0, "resolved": 0, "sent": 0}  # not waited yet
    XeroContactLink.objects.update(updated_at=timezone.now() - timedelta(minutes=31))
    alerts.check_alerts()
    alerts.check_alerts()
    [alert] = mail.outbox
    assert alert.subject.endswith("Conflicts waiting for a person")
    assert "1 funder(s) wait as conflicts" in alert.body
    assert "Harbour Books Ltd: " in alert.body and "already assigned" in alert.body

    clash.name = "Harbour Books (Wellington)"
    clash.save()  # a person resolves it by renaming the funder
    services.drain(connection.pk)
    alerts.check_alerts()
    alerts.check_alerts()
    assert len(mail.outbox) == 2
    assert mail.outbox[1].subject.startswith("Resolved: ")
    assert_no_secret(mail.outbox)


@pytest.mark.django_db
def test_failures_alert_once_and_resolved_when_fixed(xero, connection, organisation, org):
    nameless = make_funder(organisation, "")
    services.drain(connection.pk)
    assert XeroContactLink.objects.get(funder=nameless).state == "failed"
    later = timezone.now() + timedelta(minutes=31)  # the same as waiting half an hour
    alerts.check_alerts(now=later)
    alerts.check_alerts(now=later)
    [alert] = mail.outbox
    assert alert.subject.endswith("Funders failing to sync")
    assert "1 funder(s) failed to sync" in alert.body and "Retry failed" in alert.body

    nameless.name = "Now Named"
    nameless.save()
    services.drain(connection.pk)
    alerts.check_alerts(now=later)
    assert [m.subject.split(":")[0] for m in mail.outbox] == [
        "Xero sync needs attention",
        "Resolved",
    ]
    assert_no_secret(mail.outbox)


# --- edges: disabling, no recipients, sending failures, the database's guarantee ------------------


@pytest.mark.django_db
def test_disabling_ends_the_episode_and_says_so(xero, connection, organisation, org):
    XeroConnection.objects.update(state="error", error_code="forbidden", error_message="Revoked")
    alerts.check_alerts()
    connection.refresh_from_db()
    connection.enabled = False
    connection.save()
    alerts.check_alerts()
    assert len(mail.outbox) == 2
    assert "The connection now: Disabled. Nothing is sent to Xero" in mail.outbox[1].body


@pytest.mark.django_db
def test_without_recipients_nothing_is_sent_until_someone_is_named(
    xero, connection, alert_settings
):
    alert_settings.LOOKOUT_XERO = {**alert_settings.LOOKOUT_XERO, "ALERT_RECIPIENTS": []}
    XeroConnection.objects.update(state="error", error_code="invalid_client")
    assert alerts.check_alerts() == {"opened": 1, "resolved": 0, "sent": 0}
    assert mail.outbox == []
    # A single address given as a string is one recipient, not a list of characters.
    alert_settings.LOOKOUT_XERO = {**alert_settings.LOOKOUT_XERO, "ALERT_RECIPIENTS": TEAM[0]}
    assert alerts.check_alerts()["sent"] == 1  # the episode still open is told
    assert mail.outbox[0].to == [TEAM[0]]


class BrokenBackend(BaseEmailBackend):
    """An SMTP server that is down."""

    def send_messages(self, email_messages):
        raise ConnectionRefusedError("mail server down")


def use_mail_backend(settings, backend: str) -> None:
    """Django 6.1 names the backend in MAILERS, and refuses EMAIL_BACKEND beside it."""
    if django.VERSION >= (6, 1):
        settings.MAILERS = {"default": {"BACKEND": backend}}
    else:
        settings.EMAIL_BACKEND = backend


@pytest.mark.django_db
def test_a_mail_that_could_not_be_sent_is_tried_again(xero, connection, alert_settings):
    XeroConnection.objects.update(state="error", error_code="invalid_client")
    use_mail_backend(alert_settings, "tests.test_alerts.BrokenBackend")
    assert alerts.check_alerts()["sent"] == 0
    use_mail_backend(alert_settings, "django.core.mail.backends.locmem.EmailBackend")
    assert alerts.check_alerts()["sent"] == 1
    assert alerts.check_alerts()["sent"] == 0


@pytest.mark.django_db
def test_an_organisation_name_with_a_newline_does_not_hold_its_alerts_back(
    xero, connection, organisation
):
    # Django refuses a header with a line break (BadHeaderError); unchecked, the e-mail was
    # given back and tried again every minute, for ever, and the team never heard.
    organisation.name = "Harbour\r\nBcc: someone@example.org\tTrust"
    organisation.save()
    XeroConnection.objects.update(state="error", error_code="invalid_client")
    assert alerts.check_alerts()["sent"] == 1
    XeroConnection.objects.update(state="ok", error_code="")
    assert alerts.check_alerts()["sent"] == 1
    opened, resolved = mail.outbox
    assert opened.subject == (
        "Xero sync needs attention: Harbour Bcc: someone@example.org Trust: "
        "Xero refused the connection"
    )
    assert resolved.subject.startswith("Resolved: Xero sync of Harbour Bcc: someone@example.org")
    for message in (opened, resolved):
        assert message.recipients() == TEAM  # the name added no one
        assert message.message()["Bcc"] is None


@pytest.mark.django_db
def test_the_database_allows_one_open_episode_per_connection_and_kind(connection):
    XeroAlert.objects.create(connection=connection, kind="error")
    with pytest.raises(IntegrityError), transaction.atomic():
        XeroAlert.objects.create(connection=connection, kind="error")
    XeroAlert.objects.update(resolved_at=timezone.now())
    XeroAlert.objects.create(connection=connection, kind="error")  # a new episode is fine
    XeroAlert.objects.create(connection=connection, kind="paused")


# --- end to end: the demo's path with a real worker ------------------------------------------


def worker_mail(worker) -> list[email.message.EmailMessage]:
    """Every message the worker process sent (Django's file backend: one file per connection)."""
    separator = b"\n" + b"-" * 79 + b"\n"
    messages = []
    for path in sorted(worker.mail_dir.glob("*.log")) if worker.mail_dir.exists() else []:
        for chunk in path.read_bytes().split(separator):
            if chunk.strip():
                messages.append(email.message_from_bytes(chunk, policy=email.policy.default))
    return messages


def xero_status_json() -> tuple[int, list[dict]]:
    """`manage.py xero_status --json` in its own process, as a monitoring system runs it."""
    done = subprocess.run(
        [sys.executable, "manage.py", "xero_status", "--json"],
        cwd=ROOT,
        env={**os.environ, "DATABASE_URL": _database_url()},
        capture_output=True,
        text=True,
        timeout=60,
    )
    return done.returncode, json.loads(done.stdout)


@pytest.mark.worker
def test_demo_path_wrong_secret_one_alert_from_the_worker_and_status_exits_non_zero(
    worker, xero, admin_client, alert_settings, organisation
):
    xero.add_organisation(CLIENT_ID, CLIENT_SECRET)
    make_funder(organisation, "Kim Lee")
    connection = make_connection(organisation, enabled=True)
    wait_until(lambda: XeroContactLink.objects.filter(state="synced").exists())
    change = reverse("admin:lookout_xero_xeroconnection_change", args=[connection.pk])
    form = {"client_id": CLIENT_ID, "scope": connection.scope, "enabled": "on"}

    # The demo: type a wrong Client Secret, save, press "Sync now (full)".
    assert admin_client.post(change, {**form, "client_secret": WRONG_SECRET}).status_code == 302
    sync_now = reverse("admin:lookout_xero_xeroconnection_sync_now", args=[connection.pk])
    assert admin_client.post(sync_now).status_code == 302
    wait_until(lambda: XeroConnection.objects.get().state == "error")
    [alert] = wait_until(lambda: worker_mail(worker), timeout=30)
    assert (
        alert["Subject"] == "Xero sync needs attention: Harbour Trust: Xero refused the connection"
    )
    # docs/operations.md quotes this e-mail to a newcomer trying the demo.
    assert alert["Subject"] in " ".join((ROOT / "docs" / "operations.md").read_text().split())
    assert "http://127.0.0.1:8000/admin/lookout_xero/xeroconnection/" in alert.get_content()
    assert alerts.check_alerts()["sent"] == 0  # this process finds it already told
    code, rows = xero_status_json()
    assert code == 1
    assert [(r["organisation"], r["state"], r["needs_attention"]) for r in rows] == [
        ("Harbour Trust", "error", True)
    ]

    assert admin_client.post(change, {**form, "client_secret": CLIENT_SECRET}).status_code == 302
    wait_until(lambda: len(worker_mail(worker)) == 2, timeout=30)
    assert alerts.check_alerts()["sent"] == 0
    sent = worker_mail(worker)
    assert [m["Subject"].split(":")[0] for m in sent] == ["Xero sync needs attention", "Resolved"]
    assert mail.outbox == []  # nothing was sent twice, by either process
    everything = " ".join(m.as_string() for m in sent)
    assert WRONG_SECRET not in everything and CLIENT_SECRET not in everything
    code, rows = xero_status_json()
    assert code == 0 and rows[0]["state"] in ("healthy", "syncing")
