"""Signal receivers, connected in `AppConfig.ready()`. They queue work; they never do it.

No HTTP and no decryption here: a funder save must stay fast and must not fail because Xero,
the broker or the worker is down.
"""

from __future__ import annotations

from . import services
from .models import XeroConnection


def funder_saved(sender, instance, raw=False, **kwargs) -> None:
    """post_save of the host's funder: upsert its outbox row; ask for a drain on commit."""
    if raw or not services.is_membership(instance):
        return  # loading fixtures, or never in scope: no query at all
    found = (
        XeroConnection.objects.filter(
            organisation_id=services.organisation_id_of(instance), enabled=True
        )
        .values_list("pk", "drain_requested")
        .first()
    )
    if found is None:
        return  # disabled or not connected: nothing is queued for later
    connection_id, drain_requested = found
    created = services.queue_funder(connection_id, instance.pk)
    # A drain already asked for takes this change too (it loops until the outbox is empty);
    # within one transaction, the first save of each funder asks.
    if created and not drain_requested:
        services.ask_for_drain_on_commit(connection_id)


def connection_changed(sender, connection, change, **kwargs) -> None:
    """A connection was saved: run the Enabled switch, or resume after new credentials."""
    services.apply_change(connection, change)
