"""Project-level guards: migrations in step with models, system checks, the demo seed."""

import pytest
from django.core.management import call_command
from django.test import override_settings

from lookout_xero.checks import check_settings
from project.funders.models import Funder


@pytest.mark.django_db
def test_migrations_match_the_models():
    call_command("makemigrations", "--check", "--dry-run", verbosity=0)


def test_checks_pass_on_the_demo_settings():
    assert check_settings() == []


@override_settings(
    LOOKOUT_XERO_FUNDER_MODEL="crm.Nope",
    LOOKOUT_XERO={
        "API_URL": "http://xero.example.com",
        "BATCH_SIZE": 500,
        "LEASE_SECONDS": 20,
        "ENABLED_CACHE_SECONDS": -1,
        "TYPO": 1,
    },
)
def test_checks_name_each_bad_setting():
    ids = sorted(message.id for message in check_settings())
    assert ids == [
        "lookout_xero.E001",
        "lookout_xero.E002",
        "lookout_xero.E003",
        "lookout_xero.E005",
        "lookout_xero.E007",
        "lookout_xero.E008",
    ]


@pytest.mark.django_db
def test_demo_seed_has_mixed_funders_and_is_idempotent():
    call_command("seed_demo", verbosity=0)
    call_command("seed_demo", verbosity=0)
    funders = Funder.objects.all()
    assert 45 <= funders.count() <= 60
    assert {"membership", "grant"} <= set(funders.values_list("funder_type", flat=True))
    assert funders.filter(archived=True, funder_type="membership").exists()
