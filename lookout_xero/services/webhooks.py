"""Xero's webhook events: stored as they arrive, then read and applied by a worker.

The endpoint (`lookout_xero.webhook_views`) checks the signature and calls `receive`, which
stores the events in autocommit and publishes `lookout_xero.process_webhooks`. Processing
reads the changed contacts that Lookout has linked, in paged `GET /Contacts?IDs=…` reads cut by
Xero's URL length, and applies `bookkeeper`'s rules.

It holds the organisation's lease, the same one the drain holds: one caller per organisation
at a time, whatever it does, so Xero's per-organisation limits (5 concurrent, 60 a minute)
hold across pushes and reads alike, and a merge learnt here cannot race a push to the old
contact. A task turned away by the lease does not wait: whoever holds the lease hands the
events over when it lets go (`hand_over`), and the sweep catches the rest.
"""

from __future__ import annotations

import logging

from django.db.models import F, Min
from django.utils import timezone

from .. import conf, dispatch, wording
from ..client import XeroClient
from ..exceptions import XeroError, XeroNotFoundError
from ..fields import UndecryptableError
from ..models import SyncLog, XeroConnection, XeroContactLink, XeroWebhookEvent
from .bookkeeper import review_links
from .calls import (
    RetryLater,
    client_for,
    pause_for_day_limit,
    record_connection_error,
    record_undecryptable,
    remember_limits,
)
from .lease import Lease, LeaseLost
from .pacing import Pacer
from .policy import MAX_FOLLOW_UP_SECONDS, Reaction, backoff, react_to
from .records import write_log

logger = logging.getLogger(__name__)

# Events read per pass: their contacts are read as many to a request as Xero's URL allows.
EVENTS_PER_PASS = 500
CONTACT_CATEGORY = "CONTACT"


def receive(connection: XeroConnection, payload: object) -> int:
    """Store a correctly signed delivery's CONTACT events for this connection's organisation.

    Returns how many were kept. A disabled connection keeps none (and makes no call): Xero is
    still answered 200, or it would switch the webhook off.
    """
    XeroConnection.objects.filter(pk=connection.pk).update(last_webhook_at=timezone.now())
    if not connection.enabled:
        return 0
    events = payload.get("events") if isinstance(payload, dict) else None
    if not isinstance(events, list):
        return 0
    kept = [
        XeroWebhookEvent(
            connection_id=connection.pk,
            xero_contact_id=str(event["resourceId"]).strip().lower()[:36],
            event_type=str(event.get("eventType") or "")[:20],
            event_date=str(event.get("eventDateUtc") or "")[:40],
        )
        for event in events
        if _is_ours(connection, event)
    ]
    if kept:
        XeroWebhookEvent.objects.bulk_create(kept)
        dispatch.process_webhooks(connection.pk)
    return len(kept)


def _is_ours(connection: XeroConnection, event: object) -> bool:
    """A CONTACT event of this connection's Xero organisation (other categories are ignored)."""
    if not isinstance(event, dict) or not event.get("resourceId"):
        return False
    if str(event.get("eventCategory", "")).upper() != CONTACT_CATEGORY:
        return False
    tenant = str(event.get("tenantId") or "").lower()
    # Before its first sync a connection does not know its tenant; the link check still holds.
    return not connection.xero_tenant_id or tenant == connection.xero_tenant_id.lower()


def process_webhooks(connection_id: int) -> float | None:
    """Apply the stored events of a connection. Returns seconds until it should run again."""
    connection = XeroConnection.objects.filter(pk=connection_id).first()
    if connection is None:
        return None
    if not connection.enabled:
        XeroWebhookEvent.objects.filter(connection_id=connection_id).delete()
        return None
    if connection.state == XeroConnection.State.ERROR or connection.is_paused:
        return None  # kept: the sweep brings them back once the connection is usable
    lease = Lease.acquire(connection_id)
    if lease is None:
        return None  # its holder hands the events over when it lets go
    wait = None
    try:
        wait = _process(connection_id, lease)
    except LeaseLost:
        return None
    except UndecryptableError as exc:
        record_undecryptable(connection_id, exc)
        return None
    finally:
        lease.release()
    # A drain turned away meanwhile would wait for the whole lease: hand its work over too.
    hand_over(connection_id, events=wait is None, drain=True)
    return None if wait is None else min(wait, MAX_FOLLOW_UP_SECONDS)


def hand_over(connection_id: int, *, events: bool = True, drain: bool = False) -> None:
    """After letting go of the lease: publish the work that waited for it."""
    now = timezone.now()
    if events and XeroWebhookEvent.objects.filter(connection_id=connection_id).exists():
        dispatch.send(dispatch.PROCESS_WEBHOOKS, connection_id)
    if drain and _outbox_due(connection_id, now):
        dispatch.send(dispatch.DRAIN_OUTBOX, connection_id)


def _outbox_due(connection_id: int, now) -> bool:
    due = (
        XeroConnection.objects.filter(pk=connection_id)
        .aggregate(due=Min("outbox__due_at"))
        .get("due")
    )
    return due is not None and due <= now


def _process(connection_id: int, lease: Lease) -> float | None:
    client = None
    while True:
        lease.renew()
        connection = XeroConnection.objects.get(pk=connection_id)
        if not connection.enabled:
            XeroWebhookEvent.objects.filter(connection=connection).delete()
            return None
        events = list(
            XeroWebhookEvent.objects.filter(connection=connection).order_by("pk")[:EVENTS_PER_PASS]
        )
        if not events:
            return None
        links = list(
            XeroContactLink.objects.filter(
                connection=connection,
                xero_contact_id__in={event.xero_contact_id for event in events},
            )
            .exclude(state=XeroContactLink.State.IGNORED)
            .select_related("funder")
        )
        if links:  # events of contacts Lookout has not linked cost nothing
            paced = lease_and_pace(connection_id, lease)
            client = client or client_for(connection, before_request=paced)
            try:
                _apply(connection, client, links)
            except RetryLater as later:
                return later.seconds
            except XeroError as exc:
                return _after_error(connection, events, exc)
            finally:
                remember_limits(connection, client)
        XeroWebhookEvent.objects.filter(pk__in=[event.pk for event in events]).delete()


def _apply(connection: XeroConnection, client: XeroClient, links: list) -> None:
    read = client.get_contacts_by_ids([link.xero_contact_id for link in links])
    contacts = {contact.contact_id: contact for contact in read}
    review_links(connection, links, contacts, fetch=client.get_contacts_by_ids)


def lease_and_pace(connection_id: int, lease: Lease):
    """Before each call: renew the lease, then keep under Xero's minute limit (as the drain
    does: end the pass and come back after the wait, rather than hold a worker)."""

    def later(seconds: float) -> None:
        raise RetryLater(seconds)

    pacer = Pacer(connection_id, wait=later)

    def before_request(client: XeroClient) -> None:
        lease.renew()
        pacer(client)

    return before_request


def _after_error(connection: XeroConnection, events: list, exc: XeroError) -> float | None:
    """Xero could not be read: stop, pause, wait, retry or drop the events, as `policy` says."""
    attempt = min(event.attempts for event in events) + 1
    decision = react_to(exc, attempt=attempt)
    if decision.reaction is Reaction.STOP:
        record_connection_error(connection, exc)
        return None  # kept for when the credentials are fixed
    if decision.reaction is Reaction.PAUSE:
        pause_for_day_limit(connection, decision.seconds)
        return None
    if isinstance(exc, XeroNotFoundError):
        # A read by ids names contacts Lookout has linked: Xero's HTML 404 there is its answer to
        # a URL it found too long, not "these contacts are gone". The events stay for the next
        # try, and the log says what Xero said.
        XeroWebhookEvent.objects.filter(pk__in=[e.pk for e in events]).update(
            attempts=F("attempts") + 1
        )
        write_log(
            connection,
            SyncLog.Outcome.RETRYING,
            http_status=exc.status_code,
            message=wording.could_not_read_changes(exc) + " The changes are kept and read again.",
        )
        return backoff(attempt)
    if decision.reaction in (Reaction.WAIT, Reaction.RETRY):
        if decision.reaction is Reaction.RETRY:
            XeroWebhookEvent.objects.filter(pk__in=[e.pk for e in events]).update(
                attempts=F("attempts") + 1
            )
        return decision.seconds
    XeroWebhookEvent.objects.filter(pk__in=[e.pk for e in events]).delete()
    message = wording.gave_up(conf.get("MAX_ATTEMPTS"), exc) if exc.retryable else str(exc)
    write_log(
        connection,
        SyncLog.Outcome.FAILED,
        http_status=exc.status_code,
        message=wording.could_not_read_changes(message),
    )
    return None
