"""Signal receivers: write the outbox row and enqueue a drain on commit. Nothing else.

No HTTP and no decryption here: a funder save must stay fast and must not fail because Xero,
the broker or the worker is down.
"""

from __future__ import annotations

from . import services
from .models import XeroConnection


def funder_saved(sender, instance, raw=False, **kwargs) -> None:
    if raw or not services.is_membership(instance):
        return  # loading fixtures, or never in scope: no query at all
    connection_id = (
        XeroConnection.objects.filter(
            organisation_id=services.organisation_id_of(instance), enabled=True
        )
        .values_list("pk", flat=True)
        .first()
    )
    if connection_id is None:
        return  # disabled or not connected: nothing is queued for later
    services.queue_funder(connection_id, instance.pk)
    services.enqueue_drain_on_commit(connection_id)
