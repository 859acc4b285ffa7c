"""Which organisations have an enabled connection, as this process last read it.

A funder save asks here first, so that a save in an organisation without an enabled
connection costs no query at all: most organisations of a CRM have none. What this process
knows is at most ``ENABLED_CACHE_SECONDS`` old, and being out of date loses nothing:

- It says "enabled" but the connection was disabled meanwhile: the save's upsert checks
  ``enabled`` itself (`outbox.queue_funder_of_organisation`), so nothing is queued.
- It says "not enabled" but another process has just enabled the connection: the save is
  skipped. Enabling starts a full sync, and a full sync starts ``ENABLED_CACHE_SECONDS``
  after its transaction commits (`switch.start_full_sync`), when every process has read the
  switch again; it picks up the skipped change from the funder itself. Should that ever miss
  it, the reconcile still finds the funder, whose Contact differs from what Xero last received.

A connection saved in this process is forgotten at once. A value read inside the transaction
that saved it is not remembered: that transaction may still roll back. (Reads of other
transactions only see what was committed, so they are safe to keep.)
"""

from __future__ import annotations

import threading
import time

from django.db import router, transaction

from .. import conf
from ..models import XeroConnection

# organisation id -> (has an enabled connection, time.monotonic() when read)
_known: dict = {}
# Per thread: organisations whose connection this thread changed in its open transaction.
_this_thread = threading.local()


def may_have_enabled_connection(organisation_id) -> bool:
    """False only when the organisation had no enabled connection a moment ago."""
    known = _known.get(organisation_id)
    now = time.monotonic()
    if known is not None and now - known[1] < conf.get("ENABLED_CACHE_SECONDS"):
        return known[0]
    enabled = XeroConnection.objects.filter(organisation_id=organisation_id, enabled=True).exists()
    if organisation_id not in _changed_in_open_transaction():
        _known[organisation_id] = (enabled, now)
    return enabled


def forget(organisation_id) -> None:
    """A connection of this organisation was saved: read its switch afresh."""
    _known.pop(organisation_id, None)
    if _in_transaction():
        _changed_in_open_transaction().add(organisation_id)


def clear() -> None:
    """Forget everything (between tests, whose databases come and go under the same ids)."""
    _known.clear()
    _changed_in_open_transaction().clear()


def _changed_in_open_transaction() -> set:
    changed = getattr(_this_thread, "changed", None)
    if changed is None:
        changed = _this_thread.changed = set()
    elif changed and not _in_transaction():
        changed.clear()  # that transaction is over, committed or rolled back
    return changed


def _in_transaction() -> bool:
    return transaction.get_connection(router.db_for_write(XeroConnection)).in_atomic_block
