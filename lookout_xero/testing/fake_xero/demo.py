"""What the demo's Xero already holds before Lookout first connects (``--seed-demo``).

It matches ``manage.py seed_demo``: two contacts that the funders *Existing Member 1* and *2*
are linked to by e-mail (and renamed to, by the first sync), one that no funder matches, and
two contacts that share the e-mail of the funder *Kowhai Music Trust*, so the first sync makes
a conflict for a person to resolve.
"""

from __future__ import annotations

from .org import FakeOrg

CONFLICT_EMAIL = "accounts@kowhai.example.org"


def seed_demo_contacts(org: FakeOrg) -> None:
    for number in (1, 2, 3):
        org.add_contact(
            Name=f"Existing Contact {number}",
            EmailAddress=f"existing{number}@example.org",
            ContactNumber=f"EXISTING-{number:04d}",
        )
    for name in ("Kowhai Music Trust", "Kowhai Music Trust (accounts)"):
        org.add_contact(Name=name, EmailAddress=CONFLICT_EMAIL)
