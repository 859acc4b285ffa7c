"""A full sync: read the organisation's Xero contacts, link what is there, queue the rest."""

from __future__ import annotations

from collections import Counter
from itertools import islice

from django.db.models import F
from django.utils import timezone

from .. import conf, mapping
from ..exceptions import (
    XeroAuthError,
    XeroError,
    XeroForbiddenError,
    XeroRateLimitError,
)
from ..matching import ContactIndex, Match
from ..models import OutboxEntry, SyncLog, SyncRun, XeroConnection, XeroContactLink
from .common import (
    RetryLater,
    client_for,
    complete_run_if_done,
    finish_run,
    in_scope_funders,
    pause_for_day_limit,
    record_connection_error,
    remember_limits,
    write_log,
)
from .outbox import enqueue_drain_on_commit

Outcome = SyncLog.Outcome


# Funders read and planned per step; disabling or cancelling is noticed between steps.
PLAN_CHUNK = 500


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
        finish_run(run, SyncRun.Status.CANCELLED, message="Sync was disabled.")
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
        finish_run(run, SyncRun.Status.COMPLETED)
    elif report["counts"]["queued"]:
        enqueue_drain_on_commit(connection.pk)
    else:
        complete_run_if_done(run.pk)


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
            finish_run(run, SyncRun.Status.FAILED, message=str(exc))
        else:
            record_connection_error(connection, exc, run)
        return None
    except XeroRateLimitError as exc:
        if exc.limit == "day":
            pause_for_day_limit(connection, exc, run)
            return None
        raise RetryLater(exc.retry_after or 60) from None
    finally:
        remember_limits(connection, client)


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
        write_log(
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
                note("conflict", funder, reason=found.conflict, candidates=candidates_of(found))
                if not run.dry_run:
                    record_conflict(connection, run, funder, link, found)
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
                    link_to_contact(link, found)
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
    link.state = XeroContactLink.State.PENDING
    link.conflict_candidates = []
    link.last_error = ""
    link.save()


def record_conflict(connection, run, funder, link: XeroContactLink, found: Match) -> None:
    link.state = XeroContactLink.State.CONFLICT
    link.last_error = found.conflict
    link.conflict_candidates = candidates_of(found)
    link.save()
    write_log(connection, Outcome.CONFLICT, run=run, funder=funder, message=found.conflict)
    if run:
        SyncRun.objects.filter(pk=run.pk).update(conflicts=F("conflicts") + 1)
