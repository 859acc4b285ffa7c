"""`manage.py xero_credentials_link --organisation <pk> [--hours N]`: a one-time link for the
customer to hand over their Xero credentials. The link's URL is the last line printed."""

from django.core.management.base import BaseCommand, CommandError

from lookout_xero import conf, credentials


class Command(BaseCommand):
    help = "Create a one-time link where a customer enters their Xero credentials."

    def add_arguments(self, parser):
        parser.add_argument(
            "--organisation", required=True, help="Primary key of the organisation."
        )
        parser.add_argument(
            "--hours",
            type=float,
            default=None,
            help="How long the link works (fractions allowed; default LINK_HOURS, 72).",
        )
        parser.add_argument(
            "--base-url",
            default="",
            help="Where customers reach this site; default LOOKOUT_XERO['SITE_URL'].",
        )

    def handle(self, *args, organisation, hours, base_url, **options):
        base = (base_url or conf.get("SITE_URL") or "").rstrip("/")
        if not base.startswith(("https://", "http://")):
            raise CommandError(
                "Set LOOKOUT_XERO['SITE_URL'] (e.g. https://lookout.example.com) or pass "
                "--base-url: the link must say where the customer opens it."
            )
        org = conf.organisation_model().objects.filter(pk=organisation).first()
        if org is None:
            raise CommandError(f"No organisation with primary key {organisation}.")
        try:
            link, path = credentials.create_link(org, hours=hours)
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(
            f"Credentials link #{link.pk} for {org}, valid until {link.expires_at:%Y-%m-%d %H:%M} "
            "UTC. Any earlier open link for it is revoked. It is shown only now:"
        )
        self.stdout.write(base + path)
