"""Fixtures of the second host. Run with its settings: --ds=tests.hosts.crm.settings."""

from __future__ import annotations

import pytest

from lookout_xero import services

from .helpers import CLIENT_ID, CLIENT_SECRET, make_connection
from .models import Club


@pytest.fixture
def club(db):
    return Club.objects.create(title="Kauri Rowing Club")


@pytest.fixture
def org(xero):
    """The club's Xero organisation, on the fake Xero."""
    return xero.add_organisation(CLIENT_ID, CLIENT_SECRET, name="Kauri Rowing Club Inc")


@pytest.fixture
def connection(club, org):
    """An enabled connection whose (empty) full sync has already run, in-process."""
    connection = make_connection(club, enabled=True)
    services.run_full_sync(connection.runs.get().pk)
    return connection
