"""One Xero organisation: its contacts, its limits, and what its bookkeeper does in Xero.

The bookkeeper's actions are the ones Xero's own screens offer (docs/xero.md, "What a
bookkeeper does in Xero"): create, edit, archive, restore, merge, and Xero's GDPR request.
Each is announced by a signed CONTACT webhook when the organisation has one configured, and
returns once the receiver has answered, so tests see a settled world.
"""

from __future__ import annotations

import copy
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from .contacts import NAME_TAKEN, ContactStore, apply_fields, blank_contact
from .limits import TenantUsage
from .webhooks import WebhookDelivery, WebhookSender, contact_event
from .wire import Reply, ms_date

if TYPE_CHECKING:
    from .server import FakeXero

# A bookkeeper's edit changes fields; status and identity have their own actions.
NOT_EDITABLE = frozenset({"ContactID", "ContactStatus", "MergedToContactID"})


@dataclass
class BookkeeperChange:
    """What a bookkeeper action did: the contact as stored now, and the webhook it sent."""

    contact: dict
    delivery: WebhookDelivery | None  # None: no webhook configured, or held for a batch


@dataclass
class WebhookBatch:
    """Filled in when a ``webhook_batch()`` block ends."""

    delivery: WebhookDelivery | None = None


class FakeOrg(ContactStore):
    """One Xero organisation reachable through one custom connection (client id)."""

    def __init__(
        self,
        fake: FakeXero,
        client_id: str,
        client_secret: str,
        name: str,
        scopes: Iterable[str],
        reject_explicit_scope: bool,
    ) -> None:
        super().__init__(fake._lock)
        self._fake = fake
        self.client_id = client_id
        self.client_secret = client_secret
        self.name = name
        self.tenant_id = str(uuid.uuid4())
        self.scopes: tuple[str, ...] = tuple(scopes)
        self.reject_explicit_scope = reject_explicit_scope
        self.usage = TenantUsage()
        self.created_at = datetime.now(UTC)
        # Idempotency-Key -> (request fingerprint, reply, expiry); see contacts_api.
        self.idempotency: dict[str, tuple[tuple[str, str, bytes], Reply, float]] = {}
        self.webhooks = WebhookSender(timeout=fake.webhook_timeout)
        self._held_events: list[dict[str, str]] | None = None

    def __repr__(self) -> str:
        return f"<FakeOrg {self.name!r} client_id={self.client_id!r} contacts={len(self.contacts)}>"

    # -- limits

    @property
    def calls_today(self) -> int:
        return self.usage.calls_today

    @property
    def calls_this_minute(self) -> int:
        return self.usage.calls_this_minute

    @property
    def in_flight(self) -> int:
        return self.usage.in_flight

    def set_limits(
        self, *, minute_remaining: int | None = None, day_remaining: int | None = None
    ) -> None:
        """Force the counters so the next call sees these remaining allowances."""
        with self._lock:
            self._fake._limiter.force(self.usage, minute_remaining, day_remaining)

    # -- webhooks

    def set_webhook(self, url: str | None, key: str | None = None) -> None:
        """Send this organisation's CONTACT events to ``url``, signed with ``key``; None stops."""
        self.webhooks.configure(url, key)

    @property
    def webhook_deliveries(self) -> list[WebhookDelivery]:
        """Every webhook POST so far (intent-to-receive included), oldest first."""
        return list(self.webhooks.deliveries)

    def send_intent_to_receive(self) -> list[WebhookDelivery]:
        """Xero's "intent to receive" check: one correctly and one wrongly signed empty payload.

        The check passes when ``all(d.as_xero_expects for d in deliveries)``.
        """
        return self.webhooks.intent_to_receive()

    def deliver_webhook(self, body: bytes, *, signature: str | None = None) -> WebhookDelivery:
        """POST a body of your own to the webhook URL: another tenant's event, an INVOICE one,
        a tampered body (pass the original's ``signature``) or an unsigned one (``""``).

        Signed with the organisation's key unless ``signature`` is given.
        """
        return self.webhooks.deliver(body, signature)

    def resend(self, delivery: WebhookDelivery) -> WebhookDelivery:
        """Deliver an earlier payload again, byte for byte, as Xero does when it retries."""
        return self.webhooks.resend(delivery)

    @contextmanager
    def webhook_batch(self) -> Iterator[WebhookBatch]:
        """Hold the events of the actions in this block and deliver them in one payload.

        Meant for one thread: actions from other threads meanwhile are held too.
        """
        batch = WebhookBatch()
        self._held_events = []
        try:
            yield batch
        finally:
            events, self._held_events = self._held_events, None
            if events and self.webhooks.configured:
                batch.delivery = self.webhooks.send_events(events)

    # -- what a bookkeeper does in Xero's screens

    def create(self, **fields: Any) -> BookkeeperChange:
        """Add a contact as the bookkeeper would (Xero's rules apply); a CREATE event."""
        with self._lock:
            contact = blank_contact(str(uuid.uuid4()))
            _refuse(apply_fields(contact, _editable(fields), creating=True))
            if self.name_taken(contact["Name"], contact["ContactID"]):
                raise ValueError(NAME_TAKEN.format(name=contact["Name"]))
            snapshot, event = self._store(contact, "CREATE")
        return BookkeeperChange(snapshot, self._announce(event))

    def edit(self, contact_id: str, **fields: Any) -> BookkeeperChange:
        """Change fields of a contact (``""`` clears one); an UPDATE event."""

        def change(contact: dict) -> None:
            old_name = contact.get("Name")
            _refuse(apply_fields(contact, _editable(fields), creating=False))
            renamed = contact.get("Name", "").lower() != (old_name or "").lower()
            active = contact["ContactStatus"] == "ACTIVE"
            if renamed and active and self.name_taken(contact["Name"], contact["ContactID"]):
                raise ValueError(NAME_TAKEN.format(name=contact["Name"]))

        return self._change(contact_id, change)

    def archive(self, contact_id: str) -> BookkeeperChange:
        """Archive an active contact; an UPDATE event (Xero counts archiving as one)."""

        def change(contact: dict) -> None:
            _require_status(contact, "ACTIVE", "archived")
            contact["ContactStatus"] = "ARCHIVED"

        return self._change(contact_id, change)

    def restore(self, contact_id: str) -> BookkeeperChange:
        """Restore an archived contact, if no active contact has its name; an UPDATE event."""

        def change(contact: dict) -> None:
            _require_status(contact, "ARCHIVED", "restored")
            if contact.get("MergedToContactID"):
                raise ValueError("A contact merged into another cannot be restored.")
            if self.name_taken(contact["Name"], contact["ContactID"]):
                raise ValueError(NAME_TAKEN.format(name=contact["Name"]))
            contact["ContactStatus"] = "ACTIVE"

        return self._change(contact_id, change)

    def gdpr_request(self, contact_id: str) -> BookkeeperChange:
        """Put a contact under a GDPR erasure request (ContactStatus GDPRREQUEST); UPDATE."""

        def change(contact: dict) -> None:
            if contact["ContactStatus"] == "GDPRREQUEST":
                raise ValueError("The contact is already under a GDPR request.")
            contact["ContactStatus"] = "GDPRREQUEST"

        return self._change(contact_id, change)

    def merge(self, from_id: str, into_id: str) -> BookkeeperChange:
        """Merge ``from_id`` into ``into_id``: from is archived with its MergedToContactID set.

        One UPDATE event, for the archived contact (how integrations learn of merges).
        """
        into_id = into_id.strip().lower()

        def change(contact: dict) -> None:
            survivor = self.contacts.get(into_id)
            if survivor is None:
                raise ValueError(f"No contact {into_id!r} to merge into.")
            if into_id == contact["ContactID"]:
                raise ValueError("A contact cannot be merged into itself.")
            if contact.get("MergedToContactID"):
                raise ValueError("The contact was already merged into another.")
            _require_status(contact, "ACTIVE", "merged")
            _require_status(survivor, "ACTIVE", "merged into")
            contact["ContactStatus"] = "ARCHIVED"
            contact["MergedToContactID"] = into_id

        return self._change(from_id, change)

    def _change(self, contact_id: str, change: Callable[[dict], None]) -> BookkeeperChange:
        with self._lock:
            current = self.contacts.get(contact_id.strip().lower())
            if current is None:
                raise ValueError(f"No contact {contact_id!r}.")
            contact = copy.deepcopy(current)
            change(contact)  # raises before anything is stored
            snapshot, event = self._store(contact, "UPDATE")
        # Never hold the data lock while a receiver answers: it may call the fake back.
        return BookkeeperChange(snapshot, self._announce(event))

    def _store(self, contact: dict, event_type: str) -> tuple[dict, dict[str, str]]:
        """Save ``contact``; return its snapshot and the event announcing it (lock held)."""
        contact["UpdatedDateUTC"] = ms_date(time.time(), offset=True)
        self.contacts[contact["ContactID"]] = contact
        event = contact_event(contact["ContactID"], self.tenant_id, event_type)
        return copy.deepcopy(contact), event

    def _announce(self, event: dict[str, str]) -> WebhookDelivery | None:
        if self._held_events is not None:
            self._held_events.append(event)
            return None
        if not self.webhooks.configured:
            return None
        return self.webhooks.send_events([event])


def _editable(fields: dict[str, Any]) -> dict[str, Any]:
    refused = sorted(NOT_EDITABLE & fields.keys())
    if refused:
        raise ValueError(
            f"{', '.join(refused)} cannot be edited; use archive, restore, merge or gdpr_request."
        )
    return fields


def _refuse(errors: list[str]) -> None:
    if errors:
        raise ValueError("; ".join(errors))


def _require_status(contact: dict, status: str, verb: str) -> None:
    if contact["ContactStatus"] != status:
        raise ValueError(
            f"Only an {status} contact can be {verb}; {contact.get('Name')!r} is "
            f"{contact['ContactStatus']}."
        )
