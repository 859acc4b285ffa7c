"""The drain: push pending funders to Xero in batches, one drain per organisation at a time."""

from __future__ import annotations

import hashlib
import json
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import timedelta

from django.db import transaction
from django.db.models import F, Min, Q
from django.utils import timezone

from .. import conf, mapping, wording
from ..client import ItemResult, XeroClient
from ..exceptions import XeroError, XeroValidationError
from ..fields import UndecryptableError
from ..matching import ContactIndex
from ..models import OutboxEntry, SyncLog, SyncRun, XeroConnection, XeroContactLink
from .bookkeeper import review_after_write, review_links
from .calls import (
    RetryLater,
    StopDrain,
    client_for,
    pause_for_day_limit,
    record_connection_error,
    record_undecryptable,
    remember_limits,
)
from .corrections import LOOKOUT, directions_of, held
from .lease import Lease, LeaseLost, seconds_until_free
from .links import link_to_contact, record_conflict
from .pacing import Pacer
from .policy import MAX_FOLLOW_UP_SECONDS, Reaction, backoff, react_to
from .records import complete_run_if_done, log_row, write_log
from .scope import is_archived, is_membership, organisation_id_of
from .webhooks import hand_over

Outcome = SyncLog.Outcome


NAME_CLASH = "already assigned to another contact"


# --- drain: push pending funders --------------------------------------------------------------


@dataclass(frozen=True)
class FollowUp:
    """When the organisation's drain should run again, and whether it waits for a lease."""

    seconds: float
    for_lease: bool = False


def drain(connection_id: int) -> float | None:
    """Push this organisation's pending funders. Returns seconds until more work is due, if any."""
    follow_up = drain_once(connection_id, waited_for_lease=True)
    return follow_up.seconds if follow_up else None


def drain_once(connection_id: int, *, waited_for_lease: bool = False) -> FollowUp | None:
    """One drain of an organisation, and when the next one should run (None: nothing due).

    Only one drain per organisation runs at a time, across all workers and machines. One
    turned away by another's lease comes back once, when that lease would expire: if the
    holder died, it takes over then; if the holder renewed it, the holder does the work.
    """
    lease = Lease.acquire(connection_id)
    if lease is None:
        if waited_for_lease:
            return None
        remaining = seconds_until_free(connection_id)
        return None if remaining is None else FollowUp(remaining + 1, for_lease=True)
    try:
        wait = _drain_batches(connection_id, lease)
    except LeaseLost:
        return None  # the lease expired under us and another worker took it: it carries on
    except UndecryptableError as exc:
        record_undecryptable(connection_id, exc)
        return None
    finally:
        lease.release()
        # From here on a save asks for a drain of its own again.
        XeroConnection.objects.filter(pk=connection_id).update(drain_requested=False)
        hand_over(connection_id)  # webhook events that arrived while this drain held the lease
    if wait is None:
        # A funder queued while we held the lease had its own drain turned away: pick it up.
        wait = next_due_in(connection_id)
    return None if wait is None else FollowUp(min(wait, MAX_FOLLOW_UP_SECONDS))


def next_due_in(connection_id: int) -> float | None:
    connection = XeroConnection.objects.filter(pk=connection_id).first()
    if not connection or not connection.enabled or connection.state == XeroConnection.State.ERROR:
        return None
    due = OutboxEntry.objects.filter(connection_id=connection_id).aggregate(due=Min("due_at"))[
        "due"
    ]
    if due is None:
        return None
    if connection.is_paused:
        return None  # the sweep resumes it after the pause
    return max(0.0, (due - timezone.now()).total_seconds())


def _drain_batches(connection_id: int, lease: Lease) -> float | None:
    """Push due funders batch by batch; seconds until the next pass (0: at once), or None.

    After DRAIN_SLICE_SECONDS the drain hands over: its next pass goes to the back of the
    queue, so organisations with large backlogs take turns batch by batch and a worker process
    comes free every few seconds for an edit (docs/architecture.md, "Queues and priorities").
    """
    client = None
    slice_ends = time.monotonic() + conf.get("DRAIN_SLICE_SECONDS")
    while True:
        lease.renew()
        connection = XeroConnection.objects.get(pk=connection_id)
        if not connection.enabled:
            OutboxEntry.objects.filter(connection=connection).delete()
            return None
        if connection.state == XeroConnection.State.ERROR or connection.is_paused:
            return None
        entries = list(
            OutboxEntry.objects.filter(connection=connection, due_at__lte=timezone.now()).order_by(
                "due_at", "pk"
            )[: conf.get("BATCH_SIZE")]
        )
        if not entries:
            return None
        if client is not None and time.monotonic() >= slice_ends:
            return 0.0  # more is due: the next pass, after the other organisations' turns
        client = client or client_for(
            connection, before_request=_renewing_pacer(connection_id, lease)
        )
        try:
            _push_batch(connection, client, entries)
        except RetryLater as later:
            return later.seconds
        except StopDrain:
            return None
        finally:
            remember_limits(connection, client)


def _renewing_pacer(connection_id: int, lease: Lease):
    """Before each call: renew the lease, then keep under the minute limit (end the drain and
    come back after the wait, rather than hold a worker while waiting)."""
    pacer = Pacer(connection_id, wait=_retry_later)

    def before_request(client: XeroClient) -> None:
        lease.renew()
        pacer(client)

    return before_request


def _retry_later(seconds: float) -> None:
    raise RetryLater(seconds)


@dataclass
class _Item:
    entry: OutboxEntry
    funder: object
    link: XeroContactLink
    outcome: str = ""
    clean: mapping.CleanContact | None = None
    sent: dict = field(default_factory=dict)
    sent_hash: str = ""
    http_status: int | None = None
    message: str = ""
    warnings: list[str] = field(default_factory=list)
    # Xero's answer shows a status this push did not set (archived or GDPR in Xero).
    surprised: bool = False
    # An unchanged item whose link learnt something worth saving (`_is_unchanged`).
    link_changed: bool = False


def _push_batch(connection: XeroConnection, client: XeroClient, entries: list[OutboxEntry]) -> None:
    """One pass over up to a batch of pending funders: decide, look up, send, record."""
    items = _load_items(connection, entries)
    to_send: list[_Item] = []
    settled: list[_Item] = []
    for item in items:
        if _prepare(item):
            to_send.append(item)
        else:
            settled.append(_settle(item, Outcome.FAILED, message=item.clean.error))
    to_look_up = [item for item in to_send if _needs_look_up(item)]
    if to_look_up:
        to_send = _look_up_existing(connection, client, to_send, to_look_up)
    batch = []
    for item in to_send:
        if _is_unchanged(item):
            settled.append(_settle(item, Outcome.UNCHANGED))
        else:
            batch.append(item)
    _finish_items(connection, settled)
    if batch and reads_before_writing(connection):
        batch = _read_before_write(connection, client, batch)
    if batch:
        _send_batch(connection, client, batch)
    # Entries can also leave without an outcome (funder deleted or out of scope meanwhile).
    for run_id in {entry.run_id for entry in entries if entry.run_id}:
        complete_run_if_done(run_id)


def reads_before_writing(connection: XeroConnection) -> bool:
    """A connection where some field is not Lookout's reads its contacts before updating them:
    a correction made in Xero that no webhook or read has reported yet must not be overwritten
    (it is taken, or waits for a person, first)."""
    return any(direction != LOOKOUT for direction in directions_of(connection).values())


def _read_before_write(connection, client, batch: list[_Item]) -> list[_Item]:
    """Read the contacts this batch updates (one GET per 50) and apply what Xero shows. Items
    whose link learnt something (a value taken or waiting, a merge, a hold) leave the batch and
    stay queued: the next pass prepares them afresh, from what is now known."""
    updates = [item for item in batch if item.outcome == Outcome.UPDATED and item.link.last_sent]
    if not updates:
        return batch
    try:
        read = client.get_contacts_by_ids([item.link.xero_contact_id for item in updates])
    except XeroError as exc:
        _handle_request_error(connection, [item.entry for item in batch], exc)
        return []
    before = {id(item): _known(item.link) for item in updates}
    review_links(
        connection,
        [item.link for item in updates],
        {contact.contact_id: contact for contact in read},
        fetch=client.get_contacts_by_ids,
    )
    return [item for item in batch if before.get(id(item), _known(item.link)) == _known(item.link)]


def _known(link: XeroContactLink) -> tuple:
    return (link.xero_contact_id, link.state, link.drift, link.last_sent)


def _load_items(connection: XeroConnection, entries: list[OutboxEntry]) -> list[_Item]:
    """The entries' funders with their links; entries with nothing to push leave the outbox."""
    funder_ids = [e.funder_id for e in entries]
    funders = conf.funder_model().objects.in_bulk(funder_ids)
    links = {
        link.funder_id: link
        for link in XeroContactLink.objects.filter(connection=connection, funder_id__in=funder_ids)
    }
    items, leaving = [], []
    for entry in entries:
        funder = funders.get(entry.funder_id)
        link = links.get(entry.funder_id)
        if funder is None or organisation_id_of(funder) != connection.organisation_id:
            leaving.append(entry)  # deleted, or moved to another organisation
        elif (link and link.state == XeroContactLink.State.IGNORED) or not is_membership(funder):
            leaving.append(entry)  # out of scope: stop syncing, leave the Xero contact alone
        elif link and link.is_held:
            leaving.append(entry)  # archived, merged or under GDPR in Xero: a person decides
        elif is_archived(funder) and not _archives_in_xero(link):
            leaving.append(entry)  # archived, and nothing to archive in Xero
        else:
            link = link or XeroContactLink(connection=connection, funder=funder)
            items.append(_Item(entry, funder, link))
    _leave_outbox(leaving)
    return items


def _archives_in_xero(link: XeroContactLink | None) -> bool:
    return bool(
        conf.get("ARCHIVE_IN_XERO")
        and link
        and link.xero_contact_id
        and link.xero_contact_status != mapping.ARCHIVED
    )


def _prepare(item: _Item) -> bool:
    """Give the item what it would send; False when the funder's data cannot be sent."""
    if is_archived(item.funder):
        item.outcome = Outcome.ARCHIVED
        item.sent = mapping.archive_payload(item.link.xero_contact_id)
        return True
    item.clean = mapping.clean_contact(
        conf.mapping_function()(item.funder),
        number=mapping.contact_number(conf.get("CONTACT_NUMBER_PREFIX"), item.funder.pk),
    )
    if item.clean.error:
        return False
    if item.link.name_suffix:
        item.clean.payload["Name"] = name_with_suffix(item.clean.name, item.link.name_suffix)
    return True


def _needs_look_up(item: _Item) -> bool:
    """Not linked yet, and not looked for since its last failed try (a lost answer may have
    created it)."""
    return (
        item.outcome != Outcome.ARCHIVED
        and not item.link.xero_contact_id
        and item.link.matched_by != XeroContactLink.MatchedBy.PERSON
        and not item.entry.looked_up
    )


def _is_unchanged(item: _Item, *, by_hash_alone: bool = False) -> bool:
    """Xero already has exactly this: the same payload hash as the last successful push, or
    every value it would send is one Xero holds (a value taken from Xero, `_xero_holds`).

    `by_hash_alone` skips the second test, which reads the link's `last_sent`."""
    if item.outcome != Outcome.ARCHIVED:
        _prepare_upsert(item)
    item.sent_hash = mapping.payload_hash(item.sent)
    if item.link.state != XeroContactLink.State.SYNCED:
        return False
    if item.sent_hash == item.link.payload_hash:
        return True
    if not by_hash_alone and _xero_holds(item):
        # Remembered, so the next save's check is the plain hash comparison again.
        item.link.payload_hash = item.sent_hash
        item.link_changed = True
        return True
    return False


def _xero_holds(item: _Item) -> bool:
    """Every value this update would send is what Lookout knows Xero holds: its last push,
    with the values taken from Xero since (`corrections`), and Xero's own for the fields held.

    This is what stops a value taken from Xero from going back to Xero: the funder's save
    changes its payload (so its hash), not what Xero holds. Only an ordinary update qualifies:
    a forced push (`payload_hash` cleared), a restore or a first push always goes.
    """
    link = item.link
    if item.outcome != Outcome.UPDATED or item.message or not link.payload_hash:
        return False
    known = {**link.last_sent, **held(link)}
    return all(
        mapping.same_text(value, known.get(path, ""))
        for path, value in mapping.profile_values(item.sent).items()
    )


def would_write(funder, link: XeroContactLink | None) -> bool:
    """Whether a drain of this membership funder would write to Xero, decided locally.

    The reconcile asks it of every membership funder. Archived: only when its contact is to be
    archived. Otherwise: no contact yet, or the Contact it would send (mapped, cleaned, as
    `_prepare` builds it) differs from what Xero last received (the link's payload hash), a
    restore included. A link waiting for a person (conflict, failure, held in Xero, not synced
    by choice) is theirs to decide: a save, or their retry, queues it.
    """
    if link is not None and (link.state in WAITING_FOR_A_PERSON or link.is_held):
        return False
    if is_archived(funder):
        return _archives_in_xero(link)
    link = link or XeroContactLink(funder=funder)
    item = _Item(None, funder, link)
    if not _prepare(item):
        return True  # its data can no longer be sent: the drain records why, per funder
    # By the hash alone: reading `last_sent` would cost a query per differing funder. A funder
    # whose differing values were all taken from Xero is queued once; its drain sends nothing
    # and records the hash, so the next reconcile finds it unchanged.
    return not _is_unchanged(item, by_hash_alone=True)


WAITING_FOR_A_PERSON = (
    XeroContactLink.State.IGNORED,
    XeroContactLink.State.CONFLICT,
    XeroContactLink.State.FAILED,
)


def _look_up_existing(
    connection, client, to_send: list[_Item], to_look_up: list[_Item]
) -> list[_Item]:
    """Before creating, find contacts already in Xero (ours after a crash, or the bookkeeper's)."""
    try:
        found = client.find_contacts(
            numbers=[i.clean.payload["ContactNumber"] for i in to_look_up],
            emails=[i.clean.email for i in to_look_up],
            names=[i.clean.name for i in to_look_up],
        )
    except XeroError as exc:
        _handle_request_error(connection, [i.entry for i in to_send], exc)
        return []  # a permanent error: every entry was recorded as failed
    if found.refused:
        gone = _fail_refused(connection, to_look_up, found.refused)
        to_send = [item for item in to_send if id(item) not in gone]
        to_look_up = [item for item in to_look_up if id(item) not in gone]
    # Remembered: a drain that stops before its POST (pacing) does not look again.
    OutboxEntry.objects.filter(pk__in=[i.entry.pk for i in to_look_up]).update(looked_up=True)
    index = ContactIndex(found.contacts)
    claimed = set(
        XeroContactLink.objects.filter(
            connection=connection, xero_contact_id__in=list(index.by_id)
        ).values_list("xero_contact_id", flat=True)
    )
    looked_up = {id(i) for i in to_look_up}
    kept = []
    for item in to_send:
        if id(item) in looked_up:
            match = index.match(
                number=item.clean.payload["ContactNumber"],
                email=item.clean.email,
                name=item.clean.name,
                claimed=claimed,
            )
            if match.conflict:
                record_conflict(connection, item.entry.run, item.funder, item.link, match)
                _clear_entries([item.entry])
                continue
            if match.contact:
                link_to_contact(item.link, match)
                claimed.add(match.contact.contact_id)
                if item.link.is_held:  # found archived in Xero: not revived
                    _leave_outbox([item.entry])
                    continue
        kept.append(item)
    return kept


def _fail_refused(connection, to_look_up: list[_Item], refused: dict) -> set[int]:
    """Xero could not look these funders' values up (a 400): they fail, never created unlooked-
    for, and the rest of the batch goes on. Returns the ids of the items that failed."""
    failed = [item for item in to_look_up if _refused_for(item, refused)]
    for item in failed:
        message = wording.could_not_look_up(_refused_for(item, refused))
        _settle(item, Outcome.FAILED, http_status=400, message=message)
    _finish_items(connection, failed)
    return {id(item) for item in failed}


def _refused_for(item: _Item, refused: dict) -> XeroError | None:
    """Xero's 400 for one of the values this item was looked up by, if any."""
    for value in (item.clean.payload["ContactNumber"], item.clean.email, item.clean.name):
        if value in refused:
            return refused[value]
    return None


# Contacts that were someone else's before Lookout linked them: fill, never blank their data.
FOUND_IN_XERO = {
    XeroContactLink.MatchedBy.EMAIL,
    XeroContactLink.MatchedBy.NAME,
    XeroContactLink.MatchedBy.PERSON,
    XeroContactLink.MatchedBy.MERGE,  # the survivor of a merge is the bookkeeper's contact
}


def name_with_suffix(name: str, suffix: str) -> str:
    """A contact name with a distinguishing suffix, within Xero's 255 characters."""
    return name[: mapping.CONTACT_LIMITS["Name"] - len(suffix)].rstrip() + suffix


def _prepare_upsert(item: _Item) -> None:
    link = item.link
    payload = item.clean.payload
    if not link.xero_contact_id:
        item.outcome = Outcome.CREATED
    elif _restores(link):
        item.outcome = Outcome.RESTORED
    elif not link.payload_hash and link.matched_by == XeroContactLink.MatchedBy.MERGE:
        item.outcome, item.message = Outcome.UPDATED, wording.PUSHED_AFTER_MERGE
    elif not link.payload_hash and link.sent_fields:
        item.outcome, item.message = Outcome.UPDATED, wording.PUSHED_WHOLE_PROFILE
    elif not link.payload_hash:
        item.outcome = Outcome.LINKED  # first push to a contact found in Xero
    else:
        item.outcome = Outcome.UPDATED
    if link.matched_by in FOUND_IN_XERO:
        payload = mapping.fill_not_blank(payload, link.sent_fields)
    if link.keeps_own_number:
        payload = {key: value for key, value in payload.items() if key != "ContactNumber"}
    # Fields waiting for a person's decision get Xero's own value: nothing is written to them.
    payload = mapping.hold(payload, held(link))
    # Only a restore sets ContactStatus: an ordinary update leaves it to whoever set it.
    status = mapping.ACTIVE if item.outcome == Outcome.RESTORED else ""
    item.sent = mapping.with_identity(payload, contact_id=link.xero_contact_id, status=status)


def _restores(link: XeroContactLink) -> bool:
    """Lookout restores only a contact Lookout archived (or one a person asked it to restore)."""
    return (
        link.xero_contact_status == mapping.ARCHIVED
        and link.archived_by == XeroContactLink.ArchivedBy.LOOKOUT
    )


def _send_batch(connection: XeroConnection, client: XeroClient, batch: list[_Item]) -> None:
    if client.before_request:
        client.before_request(client)  # pace first: a wait must not undo the look-up below
    # If this worker dies before Xero answers, the next drain looks before creating again.
    OutboxEntry.objects.filter(pk__in=[i.entry.pk for i in batch]).update(looked_up=False)
    try:
        results = client.save_contacts(
            [i.sent for i in batch], idempotency_key=_idempotency_key(connection, batch)
        )
    except XeroValidationError as exc:
        if len(batch) > 1:
            # Xero refused the batch as a whole: send one by one so one bad funder blocks no one.
            for item in batch:
                _send_batch(connection, client, [item])
            return
        results = [ItemResult(False, "", "", [exc.message], [])]
    except XeroError as exc:
        _handle_request_error(connection, [i.entry for i in batch], exc)
        return
    for item, result in zip(batch, results, strict=True):
        _apply_result(item, result)
    _finish_items(connection, batch)
    surprises = [item.link for item in batch if item.surprised]
    if surprises:
        # Xero answered that a contact is archived or under a GDPR request, and Lookout did not
        # ask for that: the bookkeeper acted. Read it (a merge?) and follow, hold or resume.
        review_after_write(connection, client, surprises)


def _idempotency_key(connection: XeroConnection, batch: list[_Item]) -> str:
    """Same pending changes → same key, so a retry after a crash replays instead of duplicating.

    Each entry's id and version are part of it: a later change with an identical body (A→B→A)
    is a new request, not a replay of the first (ids are never reused; versions only grow).
    """
    material = json.dumps(
        [connection.pk, [(i.entry.pk, i.entry.version, i.sent) for i in batch]],
        sort_keys=True,
        default=str,
    )
    return "lx-" + hashlib.sha256(material.encode()).hexdigest()


def _apply_result(item: _Item, result: ItemResult) -> None:
    link = item.link
    if result.ok and not (result.contact_id or link.xero_contact_id):
        # Xero said OK but named no contact (an all-zero ContactID): nothing to link. Its next
        # push looks the funder up again before creating, so no duplicate either way.
        _settle(item, Outcome.FAILED, http_status=200, message=wording.NO_CONTACT_ID)
        return
    if result.ok:
        if item.outcome == Outcome.CREATED:
            link.matched_by = XeroContactLink.MatchedBy.CREATED
        link.xero_contact_id = result.contact_id or link.xero_contact_id
        asked = item.sent.get("ContactStatus", "")
        link.xero_contact_status = result.status or asked or mapping.ACTIVE
        item.surprised = not asked and link.xero_contact_status != mapping.ACTIVE
        if item.outcome == Outcome.ARCHIVED:
            link.payload_hash = ""  # the next push (a restore) must send the whole profile
            link.archived_by = XeroContactLink.ArchivedBy.LOOKOUT
        else:
            link.payload_hash = item.sent_hash
            # Once Lookout has set a field, it owns it: it stays sent, cleared or not.
            link.sent_fields = sorted(set(link.sent_fields) | set(mapping.filled_fields(item.sent)))
            waiting = held(link)
            # Held fields were sent as Xero has them: what Lookout sent before still stands.
            before = {path: link.last_sent[path] for path in waiting if path in link.last_sent}
            link.last_sent = {**mapping.profile_values(item.sent), **before}
            # Xero has Lookout's values again, except where a person is yet to decide.
            link.drift = {path: v for path, v in link.drift.items() if path in waiting}
            link.drift_seen_at = link.drift_seen_at if link.drift else None
            link.decision_since = link.decision_since if link.drift else None
        if item.outcome == Outcome.RESTORED:
            link.archived_by = ""
        link.state = XeroContactLink.State.SYNCED
        link.last_error = ""
        link.conflict_candidates = []
        link.last_synced_at = timezone.now()
        warnings = (item.clean.warnings if item.clean else []) + result.warnings
        _settle(item, item.outcome, http_status=200, message=item.message, warnings=warnings)
        return
    message = "; ".join(result.messages) or wording.NO_REASON_GIVEN
    outcome = Outcome.CONFLICT if NAME_CLASH in message else Outcome.FAILED
    _settle(item, outcome, http_status=200, message=message)


def _settle(item: _Item, outcome: str, *, http_status=None, message="", warnings=()) -> _Item:
    """Give an item its outcome; `_finish_items` records it."""
    item.outcome, item.http_status, item.message = outcome, http_status, message
    item.warnings = list(warnings)
    if outcome in (Outcome.FAILED, Outcome.CONFLICT):
        item.link.state = (
            XeroContactLink.State.CONFLICT
            if outcome == Outcome.CONFLICT
            else XeroContactLink.State.FAILED
        )
        item.link.last_error = message
    return item


def _finish_items(connection: XeroConnection, items: list[_Item]) -> None:
    """Record settled items: log rows first (their own commit), then links and outbox together."""
    if not items:
        return
    SyncLog.objects.bulk_create(
        log_row(
            connection,
            item.outcome,
            run=item.entry.run_id,
            funder=item.funder,
            contact_id=item.link.xero_contact_id,
            http_status=item.http_status,
            message=item.message,
            warnings=item.warnings,
        )
        for item in items
    )
    with transaction.atomic():
        for item in items:
            if item.outcome != Outcome.UNCHANGED or item.link_changed:
                item.link.save()
        _clear_entries([item.entry for item in items])
    _count_in_runs(items)
    if any(item.outcome not in (Outcome.FAILED, Outcome.CONFLICT) for item in items):
        XeroConnection.objects.filter(pk=connection.pk).update(last_synced_at=timezone.now())


def _count_in_runs(items: list[_Item]) -> None:
    """Each funder a run queued counts once in it; one archived meanwhile left its scope."""
    per_run: dict[int, Counter] = {}
    for item in items:
        if item.entry.run_id:
            counter = RUN_COUNTERS.get(item.outcome, "-in_scope")
            per_run.setdefault(item.entry.run_id, Counter())[counter] += 1
    for run_id, counts in per_run.items():
        left_scope = counts.pop("-in_scope", 0)
        changes = {key: F(key) + n for key, n in counts.items()}
        if left_scope:
            changes["in_scope"] = F("in_scope") - left_scope
        SyncRun.objects.filter(pk=run_id).update(**changes)
        complete_run_if_done(run_id)


RUN_COUNTERS = {
    Outcome.CREATED: "created",
    Outcome.LINKED: "linked",
    Outcome.UPDATED: "updated",
    Outcome.RESTORED: "updated",
    Outcome.UNCHANGED: "unchanged",
    Outcome.CONFLICT: "conflicts",
    Outcome.FAILED: "failed",
}


def _clear_entries(entries: list[OutboxEntry]) -> None:
    """Remove pushed entries, unless the funder changed again meanwhile (a newer version), or a
    full sync took the row over meanwhile: that run counts on the funder's push, so the next
    drain pushes it again for the run (unchanged, it costs no write)."""
    query = Q()
    for entry in entries:
        query |= Q(pk=entry.pk, version=entry.version, run_id=entry.run_id)
    if entries:
        OutboxEntry.objects.filter(query).delete()


def _leave_outbox(entries: list[OutboxEntry]) -> None:
    """Entries that end with no outcome: their funders left the runs that counted them."""
    _clear_entries(entries)
    for run_id, count in Counter(e.run_id for e in entries if e.run_id).items():
        SyncRun.objects.filter(pk=run_id).update(in_scope=F("in_scope") - count)


def _handle_request_error(connection, entries: list[OutboxEntry], exc: XeroError) -> None:
    """A whole request failed: stop, pause, wait, retry or give up, as `policy` decides.

    How long a retry waits depends on Xero, not on the funders: on how many of the
    organisation's calls failed in a row (`failures_in_a_row`). One failure among successes
    comes back in seconds, and the drain goes on with the organisation's other due funders
    meanwhile; while Xero keeps failing, the wait doubles and the drain stops until then.
    """
    in_a_row = failures_in_a_row(connection) + 1
    decision = react_to(exc, attempt=min(e.attempts for e in entries) + 1)
    if decision.reaction is Reaction.STOP:
        record_connection_error(connection, exc)
        raise StopDrain from None  # the entries wait for fixed credentials
    if decision.reaction is Reaction.PAUSE:
        pause_for_day_limit(connection, decision.seconds)
        raise StopDrain from None
    if decision.reaction is Reaction.WAIT:
        OutboxEntry.objects.filter(pk__in=[e.pk for e in entries]).update(
            due_at=timezone.now() + timedelta(seconds=decision.seconds)
        )
        raise RetryLater(decision.seconds) from None
    wait = backoff(in_a_row)
    retried = _retry_or_give_up(connection, entries, exc, wait)
    if retried and in_a_row > 1:
        raise RetryLater(wait) from None  # Xero failed the call before this one too


def failures_in_a_row(connection) -> int:
    """How many of the organisation's calls failed since Xero last answered one: the retries
    logged since its last successful push or its last answer carrying rate limits (any call
    Xero served; the pacer stores each before the next call). At most MAX_ATTEMPTS count.

    A funder whose batch keeps failing while other calls succeed is still given up after
    MAX_ATTEMPTS of its own tries."""
    logs = SyncLog.objects.filter(connection_id=connection.pk, outcome=Outcome.RETRYING)
    seen = (
        XeroConnection.objects.filter(pk=connection.pk)
        .values_list("last_synced_at", "limits_seen_at")
        .first()
    )
    answered = max((when for when in seen or () if when is not None), default=None)
    if answered is not None:
        logs = logs.filter(created_at__gt=answered)
    return len(logs.values_list("pk", flat=True)[: conf.get("MAX_ATTEMPTS")])


def _retry_or_give_up(connection, entries: list[OutboxEntry], exc: XeroError, wait: float) -> bool:
    """Per funder: try again after `wait`, or record the failure once it has failed
    MAX_ATTEMPTS times. Returns whether any will be tried again."""
    retried, exhausted = [], []
    for entry in entries:
        if react_to(exc, attempt=entry.attempts + 1).reaction is Reaction.RETRY:
            retried.append(entry.pk)
        else:
            exhausted.append(entry)
    if retried:
        OutboxEntry.objects.filter(pk__in=retried).update(
            attempts=F("attempts") + 1,
            due_at=timezone.now() + timedelta(seconds=wait),
            last_error=str(exc),
        )
        write_log(connection, Outcome.RETRYING, http_status=exc.status_code, message=str(exc))
    if exhausted:
        message = wording.gave_up(conf.get("MAX_ATTEMPTS"), exc) if exc.retryable else str(exc)
        _give_up(connection, exhausted, message, exc.status_code)
    return bool(retried)


def _give_up(connection, entries: list[OutboxEntry], message: str, http_status) -> None:
    """Record a permanent failure against each funder; their entries leave the outbox."""
    funders = conf.funder_model().objects.in_bulk([e.funder_id for e in entries])
    links = {
        link.funder_id: link
        for link in XeroContactLink.objects.filter(
            connection=connection, funder_id__in=list(funders)
        )
    }
    items = []
    for entry in entries:
        funder = funders.get(entry.funder_id)
        if funder is None:
            continue
        link = links.get(funder.pk) or XeroContactLink(connection=connection, funder=funder)
        items.append(
            _settle(
                _Item(entry, funder, link), Outcome.FAILED, http_status=http_status, message=message
            )
        )
    _leave_outbox([e for e in entries if e.funder_id not in funders])
    _finish_items(connection, items)
