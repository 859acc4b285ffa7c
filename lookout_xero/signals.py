"""Signals lookout_xero sends. Its own receivers are connected in `AppConfig.ready()`."""

from django.dispatch import Signal

# Sent after every save of a XeroConnection, with `connection` and `change` (a
# `models.ConnectionChange`): the Enabled switch and new credentials are acted on from here.
connection_changed = Signal()

# Sent once a funder saved with values taken from Xero is committed, with `funder`, `fields`
# (the funder's field names written), `contact_fields` (Xero's, e.g. ["EmailAddress"]) and
# `chosen_by` (the person's username, or "" when the field's direction took it).
contact_corrected_in_xero = Signal()
