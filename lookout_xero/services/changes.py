"""Reading the contacts changed in Xero, for connections whose webhook does not tell us.

Xero's webhooks say within seconds what the bookkeeper changed (`webhooks`). A connection
whose webhook was never set up, or never verified (no correctly signed delivery since its key
was set), learns it here instead: every ``READ_CHANGES_SECONDS`` beat reads the contacts
changed since the last read (``If-Modified-Since``, paged: one call per ``PAGE_SIZE`` changed
contacts, none more when nothing changed) and applies the bookkeeper's rules to the linked
ones, exactly as a webhook's read would (`bookkeeper.review_links`).

It holds the organisation's lease, the one the drain and the webhooks hold, and is paced by
Xero's limits like them. The watermark (`XeroConnection.changes_read_at`) moves only when a
read is complete: an interrupted one is read again from the same moment.
"""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from .. import conf
from ..exceptions import XeroError
from ..fields import UndecryptableError
from ..models import SyncRun, XeroConnection, XeroContactLink
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
from .policy import MAX_FOLLOW_UP_SECONDS, Reaction, react_to
from .webhooks import hand_over, lease_and_pace

# Xero stamps a change with its own clock, the watermark is ours: reading a little further back
# costs a few contacts read twice (harmless), a skewed clock would cost a correction missed.
CLOCK_MARGIN = timedelta(seconds=60)


def connections_to_read() -> list[int]:
    """Enabled, usable connections no verified webhook reaches: their changes are read."""
    return list(
        XeroConnection.objects.usable()
        .filter(last_webhook_at__isnull=True)
        .order_by("pk")
        .values_list("pk", flat=True)
    )


def read_changes(connection_id: int) -> float | None:
    """Read the contacts changed in Xero since the last read and apply what they show.

    Returns seconds until it should run again sooner than beat's next round (a rate limit or
    an outage), or None.
    """
    connection = XeroConnection.objects.usable().filter(pk=connection_id).first()
    if connection is None:
        return None  # disabled (never read), in error or paused: nothing is called
    lease = Lease.acquire(connection_id)
    if lease is None:
        return None  # the organisation is busy; beat's next round reads from the same moment
    client = None
    try:
        started = timezone.now()
        since = connection.changes_read_at or _first_read_since(connection)
        if since is None:
            _read_up_to(connection_id, started)  # nothing synced yet: a full sync reads all
            return None
        client = client_for(connection, before_request=lease_and_pace(connection_id, lease))
        for page in client.changed_since(since - CLOCK_MARGIN, page_size=conf.get("PAGE_SIZE")):
            lease.renew()
            _apply(connection, client, page)
        _read_up_to(connection_id, started)
        return None
    except RetryLater as later:
        return min(later.seconds, MAX_FOLLOW_UP_SECONDS)
    except LeaseLost:
        return None
    except UndecryptableError as exc:
        record_undecryptable(connection_id, exc)
        return None
    except XeroError as exc:
        return _after_error(connection, exc)
    finally:
        if client is not None:
            remember_limits(connection, client)
        lease.release()
        hand_over(connection_id, drain=True)  # work that waited for the lease


def _first_read_since(connection: XeroConnection):
    """Where the first read starts: the last full sync, which read every contact."""
    run = (
        connection.runs.full_syncs()
        .filter(status=SyncRun.Status.COMPLETED, started_at__isnull=False)
        .order_by("-started_at")
        .first()
    )
    return run.started_at if run else None


def _read_up_to(connection_id: int, moment) -> None:
    XeroConnection.objects.filter(pk=connection_id).update(changes_read_at=moment)


def _apply(connection: XeroConnection, client, page: list) -> None:
    contacts = {contact.contact_id: contact for contact in page}
    links = list(
        XeroContactLink.objects.filter(connection=connection, xero_contact_id__in=list(contacts))
        .exclude(state=XeroContactLink.State.IGNORED)
        .select_related("funder")
    )
    if links:  # contacts Lookout has not linked cost nothing more
        review_links(connection, links, contacts, fetch=client.get_contacts_by_ids)


def _after_error(connection: XeroConnection, exc: XeroError) -> float | None:
    """Stop or pause as `policy` says; anything else waits for beat's next round."""
    decision = react_to(exc, attempt=1)
    if decision.reaction is Reaction.STOP:
        record_connection_error(connection, exc)
    elif decision.reaction is Reaction.PAUSE:
        pause_for_day_limit(connection, decision.seconds)
    elif decision.reaction is Reaction.WAIT:
        return min(decision.seconds, MAX_FOLLOW_UP_SECONDS)
    return None
