"""A funder's link to its Xero contact, as matching decides it: linked, or a conflict.

The full sync's planner and the drain's look-up before creating both match funders to the
contacts already in Xero; what a match does to the link is the same for both, so it is here.
"""

from __future__ import annotations

from django.db.models import F

from .. import mapping, wording
from ..matching import Match
from ..models import SyncLog, SyncRun, XeroContactLink
from .records import write_log

Outcome = SyncLog.Outcome


def candidates_of(found: Match) -> list[dict]:
    return [
        {
            "contact_id": c.contact_id,
            "name": c.name,
            "email": c.email,
            "status": c.status,
            "contact_number": c.contact_number,
        }
        for c in found.candidates
    ]


def link_to_contact(link: XeroContactLink, found: Match) -> None:
    link.xero_contact_id = found.contact.contact_id
    link.xero_contact_status = found.contact.status
    link.matched_by = found.rule
    link.keeps_own_number = bool(found.contact.contact_number) and found.rule != "contact_number"
    link.payload_hash = ""
    link.sent_fields = []
    link.last_sent = {}
    link.state = XeroContactLink.State.PENDING
    link.conflict_candidates = []
    link.last_error = ""
    if found.contact.status == mapping.ARCHIVED:
        # Its own contact, found archived (only a ContactNumber matches archived contacts):
        # whoever archived it, Lookout does not know it was Lookout, so it is not revived.
        link.state = XeroContactLink.State.ARCHIVED_IN_XERO
        link.archived_by = XeroContactLink.ArchivedBy.XERO
        link.last_error = wording.ARCHIVED_IN_XERO
    link.save()


def record_conflict(connection, run, funder, link: XeroContactLink, found: Match) -> None:
    link.state = XeroContactLink.State.CONFLICT
    link.last_error = found.conflict
    link.conflict_candidates = candidates_of(found)
    link.save()
    write_log(connection, Outcome.CONFLICT, run=run, funder=funder, message=found.conflict)
    if run:
        SyncRun.objects.filter(pk=run.pk).update(conflicts=F("conflicts") + 1)
