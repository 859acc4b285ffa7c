"""What differs between the supported Django releases (5.2, 6.0, 6.1) is handled in public API.

These run on each release (noxfile.py); a deprecation a newer release announces for something
lookout_xero does is a failure here, not a warning nobody reads.
"""

from __future__ import annotations

import warnings

import pytest
from django.urls import reverse

pytestmark = pytest.mark.django_db


def deprecations(record) -> list[str]:
    # Django's own deprecation warnings are named RemovedInDjango<version>Warning.
    return [
        f"{w.filename}:{w.lineno}: {w.message}"
        for w in record
        if w.category.__name__.startswith("RemovedIn") and "lookout_xero" in w.filename
    ]


def test_admin_actions_raise_no_deprecation_warning(admin_client):
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        funders = admin_client.get(reverse("admin:funders_funder_changelist"))
        log = admin_client.get(reverse("admin:lookout_xero_synclog_changelist"))
    assert deprecations(record) == []
    # The actions themselves are unchanged on every release.
    actions = funders.context["action_form"].fields["action"].choices
    assert "push_to_xero" in dict(actions)
    assert "delete_selected" in dict(actions)
    assert log.context["action_form"] is None  # the log has no action, not even delete
