"""The fake's HTTP side: lifecycle, routing, identity (token, /connections), faults, request log."""

from __future__ import annotations

import base64
import json
import random
import secrets
import socket
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote_plus, urlsplit

from . import contacts_api, control
from .limits import RateLimiter
from .org import FakeOrg
from .wire import (
    CONNECTIONS_PATH,
    DROP,
    INTERNAL_ERROR_TEXT,
    MAX_URL_LENGTH,
    OUTAGE_TEXT,
    TOKEN_PATH,
    XERO_API_ORIGIN,
    RecordedRequest,
    Reply,
    forbidden,
    is_contacts_path,
    json_reply,
    not_found,
    text_reply,
    unauthorized,
)


@dataclass
class _Token:
    value: str
    client_id: str
    scopes: tuple[str, ...]
    expires_at: float


class Delay:
    """What `FakeXero.delay_next` returns: `release()` answers the requests it holds at once,
    and lets the rest of its matches through without waiting. A test waits on what it is
    waiting for, not on the clock, and ends the hold when it has seen it."""

    def __init__(self) -> None:
        self._released = threading.Event()

    def release(self) -> None:
        self._released.set()

    def hold(self, seconds: float) -> None:
        self._released.wait(seconds)


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
    delay: Delay | None = None
    after_processing: bool = False
    # Only requests with a query value containing this (decoded), e.g. a `where` or `searchTerm`.
    query_contains: str = ""

    def matches(self, method: str, path: str, query: dict[str, list[str]] | None = None) -> bool:
        if self.remaining <= 0 or self.path_contains not in path:
            return False
        if self.query_contains and not any(
            self.query_contains in value for values in (query or {}).values() for value in values
        ):
            return False
        return self.method is None or self.method.upper() == method


@dataclass
class Misbehaviour:
    """Random faults at these rates (`FakeXero.misbehave`)."""

    server_errors: float
    minute_limits: float
    drops: float
    random: random.Random

    def draw(self) -> _Fault | None:
        roll = self.random.random()
        if roll < self.server_errors:
            body = INTERNAL_ERROR_TEXT.encode()
            return _Fault(kind="fail", remaining=1, path_contains="", status=500, body=body)
        roll -= self.server_errors
        if roll < self.minute_limits:
            return _Fault(
                kind="fail",
                remaining=1,
                path_contains="",
                status=429,
                body=b"Rate limit exceeded: minute limit reached",
                headers={"X-Rate-Limit-Problem": "minute", "Retry-After": "1"},
            )
        roll -= self.minute_limits
        if roll < self.drops:
            after = self.random.random() < 0.5
            return _Fault(kind="drop", remaining=1, path_contains="", after_processing=after)
        return None


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
        webhook_timeout: float = 10.0,
    ) -> None:
        self.token_ttl = token_ttl
        self.webhook_timeout = webhook_timeout
        self.idempotency_ttl = idempotency_ttl
        self.requests: list[RecordedRequest] = []
        self._limiter = RateLimiter(
            minute=minute_limit,
            day=day_limit,
            concurrent=concurrent_limit,
            app_minute=app_minute_limit,
        )
        # One lock around the data model; the request log and faults have their own.
        self._lock = threading.RLock()
        self._log_lock = threading.Lock()
        self._orgs: dict[str, FakeOrg] = {}
        self._tokens: dict[str, _Token] = {}
        self._faults: list[_Fault] = []
        self._delays: list[Delay] = []  # every hold since the last reset, spent or not
        self._misbehaviour: Misbehaviour | None = None
        self._server = _Server((host, port), _Handler, self)
        self._thread: threading.Thread | None = None
        bound_host, bound_port = self._server.server_address[:2]
        self.url = f"http://{bound_host}:{bound_port}"
        self.token_url = self.url + TOKEN_PATH
        self.api_url = self.url

    @property
    def minute_limit(self) -> int:
        return self._limiter.minute_limit

    @property
    def day_limit(self) -> int:
        return self._limiter.day_limit

    @property
    def concurrent_limit(self) -> int:
        return self._limiter.concurrent_limit

    @property
    def app_minute_limit(self) -> int:
        return self._limiter.app_minute_limit

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
        webhook_url: str | None = None,
        webhook_key: str | None = None,
    ) -> FakeOrg:
        """Register an organisation reachable with these custom-connection credentials.

        With ``webhook_url`` and ``webhook_key``, the bookkeeper's changes in this organisation
        are announced by signed webhooks (see ``FakeOrg.set_webhook``).
        """
        with self._lock:
            if client_id in self._orgs:
                raise ValueError(f"client_id {client_id!r} already has an organisation")
            org = FakeOrg(self, client_id, client_secret, name, scopes, reject_explicit_scope)
            org.set_webhook(webhook_url, webhook_key)
            self._orgs[client_id] = org
            return org

    def organisations(self) -> list[FakeOrg]:
        """Every registered organisation, in the order they were added."""
        with self._lock:
            return list(self._orgs.values())

    def org(self, client_id: str) -> FakeOrg:
        """Return the organisation registered for ``client_id``."""
        with self._lock:
            return self._orgs[client_id]

    def reset(self) -> None:
        """Drop all organisations, tokens, faults, counters and the request log."""
        with self._lock:
            self._orgs.clear()
            self._tokens.clear()
            self._limiter.reset()
            with self._log_lock:
                for delay in self._delays:
                    delay.release()  # a request still held answers now
                self._delays.clear()
                self._faults.clear()
                self._misbehaviour = None
                self.requests.clear()

    def requests_for(self, client_id: str) -> list[RecordedRequest]:
        """Requests made with a token of that org, plus its token requests."""
        with self._log_lock:
            return [r for r in self.requests if r.client_id == client_id]

    def call_counts(self, client_id: str | None = None) -> Counter[str]:
        """How many requests of each kind were made (see ``RecordedRequest.kind``)."""
        with self._log_lock:
            return Counter(
                r.kind for r in self.requests if client_id is None or r.client_id == client_id
            )

    def count(self, *kinds: str, client_id: str | None = None) -> int:
        """How many requests of these kinds (of any kind when none is named) were made."""
        counts = self.call_counts(client_id)
        return sum(counts[kind] for kind in kinds) if kinds else sum(counts.values())

    def writes_to(self, contact_id: str, client_id: str | None = None) -> list[RecordedRequest]:
        """PUT/POST requests that name this ContactID in their path or body."""
        wanted = contact_id.lower()
        with self._log_lock:
            return [
                r
                for r in self.requests
                if r.is_write
                and wanted in r.contact_ids
                and (client_id is None or r.client_id == client_id)
            ]

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
        query_contains: str = "",
    ) -> None:
        """Answer the next ``times`` matching requests with this response instead.

        This is also how a test replays a real Xero answer (status, body and headers) to the
        client over HTTP; ``query_contains`` narrows it to requests whose query has that text.
        """
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
                query_contains=query_contains,
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
        self,
        seconds: float,
        *,
        times: int = 1,
        path_contains: str = "/Contacts",
        method: str | None = None,
    ) -> Delay:
        """Hold the answer to each of the next ``times`` matching requests for ``seconds``, or
        until the returned `Delay` is released, whichever comes first."""
        delay = Delay()
        with self._log_lock:
            self._delays.append(delay)
        self._add_fault(
            _Fault(
                kind="delay",
                remaining=times,
                path_contains=path_contains,
                method=method,
                seconds=seconds,
                delay=delay,
            )
        )
        return delay

    def misbehave(
        self,
        *,
        server_errors: float = 0.0,
        minute_limits: float = 0.0,
        drops: float = 0.0,
        seed: int | None = None,
    ) -> None:
        """From now on, answer these shares of Contacts calls at random: a 500, a minute-limit
        429 (Retry-After 1), or no answer at all (half of those after applying the request).
        ``misbehave()`` with no shares behaves again; ``reset`` does too."""
        shares = (server_errors, minute_limits, drops)
        with self._log_lock:
            dice = random.Random(seed)  # noqa: S311 - faults at random, not security
            self._misbehaviour = Misbehaviour(*shares, dice) if any(shares) else None

    def peak_in_flight(self, client_id: str) -> int:
        """The most requests of one organisation Xero was answering at the same moment."""
        events = []
        for record in self.requests_for(client_id):
            if record.answered_at is not None and record.path != TOKEN_PATH:
                events += [(record.received_at, 1), (record.answered_at, -1)]
        peak = current = 0
        for _, step in sorted(events):  # an end sorts before a start at the same instant
            current += step
            peak = max(peak, current)
        return peak

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

    def _take_fault(
        self, kinds: tuple[str, ...], method: str, path: str, query: dict | None = None
    ) -> _Fault | None:
        with self._log_lock:
            if self._misbehaviour is not None and is_contacts_path(path) and "fail" in kinds:
                fault = self._misbehaviour.draw()
                if fault is not None:
                    return fault
            for fault in self._faults:
                if fault.kind in kinds and fault.matches(method, path, query):
                    fault.remaining -= 1
                    if fault.remaining <= 0:
                        self._faults.remove(fault)
                    return fault
        return None

    # -- request entry point (called from handler threads)

    def _record(self, record: RecordedRequest) -> None:
        with self._log_lock:
            self.requests.append(record)

    def _serve(self, record: RecordedRequest) -> Reply:
        fault = self._take_fault(("fail", "drop"), record.method, record.path, record.query)
        if fault is not None and fault.kind == "fail":
            headers = dict(fault.headers)
            return Reply(fault.status, fault.body, fault.content_type, headers)
        if fault is not None and not fault.after_processing:
            return DROP
        if len(XERO_API_ORIGIN + record.target) > MAX_URL_LENGTH:
            # Xero's gateway turns away a URL this long before the API sees it (not counted).
            return not_found()
        if is_contacts_path(record.path):
            reply = self._serve_contacts(record)
        else:
            self._maybe_delay(record)
            if record.path == TOKEN_PATH:
                reply = self._serve_token(record)
            elif record.path.rstrip("/") == CONNECTIONS_PATH:
                reply = self._serve_connections(record)
            else:
                reply = not_found()
        return DROP if fault is not None else reply

    def _maybe_delay(self, record: RecordedRequest) -> None:
        fault = self._take_fault(("delay",), record.method, record.path, record.query)
        if fault is not None and fault.delay is not None:
            fault.delay.hold(fault.seconds)

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

    def _serve_token(self, record: RecordedRequest) -> Reply:
        if record.method != "POST":
            return json_reply(400, {"error": "invalid_request"})
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
                return json_reply(400, {"error": "invalid_client"})
            if (form.get("grant_type") or [""])[0] != "client_credentials":
                return json_reply(400, {"error": "unsupported_grant_type"})
            requested = (form.get("scope") or [""])[0].split()
            if requested and (
                org.reject_explicit_scope or any(s not in org.scopes for s in requested)
            ):
                return json_reply(400, {"error": "invalid_scope"})
            scopes = tuple(requested) if requested else org.scopes
            value = secrets.token_urlsafe(48)
            self._tokens[value] = _Token(value, org.client_id, scopes, time.time() + self.token_ttl)
        return json_reply(
            200,
            {
                "access_token": value,
                "expires_in": self.token_ttl,
                "token_type": "Bearer",
                "scope": " ".join(scopes),
            },
            {"Cache-Control": "no-store", "Pragma": "no-cache"},
        )

    def _authenticate(self, record: RecordedRequest) -> tuple[FakeOrg, _Token] | Reply:
        auth = record.header("authorization") or ""
        with self._lock:
            token = self._tokens.get(auth[7:].strip()) if auth[:7].lower() == "bearer " else None
            org = self._orgs.get(token.client_id) if token else None
            if token is None or org is None:
                return unauthorized("AuthenticationUnsuccessful")
            if time.time() >= token.expires_at:
                when = datetime.fromtimestamp(token.expires_at, UTC)
                return unauthorized(f"TokenExpired: token expired at {when:%m/%d/%Y %H:%M:%S}")
            return org, token

    def _serve_connections(self, record: RecordedRequest) -> Reply:
        auth = self._authenticate(record)
        if isinstance(auth, Reply):
            return auth
        org, _token = auth
        if record.method != "GET":
            return text_reply(405, "Method not allowed")
        stamp = org.created_at.strftime("%Y-%m-%dT%H:%M:%S.%f0")
        # Tenantless endpoint: no tenant limits counted and no X-*Limit headers.
        return json_reply(
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

    def _serve_contacts(self, record: RecordedRequest) -> Reply:
        auth = self._authenticate(record)
        if isinstance(auth, Reply):
            return auth
        org, token = auth
        tenant = (record.header("xero-tenant-id") or "").strip()
        if tenant and tenant.lower() != org.tenant_id.lower():
            return forbidden()
        needed = ("accounting.contacts", "accounting.contacts.read")
        if record.method != "GET":
            needed = ("accounting.contacts",)
        if not any(scope in token.scopes for scope in needed):
            # A token that works but lacks the scope: 401, not 403 (docs/xero.md).
            return unauthorized("AuthorizationUnsuccessful")

        refused = self._limiter.enter(org.usage)
        if refused is not None:
            return refused
        try:
            self._maybe_delay(record)
            with self._lock:
                limited = self._limiter.count(org.usage)
                if limited is not None:
                    return limited
                reply = contacts_api.serve(org, record, self.idempotency_ttl)
                reply.headers.update(self._limiter.headers(org.usage))
                return reply
        finally:
            self._limiter.leave(org.usage)


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
        if control.is_control_path(split.path):
            # A person acting in "Xero's screens": not an API call, so neither logged,
            # counted against limits, nor subject to injected faults.
            self._send(control.serve(fake, self.command, split.path, split.query, body))
            return
        headers = {k.lower(): v for k, v in self.headers.items()}
        try:
            parsed = json.loads(body) if body.strip() else None
        except ValueError:
            parsed = None
        form = parse_qs(body.decode("utf-8", "replace")) if split.path == TOKEN_PATH else {}
        record = RecordedRequest(
            method=self.command,
            path=split.path,
            target=self.path,
            query=parse_qs(split.query, keep_blank_values=True),
            headers=headers,
            body=body,
            json=parsed,
            client_id=fake._client_id_for(headers, form),
            received_at=time.monotonic(),
        )
        fake._record(record)
        try:
            reply = fake._serve(record)
        except Exception as exc:  # a bug in the fake should surface, not hang the client
            reply = text_reply(500, f"fake-xero internal error: {exc!r}")
        if reply is DROP:
            record.status = None
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return
        record.status = reply.status
        record.rate_limit_problem = reply.headers.get("X-Rate-Limit-Problem", "")
        self._send(reply)
        record.answered_at = time.monotonic()

    def _send(self, reply: Reply) -> None:
        self.send_response(reply.status)
        self.send_header("Content-Type", reply.content_type)
        self.send_header("Content-Length", str(len(reply.body)))
        for name, value in reply.headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(reply.body)
