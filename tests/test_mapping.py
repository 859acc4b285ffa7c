"""Mapping: funder → Xero Contact, Xero's limits, and the schema of what is sent."""

from types import SimpleNamespace

import pytest

from lookout_xero import mapping
from tests.schema import contact_errors

FIELDS = dict(
    name="Aroha Parata",
    first_name="Aroha",
    last_name="Parata",
    email="aroha@example.org",
    phone="04 555 0101",
    mobile="021 555 0101",
    website="https://example.org",
    tax_number="123-456-789",
    address_line1="1 Harbour Street",
    address_line2="",
    city="Wellington",
    region="",
    postal_code="6011",
    country="New Zealand",
)


def funder(**overrides):
    return SimpleNamespace(pk=42, **{**FIELDS, **overrides})


def clean(f):
    return mapping.clean_contact(mapping.map_funder(f), number=mapping.contact_number("LKT-", f.pk))


def test_full_profile_maps_to_a_schema_valid_contact_without_read_only_website():
    result = clean(funder())
    sent = mapping.with_identity(result.payload, contact_id="8a4c1c3e-0000-4000-8000-000000000001")
    assert contact_errors(sent) == []
    assert "Website" not in sent
    assert sent["ContactNumber"] == "LKT-42"
    assert sent["Phones"] == [
        {"PhoneType": "DEFAULT", "PhoneNumber": "04 555 0101"},
        {"PhoneType": "MOBILE", "PhoneNumber": "021 555 0101"},
    ]
    assert sent["Addresses"][0]["AddressType"] == "STREET"
    assert result.warnings == []


def test_cleared_fields_are_sent_empty_so_xero_clears_them():
    payload = clean(funder(phone="", city="", tax_number="")).payload
    assert payload["TaxNumber"] == ""
    assert payload["Phones"][0]["PhoneNumber"] == ""
    assert payload["Addresses"][0]["City"] == ""


def test_too_long_values_are_cut_to_xero_limits_with_a_warning():
    result = clean(funder(name="N" * 300, postal_code="9" * 60, phone="5" * 80))
    assert len(result.payload["Name"]) == 255
    assert len(result.payload["Addresses"][0]["PostalCode"]) == 50
    assert len(result.payload["Phones"][0]["PhoneNumber"]) == 50
    assert len(result.warnings) == 3 and "255" in result.warnings[0]
    assert contact_errors(mapping.with_identity(result.payload)) == []


@pytest.mark.parametrize("email", ["not-an-email", "jürgen@example.de", "a@b"])
def test_invalid_email_is_dropped_with_a_warning_not_cleared(email):
    result = clean(funder(email=email))
    assert "EmailAddress" not in result.payload
    assert "not valid" in result.warnings[0]
    assert not result.error


def test_missing_name_falls_back_to_person_then_is_an_error():
    assert clean(funder(name="  ")).payload["Name"] == "Aroha Parata"
    result = clean(funder(name="", first_name="", last_name=""))
    assert result.error == "The funder has no name, and Xero requires one."


def test_contact_number_is_stable_and_bounded():
    assert mapping.contact_number("LKT-", 7) == mapping.contact_number("LKT-", 7) == "LKT-7"
    with pytest.raises(ValueError):
        mapping.contact_number("P" * 49, 123)


def test_payload_hash_ignores_key_order_and_contact_id_but_not_values():
    a = {"Name": "A", "EmailAddress": "a@x.org"}
    assert mapping.payload_hash(a) == mapping.payload_hash({"EmailAddress": "a@x.org", "Name": "A"})
    assert mapping.payload_hash(a) == mapping.payload_hash({**a, "ContactID": "x"})
    assert mapping.payload_hash(a) != mapping.payload_hash({**a, "Name": "B"})


def test_fill_not_blank_sends_what_lookout_has_and_clears_only_what_it_set():
    payload = clean(funder(phone="", mobile="", tax_number="")).payload
    first = mapping.fill_not_blank(payload, previously_filled=[])
    assert "TaxNumber" not in first and "Phones" not in first
    assert first["Addresses"] == [
        {
            "AddressType": "STREET",
            "AddressLine1": "1 Harbour Street",
            "City": "Wellington",
            "PostalCode": "6011",
            "Country": "New Zealand",
        }
    ]
    filled = mapping.filled_fields(first)
    assert "Addresses.STREET.City" in filled and "TaxNumber" not in filled
    later = mapping.fill_not_blank(clean(funder(city="", tax_number="")).payload, filled)
    assert later["Addresses"][0]["City"] == ""  # Lookout set it, Lookout cleared it
    assert "TaxNumber" not in later  # never Lookout's: left alone
    assert contact_errors(mapping.with_identity(later)) == []


def test_archive_payload_is_schema_valid():
    body = mapping.archive_payload("8a4c1c3e-0000-4000-8000-000000000001")
    assert body["ContactStatus"] == "ARCHIVED"
    assert contact_errors(body) == []


def test_a_custom_mapping_still_gets_limits_and_loses_read_only_fields():
    raw = {
        "Name": "X" * 400,
        "Website": "https://x.org",
        "IsCustomer": True,
        "AccountNumber": "A" * 60,
    }
    result = mapping.clean_contact(raw, number="LKT-1")
    assert set(result.payload) == {"Name", "AccountNumber", "ContactNumber"}
    assert len(result.payload["AccountNumber"]) == 50
