"""Xero's webhooks, sent the way Xero sends them (docs/xero.md, "Webhooks").

A delivery is a POST of ``{"events": [...], "firstEventSequence", "lastEventSequence",
"entropy"}`` with ``x-xero-signature`` = base64(HMAC-SHA256(key, raw body)). The receiver must
answer 200 with no body to a correctly signed delivery and 401 to any other, within 5 seconds.

Deliveries are sent synchronously by the thread that made the change (a bookkeeper call in a
test, or the control endpoint's handler thread) and never while the fake's data lock is held,
so the fake keeps answering API calls while a receiver thinks, and a bookkeeper call returns
only once the receiver has answered. Unlike Xero, the fake does not retry a failed delivery;
``WebhookSender.resend`` replays one on demand.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import http.client
import json
import secrets
import string
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

SIGNATURE_HEADER = "x-xero-signature"
RESOURCE_URL = "https://api.xero.com/api.xro/2.0/Contacts/{}"
ANSWER_WITHIN_SECONDS = 5.0


def sign(key: str, body: bytes) -> str:
    """Xero's signature: base64 of the HMAC-SHA256 of the raw body, keyed with the UTF-8 key."""
    digest = hmac.new(key.encode("utf-8"), body, hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


def new_key() -> str:
    """A signing key shaped like the ones Xero's developer portal shows (base64, 64 bytes)."""
    return base64.b64encode(secrets.token_bytes(64)).decode("ascii")


def contact_event(contact_id: str, tenant_id: str, event_type: str) -> dict[str, str]:
    """One CONTACT event; ``event_type`` is CREATE or UPDATE (archiving is an UPDATE)."""
    now = datetime.now(UTC)
    return {
        "resourceUrl": RESOURCE_URL.format(contact_id),
        "resourceId": contact_id,
        # Xero's example: "2024-06-21T01:15:39.902", UTC with milliseconds and no zone.
        "eventDateUtc": now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}",
        "eventType": event_type,
        "eventCategory": "CONTACT",
        "tenantId": tenant_id,
        "tenantType": "ORGANISATION",
    }


def _entropy() -> str:
    return "".join(secrets.choice(string.ascii_uppercase) for _ in range(20))


def _encode(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload, separators=(",", ":")).encode("utf-8")


@dataclass
class WebhookDelivery:
    """One POST to the receiver and how it answered."""

    url: str
    body: bytes
    signature: str
    correctly_signed: bool
    sent_at: datetime
    status: int | None = None  # None: no answer (refused, reset or timed out; see error)
    response_body: bytes = b""
    response_headers: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0
    error: str | None = None

    @property
    def payload(self) -> Any:
        return json.loads(self.body)

    @property
    def events(self) -> list[dict[str, str]]:
        """The events sent ([] for a body that is not Xero's shape)."""
        try:
            payload = self.payload
        except ValueError:
            return []
        events = payload.get("events") if isinstance(payload, dict) else None
        return events if isinstance(events, list) else []

    @property
    def as_xero_expects(self) -> bool:
        """Did the receiver answer as Xero requires (200, empty, no cookie / 401, in 5 s)?"""
        if self.status is None or self.seconds > ANSWER_WITHIN_SECONDS:
            return False
        if not self.correctly_signed:
            return self.status == 401
        return (
            self.status == 200
            and not self.response_body
            and "set-cookie" not in self.response_headers
        )

    def summary(self) -> dict[str, Any]:
        """A JSON-friendly account of the delivery (for the control endpoint)."""
        return {
            "url": self.url,
            "correctly_signed": self.correctly_signed,
            "events": len(self.events),
            "status": self.status,
            "seconds": round(self.seconds, 3),
            "response_body": self.response_body[:500].decode("utf-8", "replace"),
            "error": self.error,
            "as_xero_expects": self.as_xero_expects,
        }


class WebhookSender:
    """One organisation's webhook subscription: target, signing key, sequence, deliveries."""

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self.url: str | None = None
        self.key: str | None = None
        self.deliveries: list[WebhookDelivery] = []
        self._sequence = 0
        self._lock = threading.Lock()

    @property
    def configured(self) -> bool:
        return bool(self.url and self.key)

    def configure(self, url: str | None, key: str | None) -> None:
        if url and not key:
            raise ValueError("A webhook needs its signing key as well as its URL.")
        if url and urlsplit(url).scheme not in ("http", "https"):
            raise ValueError(f"Not an http(s) URL: {url!r}")
        self.url, self.key = (url, key) if url else (None, None)

    def send_events(self, events: list[dict[str, str]]) -> WebhookDelivery:
        """Deliver events in one signed payload, numbered on from the last delivery."""
        with self._lock:
            first = self._sequence + 1
            self._sequence += len(events)
            last = self._sequence
        payload = {
            "events": events,
            "firstEventSequence": first,
            "lastEventSequence": last,
            "entropy": _entropy(),
        }
        body = _encode(payload)
        return self._post(body, sign(self._require_key(), body), correctly_signed=True)

    def intent_to_receive(self) -> list[WebhookDelivery]:
        """Xero's check of a new URL: an empty payload correctly signed, then one wrongly signed."""
        deliveries = []
        for correctly_signed in (True, False):
            # Sequence numbers are 0 here, although the schema says they start at 1.
            payload = {"events": [], "firstEventSequence": 0, "lastEventSequence": 0}
            body = _encode({**payload, "entropy": _entropy()})
            key = self._require_key() if correctly_signed else new_key()
            deliveries.append(self._post(body, sign(key, body), correctly_signed=correctly_signed))
        return deliveries

    def deliver(self, body: bytes, signature: str | None = None) -> WebhookDelivery:
        """POST any body, signed with the key unless a ``signature`` is given ("" sends none)."""
        right = sign(self._require_key(), body)
        signature = right if signature is None else signature
        return self._post(body, signature, correctly_signed=hmac.compare_digest(signature, right))

    def resend(self, delivery: WebhookDelivery) -> WebhookDelivery:
        """Send an earlier delivery again, byte for byte (as Xero's retries do)."""
        self._require_key()
        return self._post(delivery.body, delivery.signature, delivery.correctly_signed)

    def _require_key(self) -> str:
        if not self.configured:
            raise ValueError("No webhook is configured for this organisation.")
        return self.key or ""

    def _post(self, body: bytes, signature: str, correctly_signed: bool) -> WebhookDelivery:
        url = self.url or ""
        delivery = WebhookDelivery(url, body, signature, correctly_signed, datetime.now(UTC))
        split = urlsplit(url)
        connection_class = (
            http.client.HTTPSConnection if split.scheme == "https" else http.client.HTTPConnection
        )
        target = split.path or "/"
        if split.query:
            target += "?" + split.query
        headers = {"Content-Type": "application/json; charset=utf-8"}
        if signature:
            headers[SIGNATURE_HEADER] = signature
        headers["User-Agent"] = "fake-xero-webhooks/1.0"
        started = time.monotonic()
        connection = connection_class(split.netloc, timeout=self.timeout)
        try:
            connection.request("POST", target, body=body, headers=headers)
            response = connection.getresponse()
            delivery.response_body = response.read()
            delivery.status = response.status
            delivery.response_headers = {k.lower(): v for k, v in response.getheaders()}
        except (OSError, http.client.HTTPException) as exc:
            delivery.error = f"{type(exc).__name__}: {exc}"
        finally:
            connection.close()
            delivery.seconds = time.monotonic() - started
        with self._lock:
            self.deliveries.append(delivery)
        return delivery
