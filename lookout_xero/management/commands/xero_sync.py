"""`manage.py xero_sync --organisation <pk> [--full [--dry-run]]`: sync from a shell.

`--full` is the same switch as the admin's Enabled box: on a disabled connection it enables it
(which is what runs the full sync); on an enabled one it runs a full sync again.
"""

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from lookout_xero import conf, dispatch, services, status
from lookout_xero.models import SyncRun, XeroConnection


class Command(BaseCommand):
    help = "Push an organisation's pending funder changes to Xero, or start a full sync."

    def add_arguments(self, parser):
        parser.add_argument(
            "--organisation", required=True, help="Primary key of the organisation."
        )
        parser.add_argument(
            "--full",
            action="store_true",
            help="Sync every unarchived membership funder, enabling the connection if it is not.",
        )
        parser.add_argument(
            "--dry-run",
            action="store_true",
            help="With --full: preview, here and now, what a full sync would do. Reads Xero, "
            "writes nothing to it; works while the connection is disabled.",
        )

    def handle(self, *args, organisation, full, dry_run, **options):
        connection = XeroConnection.objects.filter(organisation_id=organisation).first()
        if connection is None:
            raise CommandError(f"Organisation {organisation} has no Xero connection.")
        if dry_run:
            if not full:
                raise CommandError("--dry-run previews a full sync: use it with --full.")
            self.preview(connection)
            return
        if full:
            with transaction.atomic():
                if connection.enabled:
                    run = services.start_full_sync(connection, trigger=SyncRun.Trigger.MANUAL)
                    self.stdout.write(f"Full sync #{run.pk} queued.")
                else:
                    connection.enabled = True
                    # Enabling is what starts the full sync.
                    connection.save(update_fields=["enabled"])
                    run = connection.runs.full_syncs().first()
                    self.stdout.write(f"Enabled; full sync #{run.pk} queued.")
            return
        if not connection.enabled:
            raise CommandError(
                "This connection is disabled, and nothing is sent to Xero while it is. "
                "Use --full to enable it, which syncs every in-scope funder."
            )
        with transaction.atomic():
            dispatch.edit_drain_on_commit(connection.pk)  # a person asked: ahead of backlogs
        self.stdout.write("Pending changes queued for pushing.")

    def preview(self, connection: XeroConnection) -> None:
        """Run a preview in this process and print its report."""
        run = services.start_preview(connection, enqueue=False)
        # A person is waiting: no retries after a backoff, the reason at once.
        wait = services.run_full_sync(run.pk, attempt=conf.get("MAX_ATTEMPTS"))
        if wait is not None:
            message = f"Xero asked to wait {wait:.0f} s (its rate limit); try again then."
            services.finish_run(run, SyncRun.Status.FAILED, message=message)
        run.refresh_from_db()
        if run.status != SyncRun.Status.COMPLETED:
            raise CommandError(
                f"Preview #{run.pk} {run.get_status_display().lower()}: {run.message}"
            )
        self.print_report(connection, run)

    def print_report(self, connection: XeroConnection, run: SyncRun) -> None:
        report = status.preview_report(run)
        counts = report["counts"]
        by_rule = ", ".join(f"{n} by {rule}" for rule, n in report["by_rule"])
        write = self.stdout.write
        write(
            f"Preview #{run.pk} for {connection.organisation} (nothing was written to Xero): "
            f"{run.in_scope} unarchived membership funders in scope."
        )
        write(f"  would create:           {counts.get('create', 0)}")
        write(
            f"  would link:             {counts.get('link', 0)}{f' ({by_rule})' if by_rule else ''}"
        )
        write(f"  conflicts:              {counts.get('conflict', 0)}")
        write(f"  rejected by validation: {counts.get('invalid', 0)}")
        write(f"  with warnings:          {counts.get('warnings', 0)}")
        write(f"  already linked:         {counts.get('already_linked', 0)}")
        for section in report["sections"]:
            if not section["count"]:
                continue
            write(f"\n{section['title']} ({section['count']}):")
            for item in section["items"]:
                name = item["name"] or "(no name)"
                write(f"  - {name} (funder {item['funder_id']}){self.detail(item)}")
            if section["truncated"]:
                write(f"  … and {section['count'] - len(section['items'])} more")

    @staticmethod
    def detail(item: dict) -> str:
        if item.get("rule"):
            return (
                f": by {item['rule_label']} to “{item.get('contact_name', '')}” "
                f"({item.get('contact_id')})"
            )
        if item.get("reason"):
            names = ", ".join(f"“{c.get('name', '')}”" for c in item.get("candidates", []))
            return f": {item['reason']}" + (f" ({names})" if names else "")
        if item.get("error"):
            return f": {item['error']}"
        if item.get("warnings"):
            return ": " + "; ".join(item["warnings"])
        return ""
