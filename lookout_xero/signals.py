"""Signals lookout_xero sends. Its own receivers are connected in `AppConfig.ready()`."""

from django.dispatch import Signal

# Sent after every save of a XeroConnection, with `connection` and `change` (a
# `models.ConnectionChange`): the Enabled switch and new credentials are acted on from here.
connection_changed = Signal()
