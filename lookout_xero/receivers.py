"""Signal receivers, connected in `AppConfig.ready()`. They queue work; they never do it.

No HTTP and no decryption here: a funder save must stay fast and must not fail because Xero,
the broker or the worker is down.
"""

from __future__ import annotations

from . import services


def funder_saved(sender, instance, raw=False, **kwargs) -> None:
    """post_save of the host's funder: one upsert of its outbox row, in the save's transaction
    when it has one; a drain asked for on commit. Nothing at all, not even a query, when its
    organisation had no enabled connection a moment ago (see `services.enabled` for why that
    loses nothing). A change that never sends post_save is found by the reconcile."""
    if raw or not services.is_membership(instance):
        return  # loading fixtures (the reconcile finds them), or never in scope: no query
    organisation_id = services.organisation_id_of(instance)
    if not services.may_have_enabled_connection(organisation_id):
        return  # no enabled connection a moment ago: no query at all
    queued = services.queue_funder_of_organisation(organisation_id, instance.pk)
    if queued is None:
        return  # disabled or not connected: nothing is queued for later
    # A drain already asked for takes this change too (it loops until the outbox is empty);
    # within one transaction, the first save of each funder asks.
    if queued.created and not queued.drain_requested:
        services.ask_for_drain_on_commit(queued.connection_id)


def connection_changed(sender, connection, change, **kwargs) -> None:
    """A connection was saved: run the Enabled switch, or resume after new credentials."""
    services.forget_enabled(connection.organisation_id)
    services.apply_change(connection, change)
