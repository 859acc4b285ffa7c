"""`manage.py xero_reconcile [--organisation <pk>]`: queue funders changed without a save."""

from django.core.management.base import BaseCommand, CommandError

from lookout_xero import services
from lookout_xero.models import XeroConnection


class Command(BaseCommand):
    help = (
        "Queue, locally and without calling Xero, every membership funder of an enabled "
        "connection whose Contact differs from what Xero last received (changes made by "
        "update(), raw SQL, bulk_create(), loaddata...)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--organisation", help="Only this organisation's connection (pk).")

    def handle(self, *args, organisation=None, **options):
        if organisation is not None:
            connection = XeroConnection.objects.filter(organisation_id=organisation)
            if not connection.exists():
                raise CommandError(f"Organisation {organisation} has no Xero connection.")
            if not connection.filter(enabled=True).exists():
                self.stdout.write(
                    f"Organisation {organisation}: not enabled, nothing reconciled "
                    "(disabled means nothing is sent)."
                )
                return
        for result in services.reconcile(organisation):
            self.stdout.write(f"Organisation {result.organisation_id}: {result}")
