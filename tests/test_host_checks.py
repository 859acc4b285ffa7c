"""`manage.py check` names each setting that names a host model or field wrongly.

As Django does for a wrong AUTH_USER_MODEL: the mistake shows when the host runs `check`, not as
a FieldError on the first sync or the first admin list sorted by organisation.
"""

from __future__ import annotations

import types

import pytest
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.test import override_settings

from lookout_xero import checks as lookout_checks
from lookout_xero.checks import DEFAULT_MAPPING_FIELDS, check_host_fields
from lookout_xero.mapping import map_funder, unmap_funder
from project.settings import LOOKOUT_XERO as DEMO

pytestmark = pytest.mark.django_db  # `check` also reads a sample of stored credentials


def lookout_xero(**changes):
    return override_settings(LOOKOUT_XERO={**DEMO, **changes})


def messages(id: str) -> list[str]:
    return [message.msg for message in check_host_fields() if message.id == id]


def test_the_demo_names_pass():
    assert check_host_fields() == []
    call_command("check", fail_level="ERROR", verbosity=0)


@pytest.mark.parametrize(
    ("key", "value", "id"),
    [
        ("ORGANISATION_FIELD", "club", "lookout_xero.E020"),
        ("ORGANISATION_FIELD", "name", "lookout_xero.E020"),  # a field, not a ForeignKey
        ("ORGANISATION_NAME_FIELD", "title", "lookout_xero.E021"),
        ("ORGANISATION_NAME_FIELD", "name__first", "lookout_xero.E021"),
        ("MEMBERSHIP_FIELD", "kind", "lookout_xero.E022"),
        ("MEMBERSHIP_VALUE", "member", "lookout_xero.E023"),  # not one of funder_type's choices
        ("ARCHIVED_FIELD", "is_archived", "lookout_xero.E024"),
        ("ARCHIVED_FIELD", "name", "lookout_xero.E024"),  # not a BooleanField
        ("MAPPING", "lookout_xero.conf.DEFAULTS", "lookout_xero.E025"),  # not callable
        ("REVERSE_MAPPING", "lookout_xero.conf.DEFAULTS", "lookout_xero.E027"),  # not callable
    ],
)
def test_check_fails_naming_the_setting(key, value, id):
    with lookout_xero(**{key: value}):
        assert [f"LOOKOUT_XERO[{key!r}] = {value!r}" in m for m in messages(id)] == [True]
        with pytest.raises(SystemCheckError, match=rf"{id}.*LOOKOUT_XERO\['{key}'\]"):
            call_command("check", verbosity=0)


def test_organisation_name_may_follow_a_relation():
    # The organisation's name through one of its relations is a lookup the admin can sort by.
    with lookout_xero(ORGANISATION_NAME_FIELD="funders__name"):
        assert check_host_fields() == []


@override_settings(LOOKOUT_XERO_ORGANISATION_MODEL="funders.Funder")
def test_organisation_field_must_point_at_the_organisation_model():
    # funders.Funder.organisation is a ForeignKey, but to another model than the one named.
    assert messages("lookout_xero.E020") == [
        "LOOKOUT_XERO['ORGANISATION_FIELD'] = 'organisation': funders.Funder.organisation is "
        "not a ForeignKey to LOOKOUT_XERO_ORGANISATION_MODEL (funders.Funder)."
    ]


@override_settings(LOOKOUT_XERO_FUNDER_MODEL="crm.Nope")
def test_an_unknown_model_is_reported_once_by_the_model_check():
    assert check_host_fields() == []
    with pytest.raises(SystemCheckError, match=r"E001.*LOOKOUT_XERO_FUNDER_MODEL"):
        call_command("check", verbosity=0)


@override_settings(
    LOOKOUT_XERO_FUNDER_MODEL="auth.User", LOOKOUT_XERO_ORGANISATION_MODEL="auth.Group"
)
def test_the_default_mapping_on_a_model_without_its_fields():
    with lookout_xero(
        ORGANISATION_FIELD="groups",
        MEMBERSHIP_FIELD="is_staff",
        MEMBERSHIP_VALUE=True,
        ARCHIVED_FIELD="is_active",
        ORGANISATION_NAME_FIELD="name",
    ):
        ids = sorted(message.id for message in check_host_fields())
        # groups is a ManyToMany, not a ForeignKey; User has first_name, last_name and email only.
        assert ids == ["lookout_xero.E020", "lookout_xero.E026", "lookout_xero.W028"]
        [mapping] = messages("lookout_xero.E026")
        assert "(name, tax_number, phone, mobile," in mapping and "first_name" not in mapping


def test_default_mapping_fields_are_what_the_default_mapping_reads():
    read = []

    class Recorder(types.SimpleNamespace):
        def __getattr__(self, name):
            read.append(name)
            return ""

    map_funder(Recorder())
    assert sorted(set(read)) == sorted(DEFAULT_MAPPING_FIELDS)
    assert lookout_checks.conf.DEFAULTS["MAPPING"] == "lookout_xero.mapping.map_funder"


def test_default_reverse_mapping_writes_the_fields_the_default_mapping_reads():
    contact = {
        "Name": "N",
        "FirstName": "F",
        "LastName": "L",
        "EmailAddress": "e@example.org",
        "TaxNumber": "T",
        "Phones": [
            {"PhoneType": "DEFAULT", "PhoneNumber": "1"},
            {"PhoneType": "MOBILE", "PhoneNumber": "2"},
        ],
        "Addresses": [
            {
                "AddressType": "STREET",
                **{key: key for key in ("AddressLine1", "AddressLine2", "City", "Region")},
                **{key: key for key in ("PostalCode", "Country")},
            }
        ],
    }
    assert sorted(unmap_funder(contact, None)) == sorted(DEFAULT_MAPPING_FIELDS)
    assert lookout_checks.conf.DEFAULTS["REVERSE_MAPPING"] == "lookout_xero.mapping.unmap_funder"


def test_a_reverse_mapping_that_cannot_be_imported_is_named():
    with lookout_xero(REVERSE_MAPPING="tests.nowhere.unmap"):
        with pytest.raises(SystemCheckError, match=r"E027.*LOOKOUT_XERO\['REVERSE_MAPPING'\]"):
            call_command("check", verbosity=0)
