"""The Contact schema the tests validate every request body against: a committed fixture."""

from __future__ import annotations

import re

from tests.schema import FIXTURE, contact_errors, contact_fixture

GOOD_CONTACT = {
    "ContactNumber": "LKT-1",
    "ContactStatus": "ACTIVE",
    "Name": "Kauri Arts Trust",
    "FirstName": "Mere",
    "LastName": "Ngata",
    "EmailAddress": "mere@example.org",
    "Phones": [{"PhoneType": "MOBILE", "PhoneNumber": "021 555 0101"}],
    "Addresses": [{"AddressType": "STREET", "AddressLine1": "1 Wharf St", "City": "Nelson"}],
}


def test_a_good_contact_is_valid():
    assert contact_errors(GOOD_CONTACT) == []


def test_an_unknown_key_is_rejected():
    errors = contact_errors({**GOOD_CONTACT, "EmailAdress": "mere@example.org"})
    assert len(errors) == 1
    assert "EmailAdress" in errors[0]


def test_an_unknown_key_in_a_phone_is_rejected():
    phones = [{"PhoneType": "MOBILE", "PhoneNumber": "021", "Extension": "4"}]
    errors = contact_errors({**GOOD_CONTACT, "Phones": phones})
    assert len(errors) == 1
    assert errors[0].startswith("Phones/0") and "Extension" in errors[0]


def test_a_read_only_key_is_rejected():
    errors = contact_errors({**GOOD_CONTACT, "Website": "https://kauri.example.org"})
    assert errors == ["Website: read-only in Xero's API"]


def test_a_wrong_value_is_rejected():
    errors = contact_errors({**GOOD_CONTACT, "ContactStatus": "DELETED"})
    assert len(errors) == 1 and errors[0].startswith("ContactStatus:")


def test_the_fixture_says_where_it_came_from():
    source = contact_fixture()["source"]
    assert source["file"] == "xero_accounting.yaml"
    assert re.fullmatch(r"\d+\.\d+\.\d+", source["info_version"])
    assert re.fullmatch(r"[0-9a-f]{64}", source["sha256"])
    assert source["licence"].startswith("MIT License")
    assert FIXTURE.is_relative_to(FIXTURE.parents[2])  # inside the repository


def test_every_reference_in_the_fixture_resolves_inside_it():
    fixture = contact_fixture()
    refs = re.findall(r'"\$ref": "#/components/schemas/([^"]+)"', FIXTURE.read_text())
    assert refs
    assert set(refs) <= set(fixture["schemas"])
    assert fixture["root"] == "Contact" and "Contact" in fixture["schemas"]
