"""Seed the demo: one organisation with ~50 funders of mixed types and states, and an admin."""

import random

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand

from project.funders.models import Funder, Organisation

FIRST = [
    "Aroha",
    "Ben",
    "Chloe",
    "Dev",
    "Ema",
    "Finn",
    "Grace",
    "Hemi",
    "Isla",
    "Jack",
    "Kiri",
    "Liam",
]
LAST = ["Parata", "Smith", "Ngata", "Chen", "Walker", "Tane", "Brown", "Patel", "Wilson", "Reid"]
CITIES = [
    ("Wellington", "Wellington", "6011"),
    ("Auckland", "Auckland", "1010"),
    ("Otaki", "", "5512"),
]


class Command(BaseCommand):
    help = "Create the demo organisation, its funders and an admin login (idempotent)."

    def add_arguments(self, parser):
        parser.add_argument("--password", default="admin")

    def handle(self, *args, password: str, **options):
        User = get_user_model()
        if not User.objects.filter(username="admin").exists():
            User.objects.create_superuser("admin", "admin@example.org", password)
        if Organisation.objects.filter(name="Harbour Trust").exists():
            self.stdout.write("Demo data already there.")
            self._say_what_is_in_scope(Organisation.objects.get(name="Harbour Trust"))
            return
        org = Organisation.objects.create(name="Harbour Trust")
        Organisation.objects.create(name="Hillside Community Pool")
        rng = random.Random(7)  # noqa: S311 - demo data
        funders = []
        for i in range(48):
            first, last = FIRST[i % len(FIRST)], LAST[(i * 7) % len(LAST)]
            city, region, postcode = CITIES[i % len(CITIES)]
            funders.append(
                Funder(
                    organisation=org,
                    name=f"{first} {last}" if i % 4 else f"{last} Family Trust {i}",
                    funder_type=rng.choice(["membership"] * 3 + ["grant", "donor", "sponsor"]),
                    archived=i % 11 == 0,
                    first_name=first,
                    last_name=last,
                    email=f"{first.lower()}.{last.lower()}{i}@example.org",
                    phone=f"04 555 {1000 + i}",
                    mobile=f"021 555 {2000 + i}" if i % 3 else "",
                    address_line1=f"{i + 1} Harbour Street",
                    city=city,
                    region=region,
                    postal_code=postcode,
                    country="New Zealand",
                )
            )
        # Contacts the demo Xero already has (`--seed-contacts`): these get linked, not duplicated.
        for i in (1, 2):
            funders.append(
                Funder(
                    organisation=org,
                    name=f"Existing Member {i}",
                    funder_type="membership",
                    email=f"existing{i}@example.org",
                )
            )
        # Two contacts in the demo's Xero share this e-mail: the first sync makes a conflict.
        funders.append(
            Funder(
                organisation=org,
                name="Kowhai Music Trust",
                funder_type="membership",
                email="accounts@kowhai.example.org",
            )
        )
        # Data Xero would refuse as it is: shown as warnings on the log rows.
        funders.append(
            Funder(
                organisation=org,
                name="Member With A Typo",
                funder_type="membership",
                email="typo@@example",
            )
        )
        funders.append(
            Funder(
                organisation=org,
                name="The " + "Very " * 55 + "Long Name Society",
                funder_type="membership",
            )
        )
        Funder.objects.bulk_create(funders)
        self.stdout.write(f"Created {len(funders)} funders for {org.name}.")
        self._say_what_is_in_scope(org)

    def _say_what_is_in_scope(self, org) -> None:
        """Only unarchived membership funders reach Xero: say how many, so "26 of 26" adds up."""
        funders = Funder.objects.filter(organisation=org)
        members = funders.filter(funder_type="membership")
        in_scope = members.filter(archived=False).count()
        self.stdout.write(
            f"{org.name}: {funders.count()} funders, {members.count()} of them membership "
            f"funders; {in_scope} unarchived membership funders are in scope and will sync to "
            f"Xero (grant, donor and sponsor funders never do)."
        )
