"""Project-level guards: migrations in step with models, system checks, the demo seed."""

import pytest
from django.core.management import call_command
from django.test import override_settings

from lookout_xero.checks import check_settings, check_xero_limits
from project.funders.models import Funder


@pytest.mark.django_db
def test_migrations_match_the_models():
    call_command("makemigrations", "--check", "--dry-run", verbosity=0)


def test_checks_pass_on_the_demo_settings():
    assert check_settings() == []
    assert check_xero_limits() == []


@pytest.mark.parametrize(
    ("page_size", "batch_size", "ids"),
    [
        (1000, 77, []),
        (1001, 50, ["lookout_xero.E009"]),
        (0, 50, ["lookout_xero.E009"]),
        (100, 78, ["lookout_xero.E010"]),
        (5000, 100, ["lookout_xero.E009", "lookout_xero.E010"]),
    ],
)
def test_checks_refuse_sizes_xero_would_not_accept(settings, page_size, batch_size, ids):
    """Xero answers at most 1,000 contacts a page and takes at most 3.5 MB a request: 78 of the
    largest contacts the sync can send (every limited field full, escaped) would not fit."""
    settings.LOOKOUT_XERO = {
        **settings.LOOKOUT_XERO,
        "PAGE_SIZE": page_size,
        "BATCH_SIZE": batch_size,
    }
    assert sorted(message.id for message in check_xero_limits()) == ids


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
