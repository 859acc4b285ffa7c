"""What the bookkeeper did in Xero, applied to Lookout's links (DESIGN rule 9).

One set of rules, three ways in: webhook events (`webhooks`), a write whose answer shows a
status Lookout did not ask for (`drain`), and a full sync's read of every contact
(`full_sync`). Nothing here writes to Xero: a merge that was followed queues its funder, and
the drain pushes it to the survivor.

- Merged (``MergedToContactID``): the link moves to the survivor, following chains; if the
  survivor is already another funder's, the link is a conflict and its contact is left alone.
- Archived by someone else: the link is held ("Archived in Xero") until the contact is restored
  in Xero (syncing resumes by itself) or a person decides.
- Under a GDPR request: held for good; only a person decides.
- Drift: the fields Lookout last sent whose value in Xero differs, recorded on the link, or
  taken into the funder where the connection lets Xero win that field (`corrections`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable

from django.db import transaction

from .. import conf, dispatch, mapping, wording
from ..client import XeroClient, XeroContact
from ..exceptions import XeroError
from ..models import SyncLog, XeroConnection, XeroContactLink
from .calls import StopDrain, pause_for_day_limit, record_connection_error
from .corrections import review_drift
from .outbox import queue_funder
from .policy import Reaction, react_to
from .records import write_log

logger = logging.getLogger(__name__)

Outcome = SyncLog.Outcome
State = XeroContactLink.State
# Longest merge chain followed (X→Y→Z…); a longer one, or a loop, is left for a person.
MAX_CHAIN = 10

Fetch = Callable[[list[str]], Iterable[XeroContact]]


def review_links(
    connection: XeroConnection,
    links: Iterable[XeroContactLink],
    contacts: dict[str, XeroContact],
    *,
    fetch: Fetch | None = None,
) -> list:
    """Apply what Xero shows of each linked contact. Returns the funders queued for a push.

    `contacts` are the contacts already read, by ContactID; `fetch` reads survivors of merges
    that are not among them (a full sync has every contact and passes none).
    """
    links = [link for link in links if link.xero_contact_id in contacts]
    _read_survivors(contacts, fetch)
    to_push = []
    for link in links:
        with transaction.atomic():  # a link's change and its log line, seen together or not
            if _review(connection, link, contacts):
                to_push.append(link.funder_id)
    for funder_id in to_push:
        queue_funder(connection.pk, funder_id)
    if to_push:
        dispatch.drain_on_commit(connection.pk)
    return to_push


def review_after_write(
    connection: XeroConnection, client: XeroClient, links: list[XeroContactLink]
) -> None:
    """A write's answer showed a contact ARCHIVED or under a GDPR request, unasked: read it
    (paged GETs, which show merges) and apply the rules, as a webhook would."""
    try:
        found = {c.contact_id: c for c in client.get_contacts_by_ids(_ids(links))}
    except XeroError as exc:
        decision = react_to(exc, attempt=1)
        if decision.reaction is Reaction.STOP:
            record_connection_error(connection, exc)
            raise StopDrain from None
        if decision.reaction is Reaction.PAUSE:
            pause_for_day_limit(connection, decision.seconds)
            raise StopDrain from None
        # Not readable now: hold on what the answer said; a later read follows any merge.
        found = {
            link.xero_contact_id: XeroContact(
                link.xero_contact_id, "", "", "", link.xero_contact_status
            )
            for link in links
        }
    review_links(connection, links, found, fetch=client.get_contacts_by_ids)


def _ids(links: Iterable[XeroContactLink]) -> list[str]:
    return [link.xero_contact_id for link in links]


def _read_survivors(contacts: dict[str, XeroContact], fetch: Fetch | None) -> None:
    """Read the contacts merges lead to, a level of the chains at a time."""
    for _ in range(MAX_CHAIN):
        missing = {c.merged_to for c in contacts.values() if c.merged_to} - set(contacts)
        if not missing or fetch is None:
            return
        read = list(fetch(sorted(missing)))
        contacts.update({c.contact_id: c for c in read})
        if not read:
            return


def survivor_of(contact: XeroContact, contacts: dict[str, XeroContact]) -> XeroContact | None:
    """Where a chain of merges ends (X→Y→Z gives Z); None when it cannot be followed."""
    seen = {contact.contact_id}
    while contact.merged_to:
        contact = contacts.get(contact.merged_to)
        if contact is None or contact.contact_id in seen or len(seen) > MAX_CHAIN:
            return None
        seen.add(contact.contact_id)
    return contact


def _review(connection, link: XeroContactLink, contacts: dict[str, XeroContact]) -> bool:
    """One link against its contact as Xero holds it; True when its funder is to be pushed."""
    contact = contacts[link.xero_contact_id]
    if link.state == State.IGNORED:
        return False  # a person chose not to sync it: whatever Xero did is theirs
    followed = False
    if contact.merged_to:
        survivor = survivor_of(contact, contacts)
        if survivor is None:
            return False  # a chain Xero did not let us read: the next event or sync tries again
        if not _follow_merge(connection, link, contact, survivor):
            return False
        contact, followed = survivor, True
    if contact.status == mapping.GDPR_REQUEST:
        _hold(connection, link, State.GDPR_REQUEST, contact.status, wording.GDPR_REQUEST_HELD)
        return False
    if contact.status == mapping.ARCHIVED:
        _archived(connection, link)
        return False
    resumed = _active(connection, link)
    # Drift, and what each field's direction makes of it (taken into the funder, or shown).
    review_drift(connection, link, contact)
    return followed or resumed


def _follow_merge(connection, link: XeroContactLink, merged: XeroContact, survivor) -> bool:
    """Move the link to the survivor; a survivor that is another funder's is a conflict."""
    taken = (
        XeroContactLink.objects.filter(connection=connection, xero_contact_id=survivor.contact_id)
        .exclude(pk=link.pk)
        .select_related("funder")
        .first()
    )
    if taken is not None:
        if link.merged_into != survivor.contact_id:
            message = wording.merged_into_linked(
                merged.contact_id, survivor.contact_id, taken.funder
            )
            link.state, link.last_error = State.CONFLICT, message
            link.merged_into = survivor.contact_id
            link.xero_contact_status = merged.status
            link.conflict_candidates = [_candidate(survivor)]
            link.save()
            _log(connection, link, Outcome.CONFLICT, message)
        return False
    own_number = mapping.contact_number(conf.get("CONTACT_NUMBER_PREFIX"), link.funder_id)
    link.xero_contact_id, link.xero_contact_status = survivor.contact_id, survivor.status
    link.matched_by = XeroContactLink.MatchedBy.MERGE
    # The survivor is someone's contact: fill it, never blank it (drain.FOUND_IN_XERO).
    link.keeps_own_number = bool(survivor.contact_number) and survivor.contact_number != own_number
    link.payload_hash, link.sent_fields, link.last_sent = "", [], {}
    link.drift, link.drift_seen_at, link.decision_since = {}, None, None
    link.merged_into, link.archived_by, link.conflict_candidates = "", "", []
    link.state, link.last_error = State.PENDING, ""
    link.save()
    _log(connection, link, Outcome.FOLLOWED_MERGE, wording.followed_merge(merged, survivor))
    return True


def _archived(connection, link: XeroContactLink) -> None:
    if link.archived_by == XeroContactLink.ArchivedBy.LOOKOUT:
        if link.xero_contact_status != mapping.ARCHIVED:
            link.xero_contact_status = mapping.ARCHIVED
            link.save(update_fields=["xero_contact_status", "updated_at"])
        return  # Lookout archived it (its funder is archived): nothing to respect
    _hold(connection, link, State.ARCHIVED_IN_XERO, mapping.ARCHIVED, wording.ARCHIVED_IN_XERO)


def _hold(connection, link: XeroContactLink, state: str, status: str, reason: str) -> None:
    """Stop writing to this contact until a person (or, when archived, Xero) lifts it."""
    if link.state == state:
        return
    link.state, link.xero_contact_status, link.last_error = state, status, reason
    if state == State.ARCHIVED_IN_XERO:
        link.archived_by = XeroContactLink.ArchivedBy.XERO
    link.save()
    _log(connection, link, Outcome.HELD, reason)


def _active(connection, link: XeroContactLink) -> bool:
    """An active contact: one held as archived in Xero was restored there, so resume."""
    if link.state == State.ARCHIVED_IN_XERO:
        link.state, link.archived_by, link.last_error = State.PENDING, "", ""
        link.xero_contact_status, link.payload_hash = mapping.ACTIVE, ""
        link.save()
        _log(connection, link, Outcome.RESUMED, wording.RESTORED_IN_XERO)
        return True
    if link.xero_contact_status != mapping.ACTIVE and link.state not in link.HELD_STATES:
        # Restored in Xero after Lookout archived it: recorded, not fought.
        link.xero_contact_status, link.archived_by = mapping.ACTIVE, ""
        link.save(update_fields=["xero_contact_status", "archived_by", "updated_at"])
    return False


def _candidate(contact: XeroContact) -> dict:
    return {
        "contact_id": contact.contact_id,
        "name": contact.name,
        "email": contact.email,
        "status": contact.status,
        "contact_number": contact.contact_number,
    }


def _log(connection, link: XeroContactLink, outcome: str, message: str) -> None:
    write_log(
        connection, outcome, funder=link.funder, contact_id=link.xero_contact_id, message=message
    )
