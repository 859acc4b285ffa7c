"""FERNET_KEYS rotation, and what a key that cannot decrypt does: real processes, real keys.

Each `manage.py` runs in its own process with its own FERNET_KEYS, as after a deploy; the test
process keeps the project's default key throughout.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from cryptography.fernet import Fernet, InvalidToken
from django.conf import settings
from django.db import connection as db
from django.urls import reverse
from fernet_fields.hkdf import derive_fernet_key

from lookout_xero import checks, tasks
from lookout_xero.fields import UndecryptableError
from lookout_xero.models import (
    OutboxEntry,
    SyncLog,
    SyncRun,
    XeroAlert,
    XeroConnection,
    XeroContactLink,
)
from tests.conftest import ROOT, _database_url
from tests.helpers import CLIENT_ID, CLIENT_SECRET, make_connection, make_funder, wait_until

NEW_KEY = "new-key-for-rotation-test-0123456789"
STRANGER_KEY = "a-key-that-never-encrypted-anything"
COLUMNS = ("client_id", "client_secret", "webhook_key", "access_token")


def old_key() -> str:
    return settings.FERNET_KEYS[0]


def manage(*args, keys: list[str], xero=None) -> subprocess.CompletedProcess:
    env = {**os.environ, "DATABASE_URL": _database_url(), "FERNET_KEYS": ",".join(keys)}
    if xero is not None:
        env.update(XERO_TOKEN_URL=xero.token_url, XERO_API_URL=xero.api_url)
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def stored(pk: int) -> dict[str, bytes]:
    with db.cursor() as cursor:
        cursor.execute(
            f"SELECT {', '.join(COLUMNS)} FROM lookout_xero_xeroconnection WHERE id = %s", [pk]
        )
        return {name: bytes(value) for name, value in zip(COLUMNS, cursor.fetchone(), strict=True)}


def opens(key: str, value: bytes) -> bool:
    try:
        Fernet(derive_fernet_key(key)).decrypt(value)
    except InvalidToken:
        return False
    return True


@pytest.fixture
def new_key_only(monkeypatch):
    """Processes started from now on (the worker) know only the new key."""
    monkeypatch.setenv("FERNET_KEYS", NEW_KEY)


@pytest.mark.worker
def test_rotate_then_drop_the_old_key_and_the_app_still_decrypts_and_syncs(
    transactional_db, xero, organisation, new_key_only, worker
):
    xero.add_organisation(CLIENT_ID, CLIENT_SECRET, name="Harbour Trust Ltd")
    connection = make_connection(organisation)
    XeroConnection.objects.filter(pk=connection.pk).update(
        webhook_key="webhook-key-abc", access_token="stale-token"
    )
    make_funder(organisation, "Ada Lovelace", email="ada@example.org")
    before = stored(connection.pk)
    assert all(opens(old_key(), value) for value in before.values())

    # 1. Deploy with the new key first and the old one after it; rotate; run again.
    rotated = manage("xero_rotate_keys", "--batch-size", "1", keys=[NEW_KEY, old_key()])
    assert rotated.returncode == 0, rotated.stderr
    assert "rewrote 1 row(s) (4 encrypted value(s))" in rotated.stdout
    after = stored(connection.pk)
    for column, value in after.items():
        assert opens(NEW_KEY, value) and not opens(old_key(), value), column
    again = manage("xero_rotate_keys", keys=[NEW_KEY, old_key()])
    assert "rewrote 0 row(s)" in again.stdout
    assert stored(connection.pk) == after  # idempotent: nothing rewritten

    # 2. Drop the old key: the check is clean, and a full sync (a worker that knows only the
    # new key) decrypts the credentials and reaches Xero.
    check = manage("check", keys=[NEW_KEY])
    assert check.returncode == 0, check.stderr
    enabled = manage("xero_sync", "--organisation", str(organisation.pk), "--full", keys=[NEW_KEY])
    assert enabled.returncode == 0, enabled.stderr
    org = xero.org(CLIENT_ID)
    wait_until(lambda: [c["Name"] for c in org.contacts.values()] == ["Ada Lovelace"], 60)

    # 3. A process with only the old key is told clearly, and does not pretend.
    old_only = manage("check", keys=[old_key()])
    assert old_only.returncode != 0
    assert "lookout_xero.E006" in old_only.stderr
    assert "cannot be decrypted with any key in FERNET_KEYS" in old_only.stderr


def test_a_key_that_opens_nothing_is_refused_and_nothing_is_re_encrypted(
    transactional_db, organisation
):
    connection = make_connection(organisation)
    before = stored(connection.pk)
    result = manage("xero_rotate_keys", keys=[STRANGER_KEY])
    assert result.returncode != 0
    assert "rewrote 0 row(s)" in result.stdout
    assert "cannot be decrypted with any key in FERNET_KEYS and were left as they are" in (
        result.stderr
    )
    assert f"lookout_xero.XeroConnection {connection.pk} client_secret" in result.stderr
    assert stored(connection.pk) == before
    assert CLIENT_SECRET not in result.stdout + result.stderr


def put_stranger_ciphertext(pk: int) -> None:
    garbage = Fernet(derive_fernet_key(STRANGER_KEY)).encrypt(b"someone else's secret")
    with db.cursor() as cursor:
        cursor.execute(
            "UPDATE lookout_xero_xeroconnection SET client_secret = %s WHERE id = %s",
            [db.Database.Binary(garbage), pk],
        )


@pytest.mark.django_db
def test_an_undecryptable_value_is_a_clear_error_never_ciphertext(organisation, admin_client):
    connection = make_connection(organisation, enabled=False)
    XeroConnection.objects.filter(pk=connection.pk).update(enabled=True)
    funder = make_funder(organisation, "Ada Lovelace")
    OutboxEntry.objects.get_or_create(connection=connection, funder=funder)
    put_stranger_ciphertext(connection.pk)

    with pytest.raises(UndecryptableError, match="Client Secret cannot be decrypted"):
        XeroConnection.objects.get(pk=connection.pk)
    [error] = checks.check_keys_open_stored_values()
    assert error.id == "lookout_xero.E006"
    assert f"XeroConnection {connection.pk} client_secret" in error.msg

    tasks.drain_outbox(connection.pk)  # the worker's path: it says so on the connection
    row = XeroConnection.objects.filter(pk=connection.pk).values("state", "error_code").get()
    assert row == {"state": "error", "error_code": "undecryptable"}
    listing = admin_client.get("/admin/lookout_xero/xeroconnection/").content.decode()
    assert "FERNET_KEYS cannot open the stored credentials" in listing


@pytest.mark.django_db
def test_the_teams_pages_still_open_when_a_key_opens_nothing(organisation, admin_client):
    # Those are the pages the team reads to find out what is wrong: they show no credential,
    # so they must not need one decrypted.
    connection = make_connection(organisation, enabled=False)
    funder = make_funder(organisation, "Ada Lovelace")
    run = SyncRun.objects.create(connection=connection)
    SyncLog.objects.create(connection=connection, run=run, outcome="run", message="Logged")
    XeroContactLink.objects.create(connection=connection, funder=funder, xero_contact_id="c-1")
    XeroAlert.objects.create(connection=connection, kind=XeroAlert.Kind.ERROR)
    put_stranger_ciphertext(connection.pk)

    pages = {
        name: reverse(f"admin:lookout_xero_{name}_changelist")
        for name in ("synclog", "syncrun", "xerocontactlink", "xeroalert", "xeroconnection")
    }
    pages["funder"] = reverse("admin:funders_funder_change", args=[funder.pk])
    for name, url in pages.items():
        response = admin_client.get(url)
        assert response.status_code == 200, name
        assert organisation.name in response.content.decode(), name
