"""What goes over the wire: recorded requests, replies, and Xero's shared answer shapes."""

from __future__ import annotations

import json
import re
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote

CONTACTS_PREFIX = "/api.xro/2.0/Contacts"
TOKEN_PATH = "/connect/token"
CONNECTIONS_PATH = "/connections"
ZERO_GUID = "00000000-0000-0000-0000-000000000000"
# Real Xero answers 404 (NOT_FOUND_TEXT) once a URL at https://api.xero.com passes 2,091
# characters (XeroAPI/Xero-NetStandard issue #471; xero-node issue #404): the fake measures each
# request as if it had been sent there.
XERO_API_ORIGIN = "https://api.xero.com"
MAX_URL_LENGTH = 2091

# Xero's own wording (docs/xero.md, "Error responses").
NOT_FOUND_TEXT = "The resource you're looking for cannot be found"
OUTAGE_TEXT = "The Xero API is currently offline for maintenance"
INTERNAL_ERROR_TEXT = (
    "An unhandled error with the Xero API. Contact the Xero API team if problems persist"
)

# Xero's operationIds, in snake case, keyed by (method, "list" | "one").
_CONTACT_KINDS = {
    ("GET", "list"): "get_contacts",
    ("PUT", "list"): "create_contacts",
    ("POST", "list"): "update_or_create_contacts",
    ("GET", "one"): "get_contact",
    ("POST", "one"): "update_contact",
}
WRITE_KINDS = frozenset({"create_contacts", "update_or_create_contacts", "update_contact"})


def is_contacts_path(path: str) -> bool:
    return path == CONTACTS_PREFIX or path.startswith(CONTACTS_PREFIX + "/")


def contacts_rest(path: str) -> str:
    """What follows ``/Contacts`` in a path, without surrounding slashes."""
    return path[len(CONTACTS_PREFIX) :].strip("/")


@dataclass
class RecordedRequest:
    """One HTTP request the fake received, with the status it answered."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes
    json: Any
    client_id: str | None
    status: int | None = None
    # time.monotonic() when the request arrived and when its answer was sent (None: dropped).
    received_at: float = 0.0
    answered_at: float | None = None
    # The X-Rate-Limit-Problem of a 429 answer ("minute", "day", "concurrent"...).
    rate_limit_problem: str = ""
    # The request target as sent: path and query string, still encoded.
    target: str = ""

    def header(self, name: str) -> str | None:
        """Return a request header by case-insensitive name."""
        return self.headers.get(name.lower())

    @property
    def kind(self) -> str:
        """What the call is, named after Xero's operation: ``get_contacts``, ``token``, …

        One of ``token``, ``connections``, ``get_contacts`` (GET /Contacts),
        ``get_contact`` (GET /Contacts/{id}), ``create_contacts`` (PUT /Contacts),
        ``update_or_create_contacts`` (POST /Contacts), ``update_contact``
        (POST /Contacts/{id}) or ``other``.
        """
        if self.path == TOKEN_PATH:
            return "token"
        if self.path.rstrip("/") == CONNECTIONS_PATH:
            return "connections"
        if not is_contacts_path(self.path):
            return "other"
        rest = contacts_rest(self.path)
        if "/" in rest:
            return "other"
        return _CONTACT_KINDS.get((self.method, "one" if rest else "list"), "other")

    @property
    def is_write(self) -> bool:
        """True for the calls that can change a contact (PUT/POST)."""
        return self.kind in WRITE_KINDS

    @property
    def contact_ids(self) -> frozenset[str]:
        """ContactIDs this request names: in its path, its ``IDs`` query, or its body."""
        ids: set[str] = set()
        if self.kind in ("get_contact", "update_contact"):
            ids.add(unquote(contacts_rest(self.path)).lower())
        for key, values in self.query.items():
            if key.lower() == "ids":
                ids.update(i.strip().lower() for v in values for i in v.split(",") if i.strip())
        elements = self.json.get("Contacts") if isinstance(self.json, dict) else None
        for element in elements if isinstance(elements, list) else ():
            if isinstance(element, dict) and element.get("ContactID"):
                ids.add(str(element["ContactID"]).lower())
        return frozenset(ids)


@dataclass
class Reply:
    """An answer the fake sends back."""

    status: int
    body: bytes = b""
    content_type: str = "text/plain; charset=utf-8"
    headers: dict[str, str] = field(default_factory=dict)

    def copy(self) -> Reply:
        return Reply(self.status, self.body, self.content_type, dict(self.headers))


DROP = Reply(status=0)  # sentinel: close the socket without answering


def json_reply(status: int, payload: Any, headers: dict[str, str] | None = None) -> Reply:
    return Reply(
        status=status,
        body=json.dumps(payload).encode("utf-8"),
        content_type="application/json; charset=utf-8",
        headers=dict(headers or {}),
    )


def text_reply(status: int, text: str, content_type: str = "text/plain") -> Reply:
    return Reply(
        status=status, body=text.encode("utf-8"), content_type=f"{content_type}; charset=utf-8"
    )


def not_found() -> Reply:
    # Xero's live 404 is plain HTML text, not JSON.
    return text_reply(404, NOT_FOUND_TEXT, "text/html")


def ms_date(ts: float, *, offset: bool) -> str:
    """Format a timestamp in Microsoft JSON form, as Xero does."""
    return f"/Date({int(ts * 1000)}{'+0000' if offset else ''})/"


def parse_ms_date(value: str) -> float | None:
    match = re.match(r"^/Date\((-?\d+)", value or "")
    return int(match.group(1)) / 1000 if match else None


def parse_iso(value: str | None) -> float | None:
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()


def envelope(payload: dict) -> dict:
    """Wrap a payload in Xero's response envelope."""
    return {
        "Id": str(uuid.uuid4()),
        "Status": "OK",
        "ProviderName": "fake-xero",
        "DateTimeUTC": ms_date(time.time(), offset=False),
        **payload,
    }


def unauthorized(detail: str) -> Reply:
    body = {
        "Type": None,
        "Title": "Unauthorized",
        "Status": 401,
        "Detail": detail,
        "Instance": str(uuid.uuid4()),
        "Extensions": {},
    }
    return json_reply(401, body, {"WWW-Authenticate": "Bearer"})


def forbidden() -> Reply:
    body = {
        "title": "Forbidden",
        "status": 403,
        "detail": "AuthenticationUnsuccessful",
        "instance": str(uuid.uuid4()),
    }
    return json_reply(403, body)
