"""A connection whose secrets no key in FERNET_KEYS opens is an error, never a crash.

The situation after a deploy that dropped a key before `xero_rotate_keys` ran over every row:
that connection's stored values were encrypted with a key this process no longer has. Every
read path the team relies on to find out (the webhook endpoint, the alert check, `xero_status`,
the admin lists) must keep working for it and for every other organisation.

The lost key is simulated honestly: the stored bytes are re-encrypted, outside the ORM, with a
key that is not in FERNET_KEYS, exactly what the database holds after such a deploy.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from cryptography.fernet import Fernet
from django.conf import settings
from django.core import mail
from django.db import connection as db
from django.urls import reverse
from fernet_fields.hkdf import derive_fernet_key

from lookout_xero import alerts, services, tasks
from lookout_xero.fields import EncryptedCharField, EncryptedTextField
from lookout_xero.models import (
    OutboxEntry,
    SyncLog,
    SyncRun,
    XeroAlert,
    XeroConnection,
    XeroContactLink,
    XeroWebhookEvent,
)
from lookout_xero.webhook_views import signature_of
from project.funders.models import Organisation
from tests.conftest import ROOT, _database_url
from tests.helpers import CLIENT_SECRET, make_connection, make_funder

LOST_KEY = "the-key-a-deploy-dropped-too-early-0123"
WEBHOOK_KEY = "Vq3+lost-key/webhook-signing-key=="
TEAM = ["team@lookout.example"]
COLUMNS = ("client_id", "client_secret", "webhook_key", "access_token")


def lose_key(pk: int, columns: tuple[str, ...] = COLUMNS) -> None:
    """Re-encrypt stored values of a connection with a key FERNET_KEYS does not hold."""
    current = Fernet(derive_fernet_key(settings.FERNET_KEYS[0]))
    lost = Fernet(derive_fernet_key(LOST_KEY))
    with db.cursor() as cursor:
        cursor.execute(
            f"SELECT {', '.join(COLUMNS)} FROM lookout_xero_xeroconnection WHERE id = %s", [pk]
        )
        stored = cursor.fetchone()
        for column, value in zip(COLUMNS, stored, strict=True):
            if column not in columns:
                continue
            plain = current.decrypt(bytes(value))
            cursor.execute(
                f"UPDATE lookout_xero_xeroconnection SET {column} = %s WHERE id = %s",
                [db.Database.Binary(lost.encrypt(plain)), pk],
            )


def connection_for(name: str, *, enabled: bool = True, client_id: str | None = None):
    organisation = Organisation.objects.create(name=name)
    connection = make_connection(
        organisation, client_id=client_id or f"client-{name.lower()}", enabled=enabled
    )
    connection.webhook_key = WEBHOOK_KEY
    connection.save()
    return connection


@pytest.fixture
def alert_settings(settings):
    settings.LOOKOUT_XERO = {**settings.LOOKOUT_XERO, "ALERT_RECIPIENTS": TEAM}
    return settings


# --- the webhook endpoint ----------------------------------------------------------------------


@pytest.mark.django_db
def test_webhook_with_a_lost_key_answers_401_and_says_so_on_the_connection(client):
    lost = connection_for("Lost")
    fine = connection_for("Fine", enabled=False)
    # Its webhook key opens (set again after the deploy, say) but its secret does not: the
    # endpoint needs only the key, and leaves the secret to the worker.
    half = connection_for("Half")
    lose_key(lost.pk)
    lose_key(half.pk, columns=("client_id", "client_secret", "access_token"))
    body = json.dumps({"events": [], "firstEventSequence": 0, "lastEventSequence": 0}).encode()

    def deliver(connection):
        return client.post(
            connection.webhook_path,
            body,
            content_type="application/json",
            HTTP_X_XERO_SIGNATURE=signature_of(WEBHOOK_KEY, body),
        )

    assert deliver(lost).status_code == 401  # cannot open the key, so cannot check: not Xero's
    assert deliver(fine).status_code == 200  # the other organisations are not affected
    assert deliver(half).status_code == 200
    row = XeroConnection.objects.filter(pk=lost.pk).values("state", "error_code").get()
    assert row == {"state": "error", "error_code": "undecryptable"}
    assert not XeroWebhookEvent.objects.exists()


# --- the alert check -----------------------------------------------------------------------------


@pytest.mark.django_db
def test_check_alerts_after_the_worker_found_the_lost_key_alerts_every_organisation(
    alert_settings,
):
    lost = connection_for("Lost")
    other = connection_for("Other")
    lose_key(lost.pk)
    funder = make_funder(lost.organisation, "Ada Lovelace")
    OutboxEntry.objects.get_or_create(connection=lost, funder=funder)
    tasks.drain_outbox(lost.pk)  # the worker meets the lost key and records it
    XeroConnection.objects.filter(pk=other.pk).update(
        state=XeroConnection.State.ERROR, error_code="forbidden"
    )

    assert alerts.check_alerts() == {"opened": 2, "resolved": 0, "sent": 2}
    subjects = sorted(message.subject for message in mail.outbox)
    assert subjects == [
        "Xero sync needs attention: Lost: Xero refused the connection",
        "Xero sync needs attention: Other: Xero refused the connection",
    ]
    [lost_mail] = [m for m in mail.outbox if ": Lost:" in m.subject]
    assert "FERNET_KEYS cannot open" in lost_mail.body
    assert CLIENT_SECRET not in lost_mail.body and WEBHOOK_KEY not in lost_mail.body


@pytest.mark.django_db
def test_check_alerts_notices_a_lost_key_before_any_worker_does(alert_settings):
    # Nothing is queued for the organisation, so no worker would meet the key for days: the
    # periodic check is what tells the team, before a customer does.
    lost = connection_for("Lost")
    disabled = connection_for("Asleep", enabled=False)
    lose_key(lost.pk)
    lose_key(disabled.pk)

    assert alerts.check_alerts()["sent"] == 1
    [message] = mail.outbox
    assert message.subject == "Xero sync needs attention: Lost: Xero refused the connection"
    assert "FERNET_KEYS cannot open" in message.body
    states = dict(XeroConnection.objects.values_list("organisation__name", "error_code"))
    assert states == {"Lost": "undecryptable", "Asleep": "undecryptable"}
    assert alerts.check_alerts()["sent"] == 0  # one episode, one e-mail


def test_the_alert_check_defers_every_encrypted_field():
    # A field added later and forgotten here would be decrypted for every organisation.
    encrypted = {
        f.name
        for f in XeroConnection._meta.concrete_fields
        if isinstance(f, EncryptedCharField | EncryptedTextField)
    }
    assert set(alerts.SECRET_FIELDS) == encrypted == set(COLUMNS)


# --- xero_status, in its own process, as monitoring runs it --------------------------------------


def xero_status(*args) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "DATABASE_URL": _database_url(),
        "FERNET_KEYS": ",".join(settings.FERNET_KEYS),
    }
    return subprocess.run(
        [sys.executable, "manage.py", "xero_status", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_xero_status_reports_a_lost_key_instead_of_stopping_at_the_system_check(
    transactional_db, xero
):
    fine = connection_for("Fine", client_id="client-fine")
    xero.add_organisation("client-fine", CLIENT_SECRET, name="Fine Ltd")
    services.run_full_sync(fine.runs.get().pk)
    lost = connection_for("Lost")
    lose_key(lost.pk)  # nothing has met it yet: the row still says OK

    plain = xero_status()
    assert plain.returncode == 1, plain.stderr
    lines = plain.stdout.splitlines()
    assert [line.split(" | ")[:2] for line in lines] == [["Fine", "healthy"], ["Lost", "error"]]
    assert lines[1].endswith("NEEDS ATTENTION: error")
    assert "1 of 2 Xero connection(s) need attention." in plain.stderr

    as_json = xero_status("--json")
    assert as_json.returncode == 1, as_json.stderr
    rows = {row["organisation"]: row for row in json.loads(as_json.stdout)}
    assert rows["Fine"]["state"] == "healthy" and not rows["Fine"]["needs_attention"]
    assert rows["Lost"]["state"] == "error" and rows["Lost"]["needs_attention"]
    assert rows["Lost"]["attention"] == ["error"]
    assert rows["Lost"]["reason"].startswith("FERNET_KEYS cannot open")
    assert "Client Secret" in rows["Lost"]["reason"]
    assert CLIENT_SECRET not in as_json.stdout + as_json.stderr + plain.stdout + plain.stderr


def test_xero_status_keeps_the_reason_once_the_worker_recorded_it(transactional_db):
    lost = connection_for("Lost")
    lose_key(lost.pk)
    tasks.drain_outbox(lost.pk)
    [row] = json.loads(xero_status("--json").stdout)
    assert (row["state"], row["needs_attention"]) == ("error", True)
    assert row["reason"].startswith("FERNET_KEYS cannot open")


# --- the admin lists ----------------------------------------------------------------------------


@pytest.mark.django_db
def test_admin_lists_open_and_show_the_reason(admin_client, alert_settings):
    lost = connection_for("Lost")
    funder = make_funder(lost.organisation, "Ada Lovelace")
    run = SyncRun.objects.get(connection=lost)
    SyncLog.objects.create(connection=lost, run=run, outcome="run", message="Logged")
    XeroContactLink.objects.create(connection=lost, funder=funder, xero_contact_id="c-1")
    lose_key(lost.pk)
    alerts.check_alerts()

    for name in ("xeroconnection", "synclog", "xerocontactlink", "syncrun", "xeroalert"):
        response = admin_client.get(reverse(f"admin:lookout_xero_{name}_changelist"))
        assert response.status_code == 200, name
        assert "Lost" in response.content.decode(), name
    listing = admin_client.get(reverse("admin:lookout_xero_xeroconnection_changelist"))
    assert "FERNET_KEYS cannot open" in listing.content.decode()
    assert XeroAlert.objects.filter(connection=lost, kind="error").exists()


@pytest.mark.django_db
def test_the_connection_page_the_alert_links_to_says_what_is_wrong(admin_client):
    lost = connection_for("Lost")
    lose_key(lost.pk)
    page = reverse("admin:lookout_xero_xeroconnection_change", args=[lost.pk])

    response = admin_client.get(page, follow=True)
    assert response.redirect_chain == [
        (reverse("admin:lookout_xero_xeroconnection_changelist"), 302)
    ]
    text = response.content.decode()
    assert "cannot be decrypted with any key in FERNET_KEYS" in text
    assert "FERNET_KEYS cannot open" in text  # the row's reason, beside its name
    assert WEBHOOK_KEY not in text and CLIENT_SECRET not in text
