"""The reconcile: changes made without a save, found locally and queued.

A save queues its funder from ``post_save``. Whatever skips ``save()`` sends nothing:
``QuerySet.update()``, ``bulk_update()``, ``bulk_create()``, raw SQL, ``loaddata``, a process
killed between a save's commit and its receiver, a deploy that changes ``MAPPING``. Rather
than hook the host's table, the app compares, now and then, what each funder would send with
what Xero last received (the link's payload hash), as a drain would (`drain.would_write`),
and queues exactly the funders that differ through the ordinary outbox. It never calls Xero,
and an unchanged organisation costs two queries per 500 funders and writes nothing.

`queue_changed_funders` stays the fast path for code that knows what it changed; this is the
safety net behind it. Only enabled connections are reconciled: disabled means nothing is sent.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from django.db.models import Exists, OuterRef

from .. import conf
from ..models import OutboxEntry, SyncRun, XeroConnection, XeroContactLink
from .drain import would_write
from .outbox import queue_changed_funders

logger = logging.getLogger(__name__)

CHUNK = 500

# What `drain.would_write` reads of a link. Its drift says which fields are held for a person
# (usually none: `{}`); `last_sent` is not read (the decision is by the hash alone).
LINK_FIELDS = (
    "drift",
    "funder_id",
    "state",
    "xero_contact_id",
    "xero_contact_status",
    "matched_by",
    "payload_hash",
    "sent_fields",
    "keeps_own_number",
    "name_suffix",
    "archived_by",
    "merged_into",
)


@dataclass(frozen=True)
class Reconciled:
    """One connection's reconcile: how many funders it queued, or why it looked at none."""

    connection_id: int
    organisation_id: object
    queued: int = 0
    skipped: str = ""

    def __str__(self) -> str:
        if self.skipped:
            return f"reconcile skipped: {self.skipped}"
        return f"reconcile queued {self.queued} changes made without a save"


def reconcile(organisation_id=None) -> list[Reconciled]:
    """Reconcile every enabled connection (or only this organisation's); one result each."""
    connections = XeroConnection.objects.filter(enabled=True).order_by("pk")
    if organisation_id is not None:
        connections = connections.filter(organisation_id=organisation_id)
    # Only the keys: a reconcile decrypts nothing, so it works whatever FERNET_KEYS holds.
    ids = list(connections.values_list("pk", "organisation_id"))
    results = [reconcile_connection(pk, org) for pk, org in ids]
    for result in results:
        logger.info(
            "Xero connection %s (organisation %s): %s",
            result.connection_id,
            result.organisation_id,
            result,
        )
    return results


def reconcile_connection(connection_id: int, organisation_id) -> Reconciled:
    """Queue each membership funder of the organisation a drain would write to Xero."""
    runs = SyncRun.objects.active().full_syncs().filter(connection_id=connection_id)
    if runs.exists():
        # It queues every funder in scope itself; until planned, links are still being made.
        return Reconciled(connection_id, organisation_id, skipped="a full sync is under way")
    pending = OutboxEntry.objects.filter(connection_id=connection_id, funder_id=OuterRef("pk"))
    members = (
        conf.funder_model()
        ._default_manager.filter(
            **{
                conf.get("ORGANISATION_FIELD") + "_id": organisation_id,
                conf.get("MEMBERSHIP_FIELD"): conf.get("MEMBERSHIP_VALUE"),
            }
        )
        .annotate(lx_pending=Exists(pending))
        .order_by("pk")
    )
    links = XeroContactLink.objects.filter(connection_id=connection_id).only(*LINK_FIELDS)
    queued = 0
    last = None
    while True:
        # Key ranges, not OFFSET or a list of every id: each chunk costs the same, and only
        # one chunk is in memory at a time.
        chunk = list((members if last is None else members.filter(pk__gt=last))[:CHUNK])
        if not chunk:
            break
        last = chunk[-1].pk
        linked = {
            link.funder_id: link
            for link in links.filter(funder_id__gte=chunk[0].pk, funder_id__lte=last)
        }
        changed = [
            funder.pk
            for funder in chunk
            if not funder.lx_pending and would_write(funder, linked.get(funder.pk))
        ]
        if changed:
            # The save's rules: checks the switch again, and asks for a drain on commit.
            queued += queue_changed_funders(changed)
    return Reconciled(connection_id, organisation_id, queued=queued)
