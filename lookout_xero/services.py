"""The sync: the only place where the ORM meets the Xero client.

Flow: a funder save queues an outbox row (`queue_funder`); `drain` takes the organisation's lease
and pushes pending funders in batches; enabling a connection plans a full sync (`run_full_sync`)
that links funders to contacts already in Xero and queues everything in scope.
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import timedelta
from itertools import islice

from django.db import IntegrityError, transaction
from django.db.models import F, Min, Q
from django.utils import timezone

from . import conf, mapping
from .client import Credentials, ItemResult, Token, XeroClient
from .exceptions import (
    XeroAuthError,
    XeroError,
    XeroForbiddenError,
    XeroRateLimitError,
    XeroScopeError,
    XeroServerError,
    XeroTransportError,
    XeroValidationError,
)
from .matching import ContactIndex, Match
from .models import OutboxEntry, SyncLog, SyncRun, XeroConnection, XeroContactLink

logger = logging.getLogger(__name__)

Outcome = SyncLog.Outcome
NAME_CLASH = "already assigned to another contact"
# How many unlinked funders one `where` look-up asks about (keeps the URL short).
LOOKUP_CHUNK = 10
PLAN_CHUNK = 500


class StopDrain(Exception):
    """End this drain now; the connection's state says why (error, pause)."""


class RetryLater(Exception):
    """The work should run again after `seconds` (rate limit or a passing outage)."""

    def __init__(self, seconds: float) -> None:
        super().__init__(f"retry in {seconds:.0f}s")
        self.seconds = seconds


# --- scope: which funders belong in Xero ------------------------------------------------------


def is_membership(funder) -> bool:
    return getattr(funder, conf.get("MEMBERSHIP_FIELD")) == conf.get("MEMBERSHIP_VALUE")


def is_archived(funder) -> bool:
    return bool(getattr(funder, conf.get("ARCHIVED_FIELD")))


def organisation_id_of(funder):
    return getattr(funder, conf.get("ORGANISATION_FIELD") + "_id")


def funders_of(connection: XeroConnection):
    return conf.funder_model().objects.filter(
        **{conf.get("ORGANISATION_FIELD") + "_id": connection.organisation_id}
    )


def in_scope_funders(connection: XeroConnection):
    """Unarchived membership funders of the connection's organisation, and no one else's."""
    return funders_of(connection).filter(
        **{
            conf.get("MEMBERSHIP_FIELD"): conf.get("MEMBERSHIP_VALUE"),
            conf.get("ARCHIVED_FIELD"): False,
        }
    )


# --- the switch ---------------------------------------------------------------------------------


def before_connection_save(connection: XeroConnection) -> set[str]:
    """Note what this save changes, so `after_connection_save` can act on it.

    Returns the fields beyond the editable ones that this save must write.
    """
    touched: set[str] = set()
    previous = XeroConnection.objects.filter(pk=connection.pk).first() if connection.pk else None
    credentials_changed = previous is None or (
        (previous.client_id, previous.client_secret, previous.scope)
        != (connection.client_id, connection.client_secret, connection.scope)
    )
    if previous is None or previous.client_secret != connection.client_secret:
        connection.client_secret_set_at = timezone.now()
        touched.add("client_secret_set_at")
    if credentials_changed and previous is not None:
        # New credentials: the old token and the old verdict on them no longer hold.
        connection.access_token = ""
        connection.access_token_expires_at = None
        _clear_error(connection)
        touched |= {
            "access_token",
            "access_token_expires_at",
            "state",
            "error_code",
            "error_message",
        }
    connection._lx_enabling = connection.enabled and not (previous and previous.enabled)
    connection._lx_disabling = bool(previous and previous.enabled and not connection.enabled)
    connection._lx_credentials_changed = credentials_changed and previous is not None
    # Another Client ID is probably another Xero organisation: only a full sync is safe then.
    connection._lx_client_changed = bool(previous and previous.client_id != connection.client_id)
    return touched


def after_connection_save(connection: XeroConnection) -> None:
    if connection._lx_enabling:
        start_full_sync(connection, trigger=SyncRun.Trigger.ENABLED)
    elif connection._lx_disabling:
        stop_syncing(connection)
    elif connection._lx_credentials_changed and connection.enabled:
        # Fixed credentials resume the work that was waiting for them.
        last_run = connection.runs.filter(dry_run=False).first()
        if connection._lx_client_changed or (last_run and last_run.status == SyncRun.Status.FAILED):
            start_full_sync(connection, trigger=SyncRun.Trigger.MANUAL)
        else:
            enqueue_drain_on_commit(connection.pk)


def start_full_sync(connection: XeroConnection, *, trigger: str) -> SyncRun:
    """Record a full sync and start it once the surrounding transaction commits."""
    connection.runs.filter(
        dry_run=False, status__in=[SyncRun.Status.PENDING, SyncRun.Status.RUNNING]
    ).update(
        status=SyncRun.Status.CANCELLED,
        finished_at=timezone.now(),
        message="Replaced by a new run.",
    )
    run = SyncRun.objects.create(connection=connection, trigger=trigger)
    transaction.on_commit(lambda: _send("start_full_sync", run.pk))
    return run


def stop_syncing(connection: XeroConnection) -> None:
    """Disabled: drop what was waiting (the next enable syncs everything) and end any run."""
    OutboxEntry.objects.filter(connection=connection).delete()
    connection.runs.filter(
        dry_run=False, status__in=[SyncRun.Status.PENDING, SyncRun.Status.RUNNING]
    ).update(
        status=SyncRun.Status.CANCELLED, finished_at=timezone.now(), message="Sync was disabled."
    )


# --- the outbox -------------------------------------------------------------------------------


def queue_funder(connection_id: int, funder_id) -> None:
    """Upsert the funder's outbox row: a hundred saves of one funder are one pending push."""
    now = timezone.now()
    updated = OutboxEntry.objects.filter(connection_id=connection_id, funder_id=funder_id).update(
        version=F("version") + 1, due_at=now, attempts=0, last_error=""
    )
    if not updated:
        try:
            with transaction.atomic():
                OutboxEntry.objects.create(
                    connection_id=connection_id, funder_id=funder_id, due_at=now
                )
        except IntegrityError:  # a concurrent save created it first
            OutboxEntry.objects.filter(connection_id=connection_id, funder_id=funder_id).update(
                version=F("version") + 1, due_at=now, attempts=0
            )


class _DrainOnCommit:
    """An on-commit callback that knows its connection, so one transaction enqueues one drain."""

    def __init__(self, connection_id: int) -> None:
        self.connection_id = connection_id

    def __call__(self) -> None:
        _send("drain_outbox", self.connection_id)


def enqueue_drain_on_commit(connection_id: int) -> None:
    db = transaction.get_connection()
    # Django drops a rolled-back block's callbacks from this list, so the check stays right.
    for _sids, func, _robust in db.run_on_commit:
        if isinstance(func, _DrainOnCommit) and func.connection_id == connection_id:
            return
    transaction.on_commit(_DrainOnCommit(connection_id))


def _send(task_name: str, *args, countdown: float | None = None) -> None:
    """Enqueue a task; a broker outage is logged, not raised: the outbox sweep catches up."""
    from . import tasks

    try:
        getattr(tasks, task_name).apply_async(args=args, countdown=countdown)
    except Exception as exc:
        logger.warning("Could not enqueue %s%s (%s); the sweep will retry", task_name, args, exc)


# --- Xero client for a connection -------------------------------------------------------------


def client_for(connection: XeroConnection) -> XeroClient:
    token = None
    if connection.access_token and connection.access_token_expires_at:
        token = Token(connection.access_token, connection.access_token_expires_at)

    def store(new: Token) -> None:
        XeroConnection.objects.filter(pk=connection.pk).update(
            access_token=new.access_token, access_token_expires_at=new.expires_at
        )
        connection.access_token, connection.access_token_expires_at = (
            new.access_token,
            new.expires_at,
        )

    return XeroClient(
        Credentials(connection.client_id, connection.client_secret, connection.scope.strip()),
        token=token,
        on_new_token=store,
    )


def _remember_limits(connection: XeroConnection, client: XeroClient) -> None:
    limits = client.limits
    if limits.minute_remaining is None and limits.day_remaining is None:
        return
    XeroConnection.objects.filter(pk=connection.pk).update(
        min_limit_remaining=limits.minute_remaining,
        day_limit_remaining=limits.day_remaining,
        limits_seen_at=timezone.now(),
    )


def _clear_error(connection: XeroConnection) -> None:
    connection.state = XeroConnection.State.OK
    connection.error_code = ""
    connection.error_message = ""


def record_connection_error(
    connection: XeroConnection, exc: XeroError, run: SyncRun | None = None
) -> None:
    """Credentials refused or access revoked: a person must act, so stop and say why."""
    code = exc.code or ("forbidden" if isinstance(exc, XeroForbiddenError) else "unauthorized")
    XeroConnection.objects.filter(pk=connection.pk).update(
        state=XeroConnection.State.ERROR,
        error_code=code,
        error_message=str(exc),
        access_token="",
        access_token_expires_at=None,
    )
    _log(
        connection, Outcome.CONNECTION_ERROR, run=run, message=str(exc), http_status=exc.status_code
    )
    if run:
        _finish_run(run, SyncRun.Status.FAILED, message=str(exc))


def _pause_for_day_limit(connection: XeroConnection, exc: XeroRateLimitError, run=None) -> None:
    until = timezone.now() + timedelta(seconds=exc.retry_after or 3600)
    XeroConnection.objects.filter(pk=connection.pk).update(paused_until=until)
    _log(
        connection,
        Outcome.PAUSED,
        run=run,
        http_status=429,
        message=f"Xero's daily call limit is used up; sync resumes at {until:%Y-%m-%d %H:%M} UTC.",
    )


# --- full sync --------------------------------------------------------------------------------


def run_full_sync(run_id: int) -> None:
    """Link in-scope funders to existing Xero contacts and queue them all for pushing.

    A preview run (``dry_run``) makes the same decisions and only writes its report.
    """
    run = SyncRun.objects.select_related("connection").filter(pk=run_id).first()
    if run is None or run.status != SyncRun.Status.PENDING:
        return  # done, cancelled, or another worker is planning it
    connection = run.connection
    if not connection.enabled and not run.dry_run:
        _finish_run(run, SyncRun.Status.CANCELLED, message="Sync was disabled.")
        return
    if connection.is_paused or (connection.state == XeroConnection.State.ERROR and not run.dry_run):
        return  # the sweep starts it again once the connection is usable
    claimed = SyncRun.objects.filter(pk=run.pk, status=SyncRun.Status.PENDING).update(
        status=SyncRun.Status.RUNNING, started_at=run.started_at or timezone.now()
    )
    if not claimed:
        return
    try:
        index = _read_contacts(connection, run)
    except (RetryLater, XeroError):
        _unclaim(run)  # tried again by the task's retry or by the sweep
        raise
    if index is None:
        _unclaim(run)  # paused by Xero's day limit (a refused connection has failed the run)
        return
    report = _plan(connection, run, index)
    if report is None:
        return  # disabled part-way
    SyncRun.objects.filter(pk=run.pk).update(planned_at=timezone.now())
    if run.dry_run:
        SyncRun.objects.filter(pk=run.pk).update(report=report)
        _finish_run(run, SyncRun.Status.COMPLETED)
    elif report["counts"]["queued"]:
        enqueue_drain_on_commit(connection.pk)
    else:
        _complete_run_if_done(run.pk)


def _unclaim(run: SyncRun) -> None:
    SyncRun.objects.filter(pk=run.pk, status=SyncRun.Status.RUNNING).update(
        status=SyncRun.Status.PENDING
    )


def _read_contacts(connection: XeroConnection, run: SyncRun) -> ContactIndex | None:
    """Every contact of the organisation (archived included), or None when it cannot be read."""
    client = client_for(connection)
    try:
        tenants = client.get_tenants()
        if tenants and not run.dry_run:
            _note_tenant(connection, run, tenants[0])
        return ContactIndex(client.iter_contacts(page_size=conf.get("PAGE_SIZE")))
    except (XeroAuthError, XeroForbiddenError) as exc:
        if run.dry_run:
            _finish_run(run, SyncRun.Status.FAILED, message=str(exc))
        else:
            record_connection_error(connection, exc, run)
        return None
    except XeroRateLimitError as exc:
        if exc.limit == "day":
            _pause_for_day_limit(connection, exc, run)
            return None
        raise RetryLater(exc.retry_after or 60) from None
    finally:
        _remember_limits(connection, client)


def _note_tenant(connection: XeroConnection, run: SyncRun, tenant) -> None:
    """Remember the Xero organisation; if it is a different one, forget the old links."""
    if connection.xero_tenant_id and connection.xero_tenant_id != tenant.tenant_id:
        XeroContactLink.objects.filter(connection=connection).update(
            xero_contact_id="",
            xero_contact_status="",
            matched_by="",
            payload_hash="",
            sent_fields=[],
            state=XeroContactLink.State.PENDING,
        )
        _log(
            connection,
            Outcome.RUN,
            run=run,
            message=f"These credentials reach another Xero organisation ({tenant.name}); "
            "links to the previous organisation's contacts were reset.",
        )
    XeroConnection.objects.filter(pk=connection.pk).update(
        xero_tenant_id=tenant.tenant_id, xero_tenant_name=tenant.name
    )


def _plan(connection: XeroConnection, run: SyncRun, index: ContactIndex) -> dict | None:
    funders = in_scope_funders(connection).order_by("pk")
    SyncRun.objects.filter(pk=run.pk).update(in_scope=funders.count())
    claimed = set(
        XeroContactLink.objects.filter(connection=connection)
        .exclude(xero_contact_id="")
        .values_list("xero_contact_id", flat=True)
    )
    report: dict = {"create": [], "link": [], "conflict": [], "invalid": [], "warnings": []}
    counts = Counter()
    iterator = funders.iterator(chunk_size=PLAN_CHUNK)
    while chunk := list(islice(iterator, PLAN_CHUNK)):
        # Disabling or cancelling takes effect between chunks, even in the middle of a full sync.
        if not run.dry_run and not (
            XeroConnection.objects.filter(pk=connection.pk, enabled=True).exists()
            and SyncRun.objects.filter(pk=run.pk, status=SyncRun.Status.RUNNING).exists()
        ):
            return None
        _plan_chunk(connection, run, chunk, index, claimed, report, counts)
    # A preview lists funders (capped, for the page) and counts everything.
    report["counts"] = {key: counts[key] for key in ("queued", *REPORT_KEYS, "already_linked")}
    return report


REPORT_KEYS = ("create", "link", "conflict", "invalid", "warnings")
REPORT_LIST_LIMIT = 500


def _plan_chunk(connection, run, funders, index, claimed, report, counts) -> None:
    links = {
        link.funder_id: link
        for link in XeroContactLink.objects.filter(connection=connection, funder__in=funders)
    }
    number_prefix = conf.get("CONTACT_NUMBER_PREFIX")
    map_raw = conf.mapping_function()
    to_queue = []

    def note(key: str, funder, **extra) -> None:
        counts[key] += 1
        if len(report[key]) < REPORT_LIST_LIMIT:
            report[key].append({"funder_id": funder.pk, "name": str(funder), **extra})

    for funder in funders:
        link = links.get(funder.pk) or XeroContactLink(connection=connection, funder=funder)
        if link.state == XeroContactLink.State.IGNORED:
            continue
        clean = mapping.clean_contact(
            map_raw(funder), number=mapping.contact_number(number_prefix, funder.pk)
        )
        if clean.error:
            note("invalid", funder, error=clean.error)
        elif clean.warnings:
            note("warnings", funder, warnings=clean.warnings)
        if link.xero_contact_id and link.xero_contact_id not in index.by_id:
            # The contact is gone from Xero (merged or removed): find or create it afresh.
            claimed.discard(link.xero_contact_id)
            if not run.dry_run:
                link.xero_contact_id, link.payload_hash, link.matched_by = "", "", ""
                link.sent_fields = []
                link.save()
        if link.xero_contact_id and link.xero_contact_id in index.by_id:
            counts["already_linked"] += 1
        elif not clean.error:
            found = index.match(
                number=clean.payload["ContactNumber"],
                email=clean.email,
                name=clean.name,
                claimed=claimed,
            )
            if found.conflict:
                note("conflict", funder, reason=found.conflict, candidates=_candidates(found))
                if not run.dry_run:
                    _record_conflict(connection, run, funder, link, found)
                continue
            if found.contact:
                note(
                    "link",
                    funder,
                    rule=found.rule,
                    contact_id=found.contact.contact_id,
                    contact_name=found.contact.name,
                )
                claimed.add(found.contact.contact_id)
                if not run.dry_run:
                    _link(link, found)
            else:
                note("create", funder)
        to_queue.append(funder.pk)
    counts["queued"] += len(to_queue)
    if run.dry_run:
        return
    now = timezone.now()
    OutboxEntry.objects.bulk_create(
        [
            OutboxEntry(connection=connection, funder_id=pk, run=run, due_at=now, looked_up=True)
            for pk in to_queue
        ],
        update_conflicts=True,
        unique_fields=["connection", "funder"],
        update_fields=["run", "due_at", "looked_up", "attempts"],
    )


def _candidates(found: Match) -> list[dict]:
    return [
        {"contact_id": c.contact_id, "name": c.name, "email": c.email, "status": c.status}
        for c in found.candidates
    ]


def _link(link: XeroContactLink, found: Match) -> None:
    link.xero_contact_id = found.contact.contact_id
    link.xero_contact_status = found.contact.status
    link.matched_by = found.rule
    link.payload_hash = ""
    link.sent_fields = []
    link.state = XeroContactLink.State.PENDING
    link.conflict_candidates = []
    link.last_error = ""
    link.save()


def _record_conflict(connection, run, funder, link: XeroContactLink, found: Match) -> None:
    link.state = XeroContactLink.State.CONFLICT
    link.last_error = found.conflict
    link.conflict_candidates = _candidates(found)
    link.save()
    _log(connection, Outcome.CONFLICT, run=run, funder=funder, message=found.conflict)
    if run:
        SyncRun.objects.filter(pk=run.pk).update(conflicts=F("conflicts") + 1)


# --- drain: push pending funders --------------------------------------------------------------


def drain(connection_id: int) -> float | None:
    """Push this organisation's pending funders. Returns seconds until more work is due, if any.

    Only one drain per organisation runs at a time, across all workers and machines.
    """
    lease = _acquire_lease(connection_id)
    if lease is None:
        return None  # another worker is draining; it loops until the outbox is empty
    try:
        wait = _drain_batches(connection_id, lease)
    finally:
        XeroConnection.objects.filter(pk=connection_id, lease_token=lease).update(
            lease_token="", lease_expires_at=None
        )
    if wait is None:
        # A funder queued while we held the lease had its own drain turned away: pick it up.
        wait = next_due_in(connection_id)
    return wait


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


def _acquire_lease(connection_id: int) -> str | None:
    token = uuid.uuid4().hex
    now = timezone.now()
    taken = (
        XeroConnection.objects.filter(pk=connection_id)
        .filter(Q(lease_expires_at__isnull=True) | Q(lease_expires_at__lt=now))
        .update(
            lease_token=token, lease_expires_at=now + timedelta(seconds=conf.get("LEASE_SECONDS"))
        )
    )
    return token if taken else None


def _drain_batches(connection_id: int, lease: str) -> float | None:
    client = None
    while True:
        connection = XeroConnection.objects.filter(pk=connection_id, lease_token=lease).first()
        if connection is None:
            return None  # lease lost (expired and taken): the new holder carries on
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
        XeroConnection.objects.filter(pk=connection_id, lease_token=lease).update(
            lease_expires_at=timezone.now() + timedelta(seconds=conf.get("LEASE_SECONDS"))
        )
        client = client or client_for(connection)
        try:
            _push_batch(connection, client, entries)
        except RetryLater as later:
            return later.seconds
        except StopDrain:
            return None
        finally:
            _remember_limits(connection, client)
        reserve = conf.get("MIN_LIMIT_RESERVE")
        left = client.limits.minute_remaining
        if left is not None and left <= reserve:
            # Slow down before Xero has to say 429: spread what is left of this minute.
            return 60.0 / (left + 1)


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


def _push_batch(connection: XeroConnection, client: XeroClient, entries: list[OutboxEntry]) -> None:
    funders = {
        f.pk: f for f in conf.funder_model().objects.filter(pk__in=[e.funder_id for e in entries])
    }
    links = {
        link.funder_id: link
        for link in XeroContactLink.objects.filter(
            connection=connection, funder_id__in=[e.funder_id for e in entries]
        )
    }
    number_prefix = conf.get("CONTACT_NUMBER_PREFIX")
    map_raw = conf.mapping_function()
    to_send: list[_Item] = []
    to_look_up: list[_Item] = []
    settled: list[_Item] = []
    for entry in entries:
        funder = funders.get(entry.funder_id)
        if funder is None or organisation_id_of(funder) != connection.organisation_id:
            _clear_entries([entry])  # deleted, or moved to another organisation
            continue
        item = _Item(
            entry,
            funder,
            links.get(funder.pk) or XeroContactLink(connection=connection, funder=funder),
        )
        if item.link.state == XeroContactLink.State.IGNORED or not is_membership(funder):
            _clear_entries([entry])  # out of scope: stop syncing, leave the Xero contact alone
            continue
        if is_archived(funder):
            if (
                conf.get("ARCHIVE_IN_XERO")
                and item.link.xero_contact_id
                and item.link.xero_contact_status != mapping.ARCHIVED
            ):
                item.outcome = Outcome.ARCHIVED
                item.sent = mapping.archive_payload(item.link.xero_contact_id)
                to_send.append(item)
            else:
                _clear_entries([entry])
            continue
        item.clean = mapping.clean_contact(
            map_raw(funder), number=mapping.contact_number(number_prefix, funder.pk)
        )
        if item.clean.error:
            settled.append(_settle(item, Outcome.FAILED, message=item.clean.error))
            continue
        if item.link.name_suffix:
            item.clean.payload["Name"] = name_with_suffix(item.clean.name, item.link.name_suffix)
        chosen_by_person = item.link.matched_by == XeroContactLink.MatchedBy.PERSON
        if (
            not item.link.xero_contact_id
            and not chosen_by_person
            and (not entry.looked_up or entry.attempts)
        ):
            to_look_up.append(item)
        to_send.append(item)

    if to_look_up:
        to_send = _look_up_existing(connection, client, to_send, to_look_up)

    batch: list[_Item] = []
    for item in to_send:
        if item.outcome != Outcome.ARCHIVED:
            _prepare_upsert(item)
        item.sent_hash = mapping.payload_hash(item.sent)
        if (
            item.sent_hash == item.link.payload_hash
            and item.link.state == XeroContactLink.State.SYNCED
        ):
            settled.append(_settle(item, Outcome.UNCHANGED))
        else:
            batch.append(item)
    _finish_items(connection, settled)
    if batch:
        _send_batch(connection, client, batch)
    # Entries can also leave without an outcome (funder deleted or out of scope meanwhile).
    for run_id in {entry.run_id for entry in entries if entry.run_id}:
        _complete_run_if_done(run_id)


def _look_up_existing(
    connection, client, to_send: list[_Item], to_look_up: list[_Item]
) -> list[_Item]:
    """Before creating, find contacts already in Xero (ours after a crash, or the bookkeeper's)."""
    found = []
    for start in range(0, len(to_look_up), LOOKUP_CHUNK):
        chunk = to_look_up[start : start + LOOKUP_CHUNK]
        try:
            found += client.find_contacts(
                numbers=[i.clean.payload["ContactNumber"] for i in chunk],
                emails=[i.clean.email for i in chunk],
                names=[i.clean.name for i in chunk],
            )
        except XeroError as exc:
            _handle_request_error(connection, [i.entry for i in to_send], exc)
            return []  # a permanent error: every entry was recorded as failed
    index = ContactIndex(found)
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
                _record_conflict(connection, item.entry.run, item.funder, item.link, match)
                _clear_entries([item.entry])
                continue
            if match.contact:
                _link(item.link, match)
                claimed.add(match.contact.contact_id)
        kept.append(item)
    return kept


# Contacts that were someone else's before Lookout linked them: fill, never blank their data.
FOUND_IN_XERO = {
    XeroContactLink.MatchedBy.EMAIL,
    XeroContactLink.MatchedBy.NAME,
    XeroContactLink.MatchedBy.PERSON,
}


def name_with_suffix(name: str, suffix: str) -> str:
    """A contact name with a distinguishing suffix, within Xero's 255 characters."""
    return name[: mapping.CONTACT_LIMITS["Name"] - len(suffix)].rstrip() + suffix


def _prepare_upsert(item: _Item) -> None:
    link = item.link
    payload = item.clean.payload
    if not link.xero_contact_id:
        item.outcome = Outcome.CREATED
    elif link.xero_contact_status == mapping.ARCHIVED:
        item.outcome = Outcome.RESTORED
    elif not link.payload_hash:
        item.outcome = Outcome.LINKED  # first push to a contact found in Xero
    else:
        item.outcome = Outcome.UPDATED
    if link.matched_by in FOUND_IN_XERO:
        payload = mapping.fill_not_blank(payload, link.sent_fields)
    item.sent = mapping.with_identity(payload, contact_id=link.xero_contact_id)


def _send_batch(connection: XeroConnection, client: XeroClient, batch: list[_Item]) -> None:
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
    if result.ok:
        if item.outcome == Outcome.CREATED:
            link.matched_by = XeroContactLink.MatchedBy.CREATED
        link.xero_contact_id = result.contact_id or link.xero_contact_id
        link.xero_contact_status = result.status or item.sent.get("ContactStatus", mapping.ACTIVE)
        if item.outcome == Outcome.ARCHIVED:
            link.payload_hash = ""  # the next push (a restore) must send the whole profile
        else:
            link.payload_hash = item.sent_hash
            # Once Lookout has set a field, it owns it: it stays sent, cleared or not.
            link.sent_fields = sorted(set(link.sent_fields) | set(mapping.filled_fields(item.sent)))
        link.state = XeroContactLink.State.SYNCED
        link.last_error = ""
        link.conflict_candidates = []
        link.last_synced_at = timezone.now()
        warnings = (item.clean.warnings if item.clean else []) + result.warnings
        _settle(item, item.outcome, http_status=200, warnings=warnings)
        return
    message = "; ".join(result.messages) or "Xero refused this contact without saying why."
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
        _log_row(
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
            if item.outcome != Outcome.UNCHANGED:
                item.link.save()
        _clear_entries([item.entry for item in items])
    per_run: dict[int, Counter] = {}
    for item in items:
        counter = RUN_COUNTERS.get(item.outcome)
        if item.entry.run_id and counter:
            per_run.setdefault(item.entry.run_id, Counter())[counter] += 1
    for run_id, counts in per_run.items():
        SyncRun.objects.filter(pk=run_id).update(**{k: F(k) + n for k, n in counts.items()})
        _complete_run_if_done(run_id)
    if any(item.outcome not in (Outcome.FAILED, Outcome.CONFLICT) for item in items):
        XeroConnection.objects.filter(pk=connection.pk).update(last_synced_at=timezone.now())


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
    """Remove pushed entries, unless the funder changed again meanwhile (a newer version)."""
    query = Q()
    for entry in entries:
        query |= Q(pk=entry.pk, version=entry.version)
    if entries:
        OutboxEntry.objects.filter(query).delete()


def _handle_request_error(connection, entries: list[OutboxEntry], exc: XeroError) -> None:
    """A whole request failed: decide between stop, pause, retry later, and give up."""
    if isinstance(exc, (XeroAuthError, XeroForbiddenError)):
        record_connection_error(connection, exc)
        raise StopDrain from None  # the entries wait for fixed credentials
    if isinstance(exc, XeroRateLimitError):
        if exc.limit == "day":
            _pause_for_day_limit(connection, exc)
            raise StopDrain from None
        wait = exc.retry_after or (1 if exc.limit == "concurrent" else 60)
        OutboxEntry.objects.filter(pk__in=[e.pk for e in entries]).update(
            due_at=timezone.now() + timedelta(seconds=wait)
        )
        raise RetryLater(wait) from None
    if exc.retryable:
        _retry_or_give_up(connection, entries, exc)
        raise RetryLater(_backoff(max(e.attempts for e in entries) + 1)) from None
    # Permanent (404, unexpected 4xx): record against each funder, do not retry forever.
    _give_up(connection, entries, str(exc), exc.status_code)


def _retry_or_give_up(connection, entries: list[OutboxEntry], exc: XeroError) -> None:
    max_attempts = conf.get("MAX_ATTEMPTS")
    exhausted = [e for e in entries if e.attempts + 1 >= max_attempts]
    for entry in entries:
        if entry not in exhausted:
            OutboxEntry.objects.filter(pk=entry.pk).update(
                attempts=F("attempts") + 1,
                due_at=timezone.now() + timedelta(seconds=_backoff(entry.attempts + 1)),
                last_error=str(exc),
            )
    _give_up(
        connection, exhausted, f"Gave up after {max_attempts} attempts: {exc}", exc.status_code
    )
    _log(connection, Outcome.RETRYING, http_status=exc.status_code, message=str(exc))


def _give_up(connection, entries: list[OutboxEntry], message: str, http_status) -> None:
    """Record a permanent failure against each funder; their entries leave the outbox."""
    funders = conf.funder_model().objects.in_bulk([e.funder_id for e in entries])
    links = {
        link.funder_id: link
        for link in XeroContactLink.objects.filter(
            connection=connection, funder_id__in=list(funders)
        )
    }
    items = [
        _settle(
            _Item(
                e,
                funders[e.funder_id],
                links.get(e.funder_id)
                or XeroContactLink(connection=connection, funder=funders[e.funder_id]),
            ),
            Outcome.FAILED,
            http_status=http_status,
            message=message,
        )
        for e in entries
        if e.funder_id in funders
    ]
    _clear_entries([e for e in entries if e.funder_id not in funders])
    _finish_items(connection, items)


def _backoff(attempt: int) -> float:
    """Exponential backoff with full jitter, bounded."""
    ceiling = min(
        conf.get("RETRY_MAX_SECONDS"), conf.get("RETRY_BASE_SECONDS") * 2 ** (attempt - 1)
    )
    return random.uniform(ceiling / 2, ceiling)  # noqa: S311 - jitter, not security


# --- runs and logs ----------------------------------------------------------------------------


def _complete_run_if_done(run_id: int) -> None:
    if OutboxEntry.objects.filter(run_id=run_id).exists():
        return
    run = SyncRun.objects.filter(
        pk=run_id, status=SyncRun.Status.RUNNING, planned_at__isnull=False
    ).first()
    if run:
        _finish_run(run, SyncRun.Status.COMPLETED)


def _finish_run(run: SyncRun, status: str, message: str = "") -> None:
    now = timezone.now()
    SyncRun.objects.filter(pk=run.pk).update(status=status, finished_at=now, message=message)
    if status == SyncRun.Status.COMPLETED:
        XeroConnection.objects.filter(pk=run.connection_id).update(last_synced_at=now)
    kind = "Preview" if run.dry_run else "Full sync"
    _log(run.connection, Outcome.RUN, run=run, message=f"{kind} {status}. {message}".strip())


def _log(connection, outcome, **fields) -> None:
    """Sync log rows are written on their own, so they survive a rollback of the work."""
    _log_row(connection, outcome, **fields).save()


def _log_row(
    connection,
    outcome,
    *,
    run=None,
    funder=None,
    contact_id="",
    http_status=None,
    message="",
    warnings=None,
) -> SyncLog:
    return SyncLog(
        connection_id=connection.pk,
        run_id=run.pk if isinstance(run, SyncRun) else run,
        funder=funder,
        funder_name=str(getattr(funder, "name", "") or "")[:300],
        funder_email=str(getattr(funder, "email", "") or "")[:300],
        xero_contact_id=contact_id or "",
        outcome=outcome,
        http_status=http_status,
        message=message,
        warnings=warnings or [],
    )


# --- what people ask for (admin actions, commands) --------------------------------------------


@dataclass(frozen=True)
class CredentialCheck:
    ok: bool
    message: str
    tenant_name: str = ""


def check_credentials(client_id: str, client_secret: str, scope: str) -> CredentialCheck:
    """Ask Xero for a token and the organisation with these credentials. Changes nothing."""
    client = XeroClient(Credentials(client_id.strip(), client_secret, scope.strip()), timeout=10)
    try:
        tenants = client.get_tenants()
    except XeroScopeError:
        return CredentialCheck(
            False,
            "Xero refused the scope: this custom connection does not allow "
            f"'{scope.strip()}'. Connections created since April 2026 need the Scope left empty.",
        )
    except XeroAuthError:
        return CredentialCheck(
            False,
            "Xero did not accept this Client ID and Client Secret. Check both in the customer's "
            "Xero developer portal (My Apps), or generate a new secret there.",
        )
    except XeroForbiddenError:
        return CredentialCheck(
            False, "Xero refused access: the custom connection may have been revoked."
        )
    except XeroTransportError:
        return CredentialCheck(False, "Could not reach Xero: no network, or Xero is not answering.")
    except XeroServerError as exc:
        return CredentialCheck(
            False, f"Xero is down or failing right now ({exc.status_code}). Try again soon."
        )
    except XeroError as exc:
        return CredentialCheck(False, f"Xero answered unexpectedly: {exc}")
    if not tenants:
        return CredentialCheck(
            False,
            "The credentials work, but no Xero organisation has authorised this connection yet.",
        )
    return CredentialCheck(
        True, f"Connected to the Xero organisation “{tenants[0].name}”.", tenants[0].name
    )


def start_preview(connection: XeroConnection, *, enqueue: bool = True) -> SyncRun:
    """A dry run: what enabling would do, read from Xero, nothing written to Xero.

    Queued for a worker, or (``enqueue=False``) left for the caller to run with `run_full_sync`.
    """
    run = SyncRun.objects.create(
        connection=connection, trigger=SyncRun.Trigger.MANUAL, dry_run=True
    )
    if enqueue:
        transaction.on_commit(lambda: _send("start_full_sync", run.pk))
    return run


def cancel_run(run: SyncRun, *, by: str = "") -> bool:
    """Stop a full sync: planning stops at its next chunk, and what it queued is not pushed.

    Funders edited since the run queued them (a newer outbox version) stay queued: those are
    changes a person made, not the run's.
    """
    cancelled = SyncRun.objects.filter(
        pk=run.pk, status__in=[SyncRun.Status.PENDING, SyncRun.Status.RUNNING]
    ).update(
        status=SyncRun.Status.CANCELLED,
        finished_at=timezone.now(),
        message=f"Cancelled by {by}." if by else "Cancelled.",
    )
    if cancelled:
        OutboxEntry.objects.filter(run=run, version=1).delete()
        OutboxEntry.objects.filter(run=run).update(run=None)
    return bool(cancelled)


def push_now(connection: XeroConnection, funder_ids) -> int:
    """Queue these funders for pushing now (also brings back one set to "do not sync")."""
    if not connection.enabled:
        return 0
    ids = list(funder_ids)
    XeroContactLink.objects.filter(
        connection=connection, funder_id__in=ids, state=XeroContactLink.State.IGNORED
    ).update(state=XeroContactLink.State.PENDING)
    for funder_id in ids:
        queue_funder(connection.pk, funder_id)
    enqueue_drain_on_commit(connection.pk)
    return len(ids)


def retry_failed(connection: XeroConnection) -> int:
    """Queue every funder whose last push failed (conflicts wait for a person instead)."""
    ids = XeroContactLink.objects.filter(connection=connection, state=XeroContactLink.State.FAILED)
    return push_now(connection, ids.values_list("funder_id", flat=True))


def resolve_conflict(
    link: XeroContactLink, *, contact_id: str = "", create_new=False, ignore=False
) -> None:
    """A person's decision on a conflict: link to a contact, create a distinct one, or skip."""
    if ignore:
        link.state = XeroContactLink.State.IGNORED
        link.last_error = ""
        link.save()
        OutboxEntry.objects.filter(connection=link.connection, funder=link.funder).delete()
        return
    if contact_id:
        taken = XeroContactLink.objects.filter(
            connection=link.connection, xero_contact_id=contact_id
        )
        if taken.exclude(pk=link.pk).exists():
            raise ValueError("That Xero contact is already linked to another funder.")
        link.xero_contact_id = contact_id
    elif create_new:
        link.xero_contact_id = ""
        link.name_suffix = next_name_suffix(link.name_suffix)
    else:
        raise ValueError("Say how to resolve the conflict.")
    link.matched_by = XeroContactLink.MatchedBy.PERSON
    link.state = XeroContactLink.State.PENDING
    link.payload_hash = ""
    link.sent_fields = []
    link.last_error = ""
    link.conflict_candidates = []
    link.save()
    push_now(link.connection, [link.funder_id])


def next_name_suffix(current: str) -> str:
    """The suffix after `current` under CONFLICT_NAME_SUFFIX: " (2)", then " (3)"..."""
    rule = conf.get("CONFLICT_NAME_SUFFIX")
    n = 2
    while rule.format(n=n) != current and current and n < 100:
        n += 1
    return rule.format(n=n + 1 if current else 2)


# --- the sweep and retention ------------------------------------------------------------------


def sweep() -> dict[str, int]:
    """Re-enqueue what a broker or worker outage, or a pause, left behind."""
    now = timezone.now()
    usable = XeroConnection.objects.filter(enabled=True, state=XeroConnection.State.OK).filter(
        Q(paused_until__isnull=True) | Q(paused_until__lte=now)
    )
    ended_pauses = XeroConnection.objects.filter(paused_until__lte=now)
    if ended_pauses.exists():  # (no write lock taken when there is nothing to do)
        ended_pauses.update(paused_until=None)
    stale = now - timedelta(minutes=1)
    runs = SyncRun.objects.filter(
        connection__in=usable, status=SyncRun.Status.PENDING, created_at__lt=stale
    )
    # A worker that died while planning leaves its run RUNNING and unplanned: plan it again.
    stuck = now - timedelta(seconds=conf.get("LEASE_SECONDS"))
    SyncRun.objects.filter(
        connection__in=usable,
        status=SyncRun.Status.RUNNING,
        planned_at__isnull=True,
        started_at__lt=stuck,
    ).update(status=SyncRun.Status.PENDING)
    run_ids = list(runs.values_list("pk", flat=True))
    for run_id in run_ids:
        _send("start_full_sync", run_id)
    connection_ids = list(
        usable.filter(outbox__due_at__lte=now).values_list("pk", flat=True).distinct()
    )
    for connection_id in connection_ids:
        _send("drain_outbox", connection_id)
    return {"runs": len(run_ids), "connections": len(connection_ids)}


def prune_logs(days: int | None = None) -> int:
    days = conf.get("LOG_RETENTION_DAYS") if days is None else days
    deleted, _ = SyncLog.objects.filter(
        created_at__lt=timezone.now() - timedelta(days=days)
    ).delete()
    return deleted
