"""`manage.py xero_directions --organisation <pk> [FIELD=lookout|ask|xero ...]`.

Which side wins, per Contact field, when the bookkeeper changes in Xero a value Lookout sent:
``lookout`` (the default: Lookout's next push sends its value), ``ask`` (a person takes Xero's
value or keeps Lookout's) or ``xero`` (Xero's value is written into the funder at once).
"""

from django.core.management.base import BaseCommand, CommandError

from lookout_xero import services
from lookout_xero.models import XeroConnection


class Command(BaseCommand):
    help = (
        "Set which side wins for the given Contact fields (FIELD=lookout|ask|xero, e.g. "
        "EmailAddress=xero Phones=ask) and print every field's direction, one FIELD=direction "
        "per line."
    )

    def add_arguments(self, parser):
        parser.add_argument("--organisation", required=True, help="The organisation (pk).")
        parser.add_argument("directions", nargs="*", metavar="FIELD=direction")

    def handle(self, *args, organisation, directions, **options):
        connection = XeroConnection.objects.filter(organisation_id=organisation).first()
        if connection is None:
            raise CommandError(f"Organisation {organisation} has no Xero connection.")
        changes = {}
        for text in directions:
            field, sep, direction = text.partition("=")
            if not sep:
                raise CommandError(f"Expected FIELD=direction, got {text!r}.")
            changes[field.strip()] = direction.strip()
        try:
            if changes:
                current = services.set_directions(connection, changes)
            else:
                current = services.directions_of(connection)
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        for field, direction in current.items():
            self.stdout.write(f"{field}={direction}")
