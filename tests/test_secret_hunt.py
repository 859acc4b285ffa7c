"""A distinctive secret typed into the customer's form is found nowhere but encrypted.

Searched: every column of every table (raw SQL, bytes included), the decoded sessions, every
log record of every logger at DEBUG, what reached stdout and stderr, the arguments and headers
of every task published, and every page and JSON answer served, to the customer and to staff.
"""

from __future__ import annotations

import logging

import pytest
from celery.signals import before_task_publish
from django.contrib.sessions.models import Session
from django.db import connection as db
from django.urls import reverse

from lookout_xero import credentials
from lookout_xero.models import XeroConnection
from tests.helpers import CLIENT_ID
from tests.test_credentials import HttpsClient

SECRET = "Zq7-DISTINCTIVE-customer-secret-4711"
WRONG = "Wr0ng-DISTINCTIVE-typo-secret-0042"
WEBHOOK_KEY = "Wk9-DISTINCTIVE-webhook-key-0815"
TYPED = (SECRET, WRONG, WEBHOOK_KEY)


def every_stored_value():
    """(table.column, value) for every column of every table, read with raw SQL."""
    with db.cursor() as cursor:
        for table in db.introspection.table_names(cursor):
            cursor.execute(f"SELECT * FROM {db.ops.quote_name(table)}")
            names = [column[0] for column in cursor.description]
            for row in cursor.fetchall():
                yield from ((f"{table}.{n}", v) for n, v in zip(names, row, strict=True))


def contains(value, needle: str) -> bool:
    if isinstance(value, memoryview | bytes | bytearray):
        return needle.encode() in bytes(value)
    return needle in str(value)


@pytest.fixture
def published():
    """The body and headers of every Celery task published during the test."""
    seen = []

    def keep(body=None, headers=None, **kwargs):
        seen.append(repr(body) + repr(headers))

    before_task_publish.connect(keep, weak=False)
    yield seen
    before_task_publish.disconnect(keep)


@pytest.mark.django_db
def test_a_typed_secret_is_nowhere_but_encrypted(
    xero, organisation, admin_client, caplog, capfd, published, django_capture_on_commit_callbacks
):
    caplog.set_level(logging.DEBUG)
    xero.add_organisation(CLIENT_ID, SECRET, name="Harbour Trust Ltd")
    customer = HttpsClient()
    pages: dict[str, str] = {}

    def keep(label, response):
        pages[label] = response.content.decode() + repr(dict(response.headers))

    # The customer: opens the link, mistypes, then gets it right.
    _, path = credentials.create_link(organisation)
    keep("customer form", customer.get(path))
    form = {"client_id": CLIENT_ID, "webhook_key": WEBHOOK_KEY}
    keep("customer refused", customer.post(path, {**form, "client_secret": WRONG}))
    keep("customer accepted", customer.post(path, {**form, "client_secret": SECRET}))
    keep("customer dead link", customer.get(path))

    # Staff: every page about the connection, Test connection, enabling (which queues a task).
    connection = XeroConnection.objects.get()
    change = reverse("admin:lookout_xero_xeroconnection_change", args=[connection.pk])
    for label, url in {
        "connection list": reverse("admin:lookout_xero_xeroconnection_changelist"),
        "connection page": change,
        "history": reverse("admin:lookout_xero_xeroconnection_history", args=[connection.pk]),
        "status json": reverse("admin:lookout_xero_xeroconnection_status", args=[connection.pk]),
        "sync log": reverse("admin:lookout_xero_synclog_changelist"),
        "admin log": reverse("admin:index"),
    }.items():
        response = admin_client.get(url)
        assert response.status_code == 200, label
        keep(label, response)
    keep(
        "test connection",
        admin_client.post(
            reverse("admin:lookout_xero_xeroconnection_test_connection"),
            {"client_id": CLIENT_ID, "client_secret": "", "scope": "", "connection": connection.pk},
        ),
    )
    assert "Harbour Trust Ltd" in pages["test connection"]
    with django_capture_on_commit_callbacks(execute=True):
        enabled = admin_client.post(
            change,
            {"client_id": CLIENT_ID, "client_secret": "", "scope": "", "enabled": "on"},
            follow=True,
        )
    keep("after enabling", enabled)
    assert published, "enabling should have queued a task"

    # What is stored is the secret, encrypted: the app reads it back.
    connection = XeroConnection.objects.get()
    assert (connection.client_secret, connection.webhook_key) == (SECRET, WEBHOOK_KEY)

    sessions = [repr(s.get_decoded()) for s in Session.objects.all()]
    output = capfd.readouterr()
    logs = [f"{r.name} {r.getMessage()} {r.args!r}" for r in caplog.records]
    places = {
        **{f"page: {label}": body for label, body in pages.items()},
        **{f"log: {i}": line for i, line in enumerate(logs)},
        "stdout": output.out,
        "stderr": output.err,
        **{f"task {i}": message for i, message in enumerate(published)},
        **{f"session {i}": data for i, data in enumerate(sessions)},
    }
    assert len(logs) > 5  # the logs were captured (token fetches, requests...)
    for secret in TYPED:
        found = [place for place, text in places.items() if secret in text]
        found += [place for place, value in every_stored_value() if contains(value, secret)]
        assert not found, (secret, found)
