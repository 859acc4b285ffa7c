"""`manage.py xero_prune_logs [--days N]`: delete sync log rows past their retention."""

from django.core.management.base import BaseCommand

from lookout_xero import conf, services


class Command(BaseCommand):
    help = "Delete sync log rows older than LOOKOUT_XERO['LOG_RETENTION_DAYS'] (or --days)."

    def add_arguments(self, parser):
        parser.add_argument("--days", type=int, default=None)

    def handle(self, *args, days, **options):
        days = conf.get("LOG_RETENTION_DAYS") if days is None else days
        deleted = services.prune_logs(days)
        self.stdout.write(f"Deleted {deleted} sync log rows older than {days} days.")
