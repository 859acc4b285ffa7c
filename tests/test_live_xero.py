"""Against the real Xero API: opt-in, for checking the fake's assumptions on a Demo Company.

Run with LOOKOUT_XERO_LIVE=1, XERO_LIVE_CLIENT_ID, XERO_LIVE_CLIENT_SECRET (and XERO_LIVE_SCOPE,
which may be empty) from a custom connection to Xero's Demo Company. Writes only with
LOOKOUT_XERO_LIVE_WRITE=1, and then only one uniquely named contact, which it archives.
"""

import os
import uuid

import pytest

from lookout_xero import mapping
from lookout_xero.client import Credentials, XeroClient
from lookout_xero.exceptions import XeroAuthError
from lookout_xero.services import check_credentials

pytestmark = [
    pytest.mark.live_xero,
    pytest.mark.skipif(
        os.environ.get("LOOKOUT_XERO_LIVE") != "1", reason="LOOKOUT_XERO_LIVE=1 not set"
    ),
]


@pytest.fixture
def credentials():
    return Credentials(
        os.environ["XERO_LIVE_CLIENT_ID"],
        os.environ["XERO_LIVE_CLIENT_SECRET"],
        os.environ.get("XERO_LIVE_SCOPE", "accounting.contacts"),
    )


def test_credentials_reach_one_organisation(credentials):
    check = check_credentials(credentials.client_id, credentials.client_secret, credentials.scope)
    assert check.ok, check.message
    assert check.tenant_name


def test_wrong_secret_is_invalid_client(credentials):
    client = XeroClient(Credentials(credentials.client_id, "wrong-" + uuid.uuid4().hex))
    with pytest.raises(XeroAuthError) as caught:
        client.fetch_token()
    assert caught.value.code == "invalid_client"


def test_contacts_can_be_read_with_rate_limit_headers(credentials):
    client = XeroClient(credentials)
    client.list_contacts(page=1, page_size=10)
    assert client.limits.minute_remaining is not None and client.limits.day_remaining is not None


@pytest.mark.skipif(
    os.environ.get("LOOKOUT_XERO_LIVE_WRITE") != "1", reason="writes need LOOKOUT_XERO_LIVE_WRITE=1"
)
def test_create_then_archive_one_contact(credentials):
    client = XeroClient(credentials)
    name = f"lookout-xero live test {uuid.uuid4().hex[:8]}"
    clean = mapping.clean_contact({"Name": name}, number=f"LKT-LIVE-{uuid.uuid4().hex[:8]}")
    created = client.save_contacts(
        [mapping.with_identity(clean.payload)], idempotency_key=uuid.uuid4().hex
    )
    assert created[0].ok, created[0].messages
    archived = client.save_contacts(
        [mapping.archive_payload(created[0].contact_id)], idempotency_key=uuid.uuid4().hex
    )
    assert archived[0].ok and archived[0].status == "ARCHIVED"
