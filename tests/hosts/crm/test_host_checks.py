"""The second host's names pass `check`; the demo's defaults left in place do not."""

from __future__ import annotations

import pytest
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.test import override_settings

from lookout_xero.checks import check_host_fields

from . import minimal_settings as host

pytestmark = pytest.mark.django_db  # `check` also reads a sample of stored credentials


def test_the_hosts_names_pass():
    assert check_host_fields() == []


def test_organisation_name_field_left_at_name_on_a_model_without_one():
    # Club has `title`: without ORGANISATION_NAME_FIELD the admin would sort four lists by
    # organisation with a FieldError. `check` says so first.
    names = {k: v for k, v in host.LOOKOUT_XERO.items() if k != "ORGANISATION_NAME_FIELD"}
    with override_settings(LOOKOUT_XERO=names):
        [error] = check_host_fields()
        assert error.id == "lookout_xero.E021"
        assert error.msg.startswith("LOOKOUT_XERO['ORGANISATION_NAME_FIELD'] = 'name': crm.Club")
        with pytest.raises(SystemCheckError, match="ORGANISATION_NAME_FIELD"):
            call_command("check", verbosity=0)


def test_every_demo_default_is_caught_on_this_host():
    # A host that sets none of the names gets the demo's, which its models do not have.
    named = {"ORGANISATION_FIELD", "ORGANISATION_NAME_FIELD", "MEMBERSHIP_FIELD", "ARCHIVED_FIELD"}
    mappings = {"MAPPING", "REVERSE_MAPPING"}
    names = {k: v for k, v in host.LOOKOUT_XERO.items() if k not in named | mappings}
    with override_settings(LOOKOUT_XERO=names):
        ids = sorted(message.id for message in check_host_fields())
    assert ids == [
        "lookout_xero.E020",
        "lookout_xero.E021",
        "lookout_xero.E022",
        "lookout_xero.E024",
        "lookout_xero.E026",
        "lookout_xero.W028",
    ]
