"""A full sync: read the organisation's Xero contacts, link what is there, queue the rest."""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from itertools import islice

from django.db.models import F
from django.utils import timezone

from .. import conf, dispatch, mapping, wording
from ..exceptions import XeroError
from ..fields import UndecryptableError
from ..matching import ContactIndex
from ..models import OutboxEntry, SyncLog, SyncRun, XeroConnection, XeroContactLink
from .bookkeeper import review_links
from .calls import (
    client_for,
    note_tenant,
    pause_for_day_limit,
    record_connection_error,
    record_undecryptable,
    remember_limits,
)
from .links import candidates_of, link_to_contact, record_conflict
from .pacing import Pacer
from .policy import MAX_FOLLOW_UP_SECONDS, Reaction, react_to
from .records import complete_run_if_done, finish_run
from .scope import in_scope_funders

Outcome = SyncLog.Outcome


# Funders read and planned per step; disabling or cancelling is noticed between steps.
PLAN_CHUNK = 500
# Longest a planner goes without a heartbeat while it waits for Xero's minute limit.
HEARTBEAT_SECONDS = 10
REPORT_KEYS = ("create", "link", "conflict", "invalid", "warnings")
REPORT_LIST_LIMIT = 500


# --- full sync --------------------------------------------------------------------------------


def run_full_sync(run_id: int, *, attempt: int = 1) -> float | None:
    """Link in-scope funders to existing Xero contacts and queue them all for pushing.

    A preview run (``dry_run``) makes the same decisions and only writes its report. Returns
    the seconds after which this should be tried again (a passing outage or limit), or None.
    """
    try:
        run = _claim(run_id)
    except UndecryptableError as exc:
        _cannot_decrypt(run_id, exc)
        return None
    if run is None:
        return None
    try:
        index = _read_contacts(run)
    except XeroError as exc:
        return _after_read_error(run, exc, attempt)
    if not run.dry_run:
        _review_linked(run, index)
    report = _plan(run, index)
    if report is None:
        return None  # disabled or cancelled part-way
    SyncRun.objects.filter(pk=run.pk).update(planned_at=timezone.now())
    if run.dry_run:
        SyncRun.objects.filter(pk=run.pk).update(report=report)
        finish_run(run, SyncRun.Status.COMPLETED)
    else:
        # A drain running alongside (a save, a merge followed above) may already have pushed
        # every funder this run queued, before it was marked planned: nobody else would
        # complete it then.
        complete_run_if_done(run.pk)
        if report["counts"]["queued"]:
            dispatch.drain_on_commit(run.connection_id)
    return None


def _claim(run_id: int) -> SyncRun | None:
    """The run, marked RUNNING by this worker, or None if it is not to be planned now."""
    run = SyncRun.objects.select_related("connection").filter(pk=run_id).first()
    if run is None or run.status != SyncRun.Status.PENDING:
        return None  # done, cancelled, or another worker is planning it
    connection = run.connection
    if not connection.enabled and not run.dry_run:
        finish_run(run, SyncRun.Status.CANCELLED, message="Sync was disabled.")
        return None
    if connection.is_paused or (connection.state == XeroConnection.State.ERROR and not run.dry_run):
        return None  # the sweep starts it again once the connection is usable
    now = timezone.now()
    claimed = SyncRun.objects.filter(pk=run.pk, status=SyncRun.Status.PENDING).update(
        status=SyncRun.Status.RUNNING, started_at=run.started_at or now, heartbeat_at=now
    )
    return run if claimed else None


def _heartbeat(run: SyncRun) -> None:
    """Tell the sweep this run's planner is alive (a stale heartbeat means it died)."""
    SyncRun.objects.filter(pk=run.pk).update(heartbeat_at=timezone.now())


def _sleep_with_heartbeat(run: SyncRun, seconds: float) -> None:
    """Wait for Xero's minute limit inside the planning task, still showing signs of life."""
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        time.sleep(min(left, HEARTBEAT_SECONDS))
        _heartbeat(run)


def _planner_hook(run: SyncRun):
    """Before each call while planning: a heartbeat, then pacing (by sleeping: planning a
    large organisation reads many pages, and starting over would cost them all again)."""
    pacer = Pacer(run.connection_id, wait=lambda seconds: _sleep_with_heartbeat(run, seconds))

    def before_request(client) -> None:
        _heartbeat(run)
        pacer(client)

    return before_request


def _cannot_decrypt(run_id: int, exc: UndecryptableError) -> None:
    runs = SyncRun.objects.filter(pk=run_id)
    record_undecryptable(runs.values_list("connection_id", flat=True).first(), exc)
    runs.update(status=SyncRun.Status.FAILED, finished_at=timezone.now(), message=str(exc))


def _unclaim(run: SyncRun) -> None:
    SyncRun.objects.filter(pk=run.pk, status=SyncRun.Status.RUNNING).update(
        status=SyncRun.Status.PENDING
    )


def _read_contacts(run: SyncRun) -> ContactIndex:
    """Every contact of the organisation, archived included."""
    connection = run.connection
    client = client_for(connection, before_request=_planner_hook(run))
    try:
        tenants = client.get_tenants()
        if tenants and not run.dry_run:
            _note_tenant(connection, run, tenants[0])
        return ContactIndex(client.iter_contacts(page_size=conf.get("PAGE_SIZE")))
    finally:
        remember_limits(connection, client)


def _after_read_error(run: SyncRun, exc: XeroError, attempt: int) -> float | None:
    """Xero could not be read: stop, pause, try again later, or fail the run (`policy`)."""
    decision = react_to(exc, attempt=attempt)
    if decision.reaction is Reaction.STOP:
        if run.dry_run:
            finish_run(run, SyncRun.Status.FAILED, message=str(exc))
        else:
            record_connection_error(run.connection, exc, run)
        return None
    if decision.reaction is Reaction.PAUSE:
        pause_for_day_limit(run.connection, decision.seconds, run)
        _unclaim(run)  # the sweep starts it again after the pause
        return None
    if decision.reaction in (Reaction.WAIT, Reaction.RETRY):
        _unclaim(run)
        return min(decision.seconds, MAX_FOLLOW_UP_SECONDS)
    finish_run(run, SyncRun.Status.FAILED, message=wording.could_not_read_contacts(exc))
    return None


def _note_tenant(connection: XeroConnection, run: SyncRun, tenant) -> None:
    """Remember the Xero organisation; another one stops the run until a person confirms it
    (`credentials.use_new_tenant` then forgets the old links and syncs afresh)."""
    note_tenant(connection, tenant)


def _review_linked(run: SyncRun, index: ContactIndex) -> None:
    """Before planning writes: what the bookkeeper did to linked contacts (merged, archived,
    GDPR, edited). The pages read carry MergedToContactID, so merges are followed from them."""
    links = (
        XeroContactLink.objects.filter(connection=run.connection)
        .exclude(xero_contact_id="")
        .exclude(state=XeroContactLink.State.IGNORED)
        .select_related("funder")
        .order_by("pk")
    )
    iterator = links.iterator(chunk_size=PLAN_CHUNK)
    while chunk := list(islice(iterator, PLAN_CHUNK)):
        _heartbeat(run)
        review_links(run.connection, chunk, index.by_id)


def _plan(run: SyncRun, index: ContactIndex) -> dict | None:
    """Plan every in-scope funder, a chunk at a time; None if the run was stopped meanwhile."""
    connection = run.connection
    funders = in_scope_funders(connection).order_by("pk")
    SyncRun.objects.filter(pk=run.pk).update(in_scope=funders.count())
    planner = _Planner(run, index, claimed=_claimed_contact_ids(connection))
    iterator = funders.iterator(chunk_size=PLAN_CHUNK)
    while chunk := list(islice(iterator, PLAN_CHUNK)):
        if not run.dry_run and _stopped(run):
            return None
        _heartbeat(run)
        planner.plan_chunk(chunk)
    return planner.finished_report()


def _stopped(run: SyncRun) -> bool:
    """Disabling or cancelling takes effect between chunks, even in the middle of a full sync."""
    enabled = XeroConnection.objects.filter(pk=run.connection_id, enabled=True).exists()
    running = SyncRun.objects.filter(pk=run.pk, status=SyncRun.Status.RUNNING).exists()
    return not (enabled and running)


def _claimed_contact_ids(connection: XeroConnection) -> set[str]:
    return set(
        XeroContactLink.objects.filter(connection=connection)
        .exclude(xero_contact_id="")
        .values_list("xero_contact_id", flat=True)
    )


@dataclass
class _Planner:
    """Decides, funder by funder, what a full sync does; a preview keeps only the report."""

    run: SyncRun
    index: ContactIndex
    claimed: set[str]
    report: dict = field(default_factory=lambda: {key: [] for key in REPORT_KEYS})
    counts: Counter = field(default_factory=Counter)

    def plan_chunk(self, funders: list) -> None:
        connection = self.run.connection
        links = {
            link.funder_id: link
            for link in XeroContactLink.objects.filter(connection=connection, funder__in=funders)
        }
        to_queue = []
        ignored = 0
        for funder in funders:
            link = links.get(funder.pk) or XeroContactLink(connection=connection, funder=funder)
            if link.state == XeroContactLink.State.IGNORED or link.is_held:
                # A person chose not to sync it, or the bookkeeper's decision in Xero holds it
                # until a person decides: not part of this run.
                ignored += 1
            elif self._plan_funder(funder, link):
                to_queue.append(funder.pk)
        self.counts["queued"] += len(to_queue)
        if self.run.dry_run:
            return
        if ignored:
            SyncRun.objects.filter(pk=self.run.pk).update(in_scope=F("in_scope") - ignored)
        _queue(self.run, to_queue)

    def finished_report(self) -> dict:
        # A preview lists funders (capped, for the page) and counts everything.
        keys = ("queued", *REPORT_KEYS, "already_linked")
        return {**self.report, "counts": {key: self.counts[key] for key in keys}}

    def _plan_funder(self, funder, link: XeroContactLink) -> bool:
        """Note what happens to this funder; True when it is to be queued for pushing."""
        clean = mapping.clean_contact(
            conf.mapping_function()(funder),
            number=mapping.contact_number(conf.get("CONTACT_NUMBER_PREFIX"), funder.pk),
        )
        if clean.error:
            self._note("invalid", funder, error=clean.error)
        elif clean.warnings:
            self._note("warnings", funder, warnings=clean.warnings)
        if link.xero_contact_id in self.index.by_id:
            self.counts["already_linked"] += 1
            return True
        if link.xero_contact_id:
            self._forget_vanished_contact(link)
        if clean.error:
            return True  # its push fails with the validation message, recorded per funder
        return self._match(funder, link, clean)

    def _match(self, funder, link: XeroContactLink, clean: mapping.CleanContact) -> bool:
        found = self.index.match(
            number=clean.payload["ContactNumber"],
            email=clean.email,
            name=clean.name,
            claimed=self.claimed,
        )
        if found.conflict:
            self._note("conflict", funder, reason=found.conflict, candidates=candidates_of(found))
            if not self.run.dry_run:
                record_conflict(self.run.connection, self.run, funder, link, found)
            return False
        if not found.contact:
            self._note("create", funder)
            return True
        contact = found.contact
        self._note(
            "link",
            funder,
            rule=found.rule,
            contact_id=contact.contact_id,
            contact_name=contact.name,
        )
        self.claimed.add(contact.contact_id)
        if not self.run.dry_run:
            link_to_contact(link, found)
        return not link.is_held

    def _forget_vanished_contact(self, link: XeroContactLink) -> None:
        """The linked contact is gone from Xero: find or create the funder's contact afresh."""
        self.claimed.discard(link.xero_contact_id)
        if not self.run.dry_run:
            link.xero_contact_id, link.payload_hash, link.matched_by = "", "", ""
            link.sent_fields = []
            link.save()
        else:
            link.xero_contact_id = ""  # a preview decides as the run would, and saves nothing

    def _note(self, key: str, funder, **extra) -> None:
        self.counts[key] += 1
        if len(self.report[key]) < REPORT_LIST_LIMIT:
            self.report[key].append({"funder_id": funder.pk, "name": str(funder), **extra})


def _queue(run: SyncRun, funder_ids: list) -> None:
    """Queue the funders in this run; a funder already pending keeps its row, now the run's.

    Such a row keeps its ``looked_up``: its create may be on its way to Xero right now, and if
    that worker dies, the next try must look for the contact before creating it again.
    """
    now = timezone.now()
    OutboxEntry.objects.bulk_create(
        [
            OutboxEntry(
                connection_id=run.connection_id, funder_id=pk, run=run, due_at=now, looked_up=True
            )
            for pk in funder_ids
        ],
        update_conflicts=True,
        unique_fields=["connection", "funder"],
        update_fields=["run", "due_at", "attempts"],
    )
