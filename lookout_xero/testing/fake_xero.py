"""A fake Xero (identity + Accounting Contacts) that speaks real HTTP on loopback.

It follows the rules collected in the project's Xero fact sheet: client-credentials tokens,
Bearer auth, optional ``xero-tenant-id``, per-tenant minute/day/concurrency limits with the
``X-*Limit-Remaining`` headers, ``summarizeErrors``, ``Idempotency-Key`` and the Contacts
validation rules (unique active names, field lengths, e-mail format).

Standard library only, so it can run anywhere the tests or the demo run::

    python -m lookout_xero.testing.fake_xero --port 8765 --client-id demo-client \
        --client-secret demo-secret --name "Demo Company"
"""

from __future__ import annotations

import argparse
import base64
import copy
import json
import math
import re
import secrets
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, unquote_plus, urlsplit

__all__ = ["FakeOrg", "FakeXero", "RecordedRequest"]

CONTACTS_PREFIX = "/api.xro/2.0/Contacts"
TOKEN_PATH = "/connect/token"
CONNECTIONS_PATH = "/connections"
ZERO_GUID = "00000000-0000-0000-0000-000000000000"

# Texts taken from the fact sheet (FACTS.md §1.4, §2.1, §2.2, §3, §5).
NOT_FOUND_TEXT = "The resource you're looking for cannot be found"
NO_DATA_MESSAGE = (
    "No data has been processed for this endpoint. This endpoint is expecting Contact data "
    "to be specifed in the request body."
)
NAME_EMPTY = "Contact Name cannot be empty."
EMAIL_INVALID = "Email address must be valid."
NAME_TAKEN = (
    "The contact name {name} is already assigned to another contact. "
    "The contact name must be unique across all active contacts."
)
CONTACT_NOT_FOUND = "The specified contact could not be found."
PUT_WITH_ID = "A ContactID cannot be supplied when creating contacts with PUT; use POST to update."
OUTAGE_TEXT = "The Xero API is currently offline for maintenance"
INTERNAL_ERROR_TEXT = (
    "An unhandled error with the Xero API. Contact the Xero API team if problems persist"
)

CONTACT_STATUSES = ("ACTIVE", "ARCHIVED", "GDPRREQUEST")
PHONE_TYPES = ("DEFAULT", "DDI", "MOBILE", "FAX", "OFFICE")
STANDARD_PHONE_TYPES = ("DEFAULT", "DDI", "FAX", "MOBILE")
ADDRESS_TYPES = ("POBOX", "STREET")

CONTACT_MAX_LENGTHS = {
    "Name": 255,
    "FirstName": 255,
    "LastName": 255,
    "EmailAddress": 255,
    "ContactNumber": 50,
    "AccountNumber": 50,
    "TaxNumber": 50,
    "CompanyNumber": 50,
}
PHONE_MAX_LENGTHS = {"PhoneNumber": 50, "PhoneAreaCode": 10, "PhoneCountryCode": 20}
ADDRESS_MAX_LENGTHS = {
    "AddressLine1": 500,
    "AddressLine2": 500,
    "AddressLine3": 500,
    "AddressLine4": 500,
    "City": 255,
    "Region": 255,
    "PostalCode": 50,
    "Country": 50,
    "AttentionTo": 255,
}
# Xero always returns these keys on an address, empty when unset.
ADDRESS_DEFAULT_KEYS = ("City", "Region", "PostalCode", "Country")

# Read-only or response-only fields: accepted in a request body but never stored from it.
IGNORED_INPUT_FIELDS = frozenset(
    {
        "ContactID",
        "Website",
        "UpdatedDateUTC",
        "IsSupplier",
        "IsCustomer",
        "HasValidationErrors",
        "ValidationErrors",
        "StatusAttributeString",
        "Warnings",
        "Balances",
        "Discount",
        "HasAttachments",
        "Attachments",
        "MergedToContactID",
    }
)
WHERE_FIELDS = (
    "Name",
    "EmailAddress",
    "ContactNumber",
    "ContactStatus",
    "FirstName",
    "LastName",
    "AccountNumber",
)
# Xero compares these case-insensitively; the others exactly.
CASE_INSENSITIVE_FIELDS = frozenset({"Name", "EmailAddress"})
SEARCH_FIELDS = ("Name", "FirstName", "LastName", "ContactNumber", "EmailAddress")
EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
IDEMPOTENCY_KEY_MAX = 128


# --------------------------------------------------------------------------- data model


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

    def header(self, name: str) -> str | None:
        """Return a request header by case-insensitive name."""
        return self.headers.get(name.lower())


@dataclass
class _Token:
    value: str
    client_id: str
    scopes: tuple[str, ...]
    expires_at: float


@dataclass
class _Fault:
    kind: str  # "fail", "drop" or "delay"
    remaining: int
    path_contains: str
    method: str | None = None
    status: int = 500
    body: bytes = b""
    content_type: str = "text/plain"
    headers: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0
    after_processing: bool = False

    def matches(self, method: str, path: str) -> bool:
        if self.remaining <= 0 or self.path_contains not in path:
            return False
        return self.method is None or self.method.upper() == method


@dataclass
class _Reply:
    status: int
    body: bytes = b""
    content_type: str = "text/plain; charset=utf-8"
    headers: dict[str, str] = field(default_factory=dict)


_DROP = _Reply(status=0)  # sentinel: close the socket without answering


@dataclass
class _IdempotencyEntry:
    fingerprint: tuple[str, str, bytes]
    reply: _Reply
    expires_at: float


def _json_reply(status: int, payload: Any, headers: dict[str, str] | None = None) -> _Reply:
    return _Reply(
        status=status,
        body=json.dumps(payload).encode("utf-8"),
        content_type="application/json; charset=utf-8",
        headers=dict(headers or {}),
    )


def _text_reply(status: int, text: str, content_type: str = "text/plain") -> _Reply:
    return _Reply(
        status=status, body=text.encode("utf-8"), content_type=f"{content_type}; charset=utf-8"
    )


def _ms_date(ts: float, *, offset: bool) -> str:
    """Format a timestamp in Microsoft JSON form, as Xero does."""
    return f"/Date({int(ts * 1000)}{'+0000' if offset else ''})/"


def _parse_ms_date(value: str) -> float | None:
    match = re.match(r"^/Date\((-?\d+)", value or "")
    return int(match.group(1)) / 1000 if match else None


def _fold(value: str | None) -> str:
    return (value or "").strip().lower()


class FakeOrg:
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
        self._fake = fake
        self.client_id = client_id
        self.client_secret = client_secret
        self.name = name
        self.tenant_id = str(uuid.uuid4())
        self.scopes: tuple[str, ...] = tuple(scopes)
        self.reject_explicit_scope = reject_explicit_scope
        self.contacts: dict[str, dict] = {}
        self.calls_today = 0
        self.calls_this_minute = 0
        self.in_flight = 0
        self.created_at = datetime.now(UTC)
        self._minute_started: float | None = None
        self._day_started: float | None = None
        self._idempotency: dict[str, _IdempotencyEntry] = {}

    def __repr__(self) -> str:
        return f"<FakeOrg {self.name!r} client_id={self.client_id!r} contacts={len(self.contacts)}>"

    def add_contact(self, **fields: Any) -> dict:
        """Seed a pre-existing contact (no uniqueness check) and return the stored copy."""
        with self._fake._lock:
            contact_id = str(fields.pop("ContactID", None) or uuid.uuid4()).lower()
            stored = _blank_contact(contact_id)
            errors = _apply_fields(stored, fields, creating=True)
            if errors:
                raise ValueError("; ".join(errors))
            stored["UpdatedDateUTC"] = _ms_date(time.time(), offset=True)
            self.contacts[contact_id] = stored
            return copy.deepcopy(stored)

    def find(
        self, *, name: str | None = None, email: str | None = None, number: str | None = None
    ) -> list[dict]:
        """Return stored contacts (archived included) matching every given criterion."""
        with self._fake._lock:
            found = []
            for contact in self.contacts.values():
                if name is not None and _fold(contact.get("Name")) != _fold(name):
                    continue
                if email is not None and _fold(contact.get("EmailAddress")) != _fold(email):
                    continue
                if number is not None and contact.get("ContactNumber") != number:
                    continue
                found.append(copy.deepcopy(contact))
            return found

    def set_limits(
        self, *, minute_remaining: int | None = None, day_remaining: int | None = None
    ) -> None:
        """Force the counters so the next call sees these remaining allowances."""
        with self._fake._lock:
            now = time.monotonic()
            if minute_remaining is not None:
                self._minute_started = now
                self.calls_this_minute = self._fake.minute_limit - minute_remaining
            if day_remaining is not None:
                self._day_started = now
                self.calls_today = self._fake.day_limit - day_remaining

    # Rate-limit bookkeeping; callers hold the fake's data lock.

    def _roll_windows(self, now: float) -> None:
        # Fixed windows that start at this tenant's first call, as Xero describes.
        if self._minute_started is None or now - self._minute_started >= 60:
            self._minute_started = now
            self.calls_this_minute = 0
        if self._day_started is None or now - self._day_started >= 86400:
            self._day_started = now
            self.calls_today = 0

    def _retry_after(self, started: float | None, window: int, now: float) -> int:
        return max(1, math.ceil((started or now) + window - now))


# --------------------------------------------------------------------------- contacts logic


def _blank_contact(contact_id: str) -> dict:
    return {
        "ContactID": contact_id,
        "ContactStatus": "ACTIVE",
        "Addresses": [_blank_address(kind) for kind in ADDRESS_TYPES],
        "Phones": [_blank_phone(kind) for kind in STANDARD_PHONE_TYPES],
        "UpdatedDateUTC": "",
        "ContactGroups": [],
        "IsSupplier": False,
        "IsCustomer": False,
        "ContactPersons": [],
        "HasAttachments": False,
        "HasValidationErrors": False,
    }


def _blank_phone(kind: str) -> dict:
    return {"PhoneType": kind, "PhoneNumber": "", "PhoneAreaCode": "", "PhoneCountryCode": ""}


def _blank_address(kind: str) -> dict:
    return {"AddressType": kind, **dict.fromkeys(ADDRESS_DEFAULT_KEYS, "")}


def _check_length(errors: list[str], label: str, value: Any, limit: int) -> None:
    if value is None:
        return
    if not isinstance(value, str):
        errors.append(f"{label} must be a string.")
    elif len(value) > limit:
        errors.append(f"{label} must not be more than {limit} characters long.")


def _merge_phones(stored: dict, phones: Any, errors: list[str]) -> None:
    """Replace the stored phone of each PhoneType that was sent; keep the others."""
    if not isinstance(phones, list):
        errors.append("Phones must be a list.")
        return
    by_type = {phone["PhoneType"]: phone for phone in stored["Phones"]}
    for phone in phones:
        if not isinstance(phone, dict):
            errors.append("Each phone must be an object.")
            continue
        kind = phone.get("PhoneType") or "DEFAULT"
        if kind not in PHONE_TYPES:
            errors.append(f"PhoneType must be one of {', '.join(PHONE_TYPES)}.")
            continue
        for key, limit in PHONE_MAX_LENGTHS.items():
            _check_length(errors, key, phone.get(key), limit)
        new = _blank_phone(kind)
        new.update({k: phone[k] for k in PHONE_MAX_LENGTHS if isinstance(phone.get(k), str)})
        by_type[kind] = new
    order = [*STANDARD_PHONE_TYPES, "OFFICE"]
    stored["Phones"] = [by_type[kind] for kind in order if kind in by_type]


def _merge_addresses(stored: dict, addresses: Any, errors: list[str]) -> None:
    """Replace the stored address of each AddressType that was sent; keep the others."""
    if not isinstance(addresses, list):
        errors.append("Addresses must be a list.")
        return
    by_type = {address["AddressType"]: address for address in stored["Addresses"]}
    for address in addresses:
        if not isinstance(address, dict):
            errors.append("Each address must be an object.")
            continue
        kind = address.get("AddressType") or "POBOX"
        if kind not in ADDRESS_TYPES:
            errors.append(f"AddressType must be one of {', '.join(ADDRESS_TYPES)}.")
            continue
        for key, limit in ADDRESS_MAX_LENGTHS.items():
            _check_length(errors, key, address.get(key), limit)
        new = _blank_address(kind)
        new.update({k: address[k] for k in ADDRESS_MAX_LENGTHS if isinstance(address.get(k), str)})
        by_type[kind] = new
    stored["Addresses"] = [by_type[kind] for kind in ADDRESS_TYPES if kind in by_type]


def _apply_fields(stored: dict, incoming: dict, *, creating: bool) -> list[str]:
    """Validate ``incoming`` and merge it into ``stored`` in place; return error messages."""
    errors: list[str] = []
    name = incoming.get("Name")
    if (creating and name is None) or (isinstance(name, str) and not name.strip()):
        errors.append(NAME_EMPTY)
    for key, limit in CONTACT_MAX_LENGTHS.items():
        _check_length(errors, key, incoming.get(key), limit)
    email = incoming.get("EmailAddress")
    # Xero rejects non-ASCII ("umlauts not supported") as well as malformed addresses.
    if isinstance(email, str) and email and not (email.isascii() and EMAIL_RE.match(email)):
        errors.append(EMAIL_INVALID)
    status = incoming.get("ContactStatus")
    if status not in (None, "") and status not in CONTACT_STATUSES:
        errors.append(f"ContactStatus must be one of {', '.join(CONTACT_STATUSES)}.")

    for key, value in incoming.items():
        if key in IGNORED_INPUT_FIELDS or value is None:
            continue
        if key == "Phones":
            _merge_phones(stored, value, errors)
        elif key == "Addresses":
            _merge_addresses(stored, value, errors)
        elif key == "ContactStatus" and value == "":
            continue  # a status cannot be cleared; keep the current one
        elif value == "":
            stored.pop(key, None)  # "" clears a field
        else:
            stored[key] = copy.deepcopy(value)
    return errors


# --------------------------------------------------------------------------- where filter

_CLAUSE_RE = re.compile(
    r"""^\s*(?P<field>[A-Za-z]+)\s*(?:
        (?P<op>==|!=)\s*(?P<value>null|"(?:[^"\\]|\\.)*")
      | \.(?P<method>Contains|StartsWith|EndsWith)\(\s*(?P<arg>"(?:[^"\\]|\\.)*")\s*\)
    )\s*$""",
    re.VERBOSE,
)


class _QueryError(ValueError):
    pass


def _split_outside_quotes(text: str, symbol: str, word: str) -> list[str]:
    """Split on ``symbol`` (e.g. ``||``) or the word operator (e.g. ``OR``) outside quotes."""
    parts, start, i, quoted = [], 0, 0, False
    spaced_word = f" {word} "
    while i < len(text):
        char = text[i]
        if char == "\\" and quoted:
            i += 2
            continue
        if char == '"':
            quoted = not quoted
        elif not quoted and text.startswith(symbol, i):
            parts.append(text[start:i])
            i += len(symbol)
            start = i
            continue
        elif not quoted and text[i : i + len(spaced_word)].upper() == spaced_word:
            parts.append(text[start:i])
            i += len(spaced_word)
            start = i
            continue
        i += 1
    parts.append(text[start:])
    return parts


def _parse_where(text: str) -> list[list[Callable[[dict], bool]]]:
    """Parse the supported ``where`` subset into OR-of-AND predicate groups."""
    groups = []
    for disjunct in _split_outside_quotes(text, "||", "OR"):
        group = []
        for clause in _split_outside_quotes(disjunct, "&&", "AND"):
            match = _CLAUSE_RE.match(clause)
            if not match:
                raise _QueryError(f"Syntax error in where clause '{clause.strip()}'")
            name = match["field"]
            if name not in WHERE_FIELDS:
                raise _QueryError(f"No property or field '{name}' exists in type 'Contact'")
            group.append(_clause_predicate(name, match))
        groups.append(group)
    return groups


def _clause_predicate(name: str, match: re.Match) -> Callable[[dict], bool]:
    fold = (lambda s: s.lower()) if name in CASE_INSENSITIVE_FIELDS else (lambda s: s)

    def current(contact: dict) -> str | None:
        return contact.get(name) or None  # Xero treats an empty field as null

    if match["op"]:
        wanted = None if match["value"] == "null" else json.loads(match["value"])
        equal = match["op"] == "=="

        def compare(contact: dict) -> bool:
            value = current(contact)
            if wanted is None:
                same = value is None
            else:
                same = value is not None and fold(value) == fold(wanted)
            return same if equal else not same

        return compare

    argument = fold(json.loads(match["arg"]))
    method = match["method"]

    def call(contact: dict) -> bool:
        value = current(contact)
        if value is None:
            return False
        value = fold(value)
        if method == "Contains":
            return argument in value
        if method == "StartsWith":
            return value.startswith(argument)
        return value.endswith(argument)

    return call


# --------------------------------------------------------------------------- the server


class FakeXero:
    """A fake Xero identity + Accounting API served over real HTTP on loopback."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        minute_limit: int = 60,
        day_limit: int = 5000,
        concurrent_limit: int = 5,
        token_ttl: int = 1800,
        app_minute_limit: int = 10000,
        idempotency_ttl: float = 360,
    ) -> None:
        self.minute_limit = minute_limit
        self.day_limit = day_limit
        self.concurrent_limit = concurrent_limit
        self.token_ttl = token_ttl
        self.app_minute_limit = app_minute_limit
        self.idempotency_ttl = idempotency_ttl
        self.requests: list[RecordedRequest] = []
        # One lock around the data model; in-flight counting has its own lock so a request
        # sleeping in delay_next() holds a concurrency slot without blocking other requests.
        self._lock = threading.RLock()
        self._flight_lock = threading.Lock()
        self._log_lock = threading.Lock()
        self._orgs: dict[str, FakeOrg] = {}
        self._tokens: dict[str, _Token] = {}
        self._faults: list[_Fault] = []
        self._app_minute_started: float | None = None
        self._app_calls_this_minute = 0
        self._server = _Server((host, port), _Handler, self)
        self._thread: threading.Thread | None = None
        bound_host, bound_port = self._server.server_address[:2]
        self.url = f"http://{bound_host}:{bound_port}"
        self.token_url = self.url + TOKEN_PATH
        self.api_url = self.url

    # -- lifecycle

    def start(self) -> FakeXero:
        """Serve in a daemon thread and return self."""
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._server.serve_forever,
                kwargs={"poll_interval": 0.05},
                name="fake-xero",
                daemon=True,
            )
            self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and release the port."""
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join(timeout=5)
            self._thread = None
        self._server.server_close()

    def __enter__(self) -> FakeXero:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- organisations and state

    def add_organisation(
        self,
        client_id: str,
        client_secret: str,
        name: str = "Demo Company",
        *,
        scopes: Iterable[str] = ("accounting.contacts",),
        reject_explicit_scope: bool = False,
    ) -> FakeOrg:
        """Register an organisation reachable with these custom-connection credentials."""
        with self._lock:
            if client_id in self._orgs:
                raise ValueError(f"client_id {client_id!r} already has an organisation")
            org = FakeOrg(self, client_id, client_secret, name, scopes, reject_explicit_scope)
            self._orgs[client_id] = org
            return org

    def org(self, client_id: str) -> FakeOrg:
        """Return the organisation registered for ``client_id``."""
        with self._lock:
            return self._orgs[client_id]

    def reset(self) -> None:
        """Drop all organisations, tokens, faults, counters and the request log."""
        with self._lock:
            self._orgs.clear()
            self._tokens.clear()
            self._app_minute_started = None
            self._app_calls_this_minute = 0
            with self._log_lock:
                self._faults.clear()
                self.requests.clear()

    def requests_for(self, client_id: str) -> list[RecordedRequest]:
        """Requests made with a token of that org, plus its token requests."""
        with self._log_lock:
            return [r for r in self.requests if r.client_id == client_id]

    def expire_tokens(self) -> None:
        """Make every issued token invalid; the next API call gets 401 TokenExpired."""
        with self._lock:
            past = time.time() - 1
            for token in self._tokens.values():
                token.expires_at = min(token.expires_at, past)

    # -- fault injection

    def fail_next(
        self,
        status: int,
        *,
        times: int = 1,
        body: str | bytes | dict | list | None = None,
        content_type: str = "text/plain",
        headers: dict[str, str] | None = None,
        path_contains: str = "/Contacts",
        method: str | None = None,
    ) -> None:
        """Answer the next ``times`` matching requests with this response instead."""
        if body is None:
            body = {503: OUTAGE_TEXT, 500: INTERNAL_ERROR_TEXT}.get(
                status, HTTPStatus(status).phrase
            )
        if isinstance(body, dict | list):
            body = json.dumps(body)
            if content_type == "text/plain":
                content_type = "application/json"
        raw = body.encode("utf-8") if isinstance(body, str) else body
        self._add_fault(
            _Fault(
                kind="fail",
                remaining=times,
                path_contains=path_contains,
                method=method,
                status=status,
                body=raw,
                content_type=content_type,
                headers=dict(headers or {}),
            )
        )

    def drop_next(
        self, *, times: int = 1, path_contains: str = "/Contacts", after_processing: bool = False
    ) -> None:
        """Close the socket without answering the next ``times`` matching requests.

        With ``after_processing=True`` the request is handled (and saved) first, so the
        client loses only the response: the case idempotency keys exist for.
        """
        self._add_fault(
            _Fault(
                kind="drop",
                remaining=times,
                path_contains=path_contains,
                after_processing=after_processing,
            )
        )

    def delay_next(
        self, seconds: float, *, times: int = 1, path_contains: str = "/Contacts"
    ) -> None:
        """Sleep ``seconds`` before answering the next ``times`` matching requests."""
        self._add_fault(
            _Fault(kind="delay", remaining=times, path_contains=path_contains, seconds=seconds)
        )

    def wait_for(self, predicate: Callable[[FakeXero], bool], timeout: float = 10.0) -> bool:
        """Poll ``predicate(self)`` until it is true or ``timeout`` seconds pass."""
        deadline = time.monotonic() + timeout
        while True:
            if predicate(self):
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.01)

    def _add_fault(self, fault: _Fault) -> None:
        with self._log_lock:
            self._faults.append(fault)

    def _take_fault(self, kinds: tuple[str, ...], method: str, path: str) -> _Fault | None:
        with self._log_lock:
            for fault in self._faults:
                if fault.kind in kinds and fault.matches(method, path):
                    fault.remaining -= 1
                    if fault.remaining <= 0:
                        self._faults.remove(fault)
                    return fault
        return None

    # -- request entry point (called from handler threads)

    def _record(self, record: RecordedRequest) -> None:
        with self._log_lock:
            self.requests.append(record)

    def _serve(self, record: RecordedRequest) -> _Reply:
        fault = self._take_fault(("fail", "drop"), record.method, record.path)
        if fault is not None and fault.kind == "fail":
            headers = dict(fault.headers)
            return _Reply(fault.status, fault.body, fault.content_type, headers)
        if fault is not None and not fault.after_processing:
            return _DROP
        if record.path == CONTACTS_PREFIX or record.path.startswith(CONTACTS_PREFIX + "/"):
            reply = self._serve_contacts(record)
        else:
            self._maybe_delay(record)
            if record.path == TOKEN_PATH:
                reply = self._serve_token(record)
            elif record.path.rstrip("/") == CONNECTIONS_PATH:
                reply = self._serve_connections(record)
            else:
                reply = _text_reply(404, NOT_FOUND_TEXT, "text/html")
        return _DROP if fault is not None else reply

    def _maybe_delay(self, record: RecordedRequest) -> None:
        fault = self._take_fault(("delay",), record.method, record.path)
        if fault is not None:
            time.sleep(fault.seconds)

    def _client_id_for(self, headers: dict[str, str], form: dict[str, list[str]]) -> str | None:
        """Best-effort org for the request log: from the bearer token or token credentials."""
        auth = headers.get("authorization", "")
        with self._lock:
            if auth[:7].lower() == "bearer ":
                token = self._tokens.get(auth[7:].strip())
                return token.client_id if token else None
            client_id = _basic_credentials(auth)[0] or (form.get("client_id") or [None])[0]
            return client_id if client_id in self._orgs else None

    # -- identity

    def _serve_token(self, record: RecordedRequest) -> _Reply:
        if record.method != "POST":
            return _json_reply(400, {"error": "invalid_request"})
        form = parse_qs(record.body.decode("utf-8", "replace"), keep_blank_values=True)
        client_id, client_secret = _basic_credentials(record.header("authorization") or "")
        if client_id is None:
            client_id = (form.get("client_id") or [None])[0]
            client_secret = (form.get("client_secret") or [None])[0]
        with self._lock:
            org = self._orgs.get(client_id or "")
            if org is None or not secrets.compare_digest(
                (client_secret or "").encode(), org.client_secret.encode()
            ):
                return _json_reply(400, {"error": "invalid_client"})
            if (form.get("grant_type") or [""])[0] != "client_credentials":
                return _json_reply(400, {"error": "unsupported_grant_type"})
            requested = (form.get("scope") or [""])[0].split()
            if requested and (
                org.reject_explicit_scope or any(s not in org.scopes for s in requested)
            ):
                return _json_reply(400, {"error": "invalid_scope"})
            scopes = tuple(requested) if requested else org.scopes
            value = secrets.token_urlsafe(48)
            self._tokens[value] = _Token(value, org.client_id, scopes, time.time() + self.token_ttl)
        return _json_reply(
            200,
            {
                "access_token": value,
                "expires_in": self.token_ttl,
                "token_type": "Bearer",
                "scope": " ".join(scopes),
            },
            {"Cache-Control": "no-store", "Pragma": "no-cache"},
        )

    def _authenticate(self, record: RecordedRequest) -> tuple[FakeOrg, _Token] | _Reply:
        auth = record.header("authorization") or ""
        with self._lock:
            token = self._tokens.get(auth[7:].strip()) if auth[:7].lower() == "bearer " else None
            org = self._orgs.get(token.client_id) if token else None
            if token is None or org is None:
                return _unauthorized("AuthorizationUnsuccessful")
            if time.time() >= token.expires_at:
                when = datetime.fromtimestamp(token.expires_at, UTC)
                return _unauthorized(f"TokenExpired: token expired at {when:%m/%d/%Y %H:%M:%S}")
            return org, token

    def _serve_connections(self, record: RecordedRequest) -> _Reply:
        auth = self._authenticate(record)
        if isinstance(auth, _Reply):
            return auth
        org, _token = auth
        if record.method != "GET":
            return _text_reply(405, "Method not allowed")
        stamp = org.created_at.strftime("%Y-%m-%dT%H:%M:%S.%f0")
        # Tenantless endpoint: no tenant limits counted and no X-*Limit headers.
        return _json_reply(
            200,
            [
                {
                    "id": str(uuid.uuid5(uuid.NAMESPACE_URL, org.tenant_id + org.client_id)),
                    "authEventId": str(uuid.uuid5(uuid.NAMESPACE_URL, org.client_id)),
                    "tenantId": org.tenant_id,
                    "tenantType": "ORGANISATION",
                    "tenantName": org.name,
                    "createdDateUtc": stamp,
                    "updatedDateUtc": stamp,
                }
            ],
        )

    # -- accounting: Contacts

    def _serve_contacts(self, record: RecordedRequest) -> _Reply:
        auth = self._authenticate(record)
        if isinstance(auth, _Reply):
            return auth
        org, token = auth
        tenant = (record.header("xero-tenant-id") or "").strip()
        if tenant and tenant.lower() != org.tenant_id.lower():
            return _forbidden()
        needed = ("accounting.contacts", "accounting.contacts.read")
        if record.method != "GET":
            needed = ("accounting.contacts",)
        if not any(scope in token.scopes for scope in needed):
            return _forbidden()

        with self._flight_lock:
            if org.in_flight >= self.concurrent_limit:
                with self._lock:
                    headers = self._limit_headers(org)
                return _rate_limited("concurrent", None, headers)
            org.in_flight += 1
        try:
            self._maybe_delay(record)
            with self._lock:
                limited = self._count_call(org)
                if limited is not None:
                    return limited
                reply = self._contacts_with_idempotency(org, record)
                reply.headers.update(self._limit_headers(org))
                return reply
        finally:
            with self._flight_lock:
                org.in_flight -= 1

    def _count_call(self, org: FakeOrg) -> _Reply | None:
        """Count one tenant call, or return the 429 if a window is used up (not counted)."""
        now = time.monotonic()
        org._roll_windows(now)
        if self._app_minute_started is None or now - self._app_minute_started >= 60:
            self._app_minute_started = now
            self._app_calls_this_minute = 0
        if org.calls_today >= self.day_limit:
            retry = org._retry_after(org._day_started, 86400, now)
            return _rate_limited("day", retry, self._limit_headers(org))
        if org.calls_this_minute >= self.minute_limit:
            retry = org._retry_after(org._minute_started, 60, now)
            return _rate_limited("minute", retry, self._limit_headers(org))
        if self._app_calls_this_minute >= self.app_minute_limit:
            retry = org._retry_after(self._app_minute_started, 60, now)
            return _rate_limited("appminute", retry, self._limit_headers(org))
        org.calls_today += 1
        org.calls_this_minute += 1
        self._app_calls_this_minute += 1
        return None

    def _limit_headers(self, org: FakeOrg) -> dict[str, str]:
        return {
            "X-DayLimit-Remaining": str(max(0, self.day_limit - org.calls_today)),
            "X-MinLimit-Remaining": str(max(0, self.minute_limit - org.calls_this_minute)),
            "X-AppMinLimit-Remaining": str(
                max(0, self.app_minute_limit - self._app_calls_this_minute)
            ),
        }

    def _contacts_with_idempotency(self, org: FakeOrg, record: RecordedRequest) -> _Reply:
        key = (record.header("idempotency-key") or "").strip()
        if record.method not in ("PUT", "POST", "PATCH") or not key:
            return self._contacts(org, record)
        if len(key) > IDEMPOTENCY_KEY_MAX:
            return _text_reply(
                400, f"Idempotency-Key must not be more than {IDEMPOTENCY_KEY_MAX} characters."
            )
        now = time.monotonic()
        for stale in [k for k, e in org._idempotency.items() if e.expires_at <= now]:
            del org._idempotency[stale]
        fingerprint = (record.method, record.path, record.body)
        entry = org._idempotency.get(key)
        if entry is not None:
            if entry.fingerprint != fingerprint:
                return _text_reply(400, f"Idempotency Key: {key} is used with a different request.")
            replay = entry.reply
            return _Reply(replay.status, replay.body, replay.content_type, dict(replay.headers))
        reply = self._contacts(org, record)
        stored = _Reply(reply.status, reply.body, reply.content_type, dict(reply.headers))
        org._idempotency[key] = _IdempotencyEntry(fingerprint, stored, now + self.idempotency_ttl)
        return reply

    def _contacts(self, org: FakeOrg, record: RecordedRequest) -> _Reply:
        rest = record.path[len(CONTACTS_PREFIX) :].strip("/")
        if "/" in rest:
            return _text_reply(404, NOT_FOUND_TEXT, "text/html")
        ident = unquote(rest) or None
        if record.method == "GET":
            return self._get_one(org, ident) if ident else self._list(org, record)
        if record.method == "PUT" and ident is None:
            return self._save(org, record, mode="create")
        if record.method == "POST" and ident is None:
            return self._save(org, record, mode="upsert")
        if record.method == "POST":
            if ident.lower() not in org.contacts:
                return _text_reply(404, NOT_FOUND_TEXT, "text/html")
            return self._save(org, record, mode="update", path_id=ident.lower())
        return _text_reply(405, "Method not allowed")

    def _get_one(self, org: FakeOrg, ident: str) -> _Reply:
        contact = org.contacts.get(ident.lower())
        if contact is None:
            contact = next(
                (c for c in org.contacts.values() if c.get("ContactNumber") == ident), None
            )
        if contact is None:
            return _text_reply(404, NOT_FOUND_TEXT, "text/html")
        return _json_reply(200, _envelope({"Contacts": [copy.deepcopy(contact)]}))

    def _list(self, org: FakeOrg, record: RecordedRequest) -> _Reply:
        query = {k.lower(): v[-1] for k, v in record.query.items()}
        contacts = list(org.contacts.values())
        if query.get("includearchived", "").lower() != "true":
            contacts = [c for c in contacts if c.get("ContactStatus") != "ARCHIVED"]
        if query.get("ids"):
            wanted = {i.strip().lower() for i in query["ids"].split(",") if i.strip()}
            contacts = [c for c in contacts if c["ContactID"] in wanted]
        if query.get("where"):
            try:
                groups = _parse_where(query["where"])
            except _QueryError as exc:
                return _json_reply(
                    400, {"ErrorNumber": 16, "Type": "QueryParseException", "Message": str(exc)}
                )
            contacts = [c for c in contacts if any(all(p(c) for p in g) for g in groups)]
        if query.get("searchterm"):
            term = query["searchterm"].lower()
            contacts = [
                c for c in contacts if any(term in (c.get(f) or "").lower() for f in SEARCH_FIELDS)
            ]
        since = _parse_iso(record.header("if-modified-since"))
        if since is not None:
            contacts = [c for c in contacts if (_parse_ms_date(c["UpdatedDateUTC"]) or 0) >= since]

        payload: dict[str, Any] = {}
        if "page" in query:
            try:
                page = max(1, int(query["page"]))
                size = min(1000, max(1, int(query.get("pagesize") or 100)))
            except ValueError:
                return _text_reply(400, "page and pageSize must be integers")
            total = len(contacts)
            payload["pagination"] = {
                "page": page,
                "pageSize": size,
                "pageCount": math.ceil(total / size),
                "itemCount": total,
            }
            contacts = contacts[(page - 1) * size : page * size]
        payload["Contacts"] = copy.deepcopy(contacts)
        return _json_reply(200, _envelope(payload))

    def _save(
        self, org: FakeOrg, record: RecordedRequest, *, mode: str, path_id: str | None = None
    ) -> _Reply:
        if record.body.strip() and record.json is None:
            return _text_reply(400, "The request body could not be parsed as JSON.")
        elements = record.json.get("Contacts") if isinstance(record.json, dict) else None
        if not isinstance(elements, list) or not elements:
            return _json_reply(
                400,
                {"ErrorNumber": 17, "Type": "NoDataProcessedException", "Message": NO_DATA_MESSAGE},
            )
        if mode == "update":
            elements = elements[:1]  # POST /Contacts/{ContactID} updates exactly one contact
        summarize = True
        for key, values in record.query.items():
            if key.lower() == "summarizeerrors" and values[-1].strip().lower() == "false":
                summarize = False

        results = [self._save_one(org, element, mode, path_id) for element in elements]
        if summarize:
            failed = [element for element, ok in results if not ok]
            if failed:
                return _json_reply(
                    400,
                    {
                        "ErrorNumber": 10,
                        "Type": "ValidationException",
                        "Message": "A validation exception occurred",
                        "Elements": failed,
                    },
                )
            return _json_reply(200, _envelope({"Contacts": [element for element, _ in results]}))
        for element, ok in results:
            element["StatusAttributeString"] = "OK" if ok else "ERROR"
        return _json_reply(200, _envelope({"Contacts": [element for element, _ in results]}))

    def _save_one(
        self, org: FakeOrg, element: Any, mode: str, path_id: str | None
    ) -> tuple[dict, bool]:
        """Apply one element; return (element for the response, succeeded)."""
        if not isinstance(element, dict):
            return _failed({}, ZERO_GUID, ["Each contact must be an object."]), False
        sent_id = element.get("ContactID")
        target_id = path_id or (str(sent_id).strip().lower() if sent_id else None)
        if mode == "create" and sent_id:
            return _failed(element, str(sent_id), [PUT_WITH_ID]), False
        existing = org.contacts.get(target_id) if target_id else None
        if target_id and existing is None:
            return _failed(element, str(sent_id), [CONTACT_NOT_FOUND]), False

        creating = existing is None
        new_id = target_id or str(uuid.uuid4())
        candidate = copy.deepcopy(existing) if existing else _blank_contact(new_id)
        errors = _apply_fields(candidate, element, creating=creating)
        if not errors and candidate.get("ContactStatus") == "ACTIVE":
            renamed = creating or _fold(candidate.get("Name")) != _fold(existing.get("Name"))
            reactivated = not creating and existing.get("ContactStatus") != "ACTIVE"
            if (renamed or reactivated) and self._name_taken(org, candidate["Name"], new_id):
                errors.append(NAME_TAKEN.format(name=candidate["Name"]))
        if errors:
            return _failed(element, target_id or ZERO_GUID, errors), False

        candidate["UpdatedDateUTC"] = _ms_date(time.time(), offset=True)
        org.contacts[new_id] = candidate
        return copy.deepcopy(candidate), True

    @staticmethod
    def _name_taken(org: FakeOrg, name: str, own_id: str) -> bool:
        folded = _fold(name)
        return any(
            cid != own_id and c.get("ContactStatus") == "ACTIVE" and _fold(c.get("Name")) == folded
            for cid, c in org.contacts.items()
        )


def _failed(element: dict, contact_id: str, errors: list[str]) -> dict:
    """Echo a rejected element back the way Xero does, with its validation errors."""
    echoed = copy.deepcopy(element)
    echoed["ContactID"] = contact_id
    echoed["HasValidationErrors"] = True
    echoed["ValidationErrors"] = [{"Message": message} for message in errors]
    return echoed


def _envelope(payload: dict) -> dict:
    return {
        "Id": str(uuid.uuid4()),
        "Status": "OK",
        "ProviderName": "fake-xero",
        "DateTimeUTC": _ms_date(time.time(), offset=False),
        **payload,
    }


def _unauthorized(detail: str) -> _Reply:
    body = {
        "Type": None,
        "Title": "Unauthorized",
        "Status": 401,
        "Detail": detail,
        "Instance": str(uuid.uuid4()),
        "Extensions": {},
    }
    return _json_reply(401, body, {"WWW-Authenticate": "Bearer"})


def _forbidden() -> _Reply:
    body = {
        "title": "Forbidden",
        "status": 403,
        "detail": "AuthenticationUnsuccessful",
        "instance": str(uuid.uuid4()),
    }
    return _json_reply(403, body)


def _rate_limited(problem: str, retry_after: int | None, headers: dict[str, str]) -> _Reply:
    reply = _text_reply(429, f"Rate limit exceeded: {problem} limit reached")
    reply.headers.update(headers)
    reply.headers["X-Rate-Limit-Problem"] = problem
    if retry_after is not None:
        reply.headers["Retry-After"] = str(retry_after)
    return reply


def _basic_credentials(auth: str) -> tuple[str | None, str | None]:
    """Decode ``Authorization: Basic`` (form-urlencoded parts, per RFC 6749 §2.3.1)."""
    if auth[:6].lower() != "basic ":
        return None, None
    try:
        decoded = base64.b64decode(auth[6:].strip(), validate=True).decode("utf-8")
    except (ValueError, UnicodeDecodeError):
        return None, None
    client_id, _, client_secret = decoded.partition(":")
    return unquote_plus(client_id), unquote_plus(client_secret)


def _parse_iso(value: str | None) -> float | None:
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()


# --------------------------------------------------------------------------- HTTP plumbing


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], handler: type, fake: FakeXero) -> None:
        self.fake = fake
        super().__init__(address, handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Stay quiet: dropped and reset connections are part of the fake's job."""


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "fake-xero/1.0"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        """Keep test output clean."""

    def do_GET(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    def do_PUT(self) -> None:
        self._dispatch()

    def do_PATCH(self) -> None:
        self._dispatch()

    def do_DELETE(self) -> None:
        self._dispatch()

    def _dispatch(self) -> None:
        fake = self.server.fake
        split = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length > 0 else b""
        headers = {k.lower(): v for k, v in self.headers.items()}
        try:
            parsed = json.loads(body) if body.strip() else None
        except ValueError:
            parsed = None
        form = parse_qs(body.decode("utf-8", "replace")) if split.path == TOKEN_PATH else {}
        record = RecordedRequest(
            method=self.command,
            path=split.path,
            query=parse_qs(split.query, keep_blank_values=True),
            headers=headers,
            body=body,
            json=parsed,
            client_id=fake._client_id_for(headers, form),
        )
        fake._record(record)
        try:
            reply = fake._serve(record)
        except Exception as exc:  # a bug in the fake should surface, not hang the client
            reply = _text_reply(500, f"fake-xero internal error: {exc!r}")
        if reply is _DROP:
            record.status = None
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return
        record.status = reply.status
        self.send_response(reply.status)
        self.send_header("Content-Type", reply.content_type)
        self.send_header("Content-Length", str(len(reply.body)))
        for name, value in reply.headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(reply.body)


# --------------------------------------------------------------------------- command line


def main(argv: list[str] | None = None) -> None:
    """Run a fake Xero for the demo until Ctrl-C."""
    parser = argparse.ArgumentParser(description="Serve a fake Xero API on loopback.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--client-id", default="demo-client")
    parser.add_argument("--client-secret", default="demo-secret")
    parser.add_argument("--name", default="Demo Company")
    parser.add_argument("--scopes", default="accounting.contacts", help="space separated")
    parser.add_argument("--reject-explicit-scope", action="store_true")
    parser.add_argument("--seed-contacts", type=int, default=0, metavar="N")
    parser.add_argument("--minute-limit", type=int, default=60)
    parser.add_argument("--day-limit", type=int, default=5000)
    args = parser.parse_args(argv)

    fake = FakeXero(args.host, args.port, minute_limit=args.minute_limit, day_limit=args.day_limit)
    org = fake.add_organisation(
        args.client_id,
        args.client_secret,
        args.name,
        scopes=args.scopes.split(),
        reject_explicit_scope=args.reject_explicit_scope,
    )
    for number in range(1, args.seed_contacts + 1):
        org.add_contact(
            Name=f"Existing Contact {number}",
            EmailAddress=f"existing{number}@example.org",
            ContactNumber=f"EXISTING-{number:04d}",
        )
    fake.start()
    print(
        f"Fake Xero at {fake.url} (token URL {fake.token_url}) client_id={args.client_id} "
        f"client_secret={args.client_secret} tenant_id={org.tenant_id} org={args.name!r}",
        flush=True,
    )
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        fake.stop()


if __name__ == "__main__":
    main()
