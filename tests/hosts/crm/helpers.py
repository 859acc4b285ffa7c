"""Small helpers for the second host's tests."""

from __future__ import annotations

from lookout_xero.models import XeroConnection

from .models import Member

CLIENT_ID = "client-kauri-rowing"
CLIENT_SECRET = "s3cret-kauri-DO-NOT-LEAK"


def make_member(club, display_name, **fields) -> Member:
    return Member.objects.create(club=club, display_name=display_name, **fields)


def make_connection(club, *, client_id=CLIENT_ID, secret=CLIENT_SECRET, enabled=False):
    return XeroConnection.objects.create(
        organisation=club,
        client_id=client_id,
        client_secret=secret,
        scope="accounting.contacts",
        enabled=enabled,
    )
