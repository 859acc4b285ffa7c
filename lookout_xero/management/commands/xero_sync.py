"""`manage.py xero_sync --organisation <pk> [--full] [--enable]`: sync from a shell."""

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from lookout_xero import services
from lookout_xero.models import SyncRun, XeroConnection


class Command(BaseCommand):
    help = "Push an organisation's pending funder changes to Xero, or start a full sync."

    def add_arguments(self, parser):
        parser.add_argument(
            "--organisation", required=True, help="Primary key of the organisation."
        )
        parser.add_argument("--full", action="store_true", help="Sync every in-scope funder.")
        parser.add_argument(
            "--enable",
            action="store_true",
            help="Tick Enabled first (which itself starts a full sync).",
        )

    def handle(self, *args, organisation, full, enable, **options):
        connection = XeroConnection.objects.filter(organisation_id=organisation).first()
        if connection is None:
            raise CommandError(f"Organisation {organisation} has no Xero connection.")
        if enable and not connection.enabled:
            with transaction.atomic():
                connection.enabled = True
                connection.save()
            self.stdout.write(f"Enabled; full sync #{connection.runs.first().pk} queued.")
            return
        if not connection.enabled:
            raise CommandError(
                "This connection is disabled, and nothing is sent to Xero while it is. "
                "Add --enable to switch it on (which runs a full sync)."
            )
        if full:
            with transaction.atomic():
                run = services.start_full_sync(connection, trigger=SyncRun.Trigger.MANUAL)
            self.stdout.write(f"Full sync #{run.pk} queued.")
        else:
            with transaction.atomic():
                services.enqueue_drain_on_commit(connection.pk)
            self.stdout.write("Pending changes queued for pushing.")
