"""`manage.py xero_rotate_keys`: re-encrypt every stored credential with the first FERNET_KEYS key.

Procedure: put the new key first in FERNET_KEYS and keep the old one after it, deploy, run this,
then remove the old key. Running it again rewrites nothing.
"""

from django.core.management.base import BaseCommand, CommandError

from lookout_xero import keys


class Command(BaseCommand):
    help = "Re-encrypt every stored Xero credential and token with the first key in FERNET_KEYS."
    # lookout_xero.E006 (a value no key opens) must not stop the command that reports it.
    requires_system_checks = []

    def add_arguments(self, parser):
        parser.add_argument("--batch-size", type=int, default=keys.BATCH_SIZE)
        parser.add_argument(
            "--dry-run", action="store_true", help="Count what would be rewritten; write nothing."
        )

    def handle(self, *args, batch_size, dry_run, **options):
        if batch_size < 1:
            raise CommandError("--batch-size must be at least 1.")
        report = keys.rotate(batch_size=batch_size, dry_run=dry_run)
        verb = "would rewrite" if dry_run else "rewrote"
        self.stdout.write(
            f"Rotation {verb} {report.rows_rewritten} row(s) "
            f"({report.values_rewritten} encrypted value(s)) with the first key in FERNET_KEYS."
        )
        if report.undecryptable:
            raise CommandError(
                f"{len(report.undecryptable)} stored value(s) cannot be decrypted with any key "
                f"in FERNET_KEYS and were left as they are: {', '.join(report.undecryptable)}. "
                "Add the key that encrypted them to FERNET_KEYS (after the current one) and run "
                "this again."
            )
