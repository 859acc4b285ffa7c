"""The only code that speaks HTTP to Xero. Returns plain data; knows nothing of the ORM.

One `XeroClient` serves one custom connection. Custom connections have no refresh token: when the
30-minute token is about to expire, or Xero answers 401, the client asks for a new one with the
same client-credentials grant, and hands it to `on_new_token` so every worker can share it.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, quote_plus, urlsplit

import requests
from django.views.decorators.debug import sensitive_variables

from . import __version__, conf
from .exceptions import (
    XeroAuthError,
    XeroError,
    XeroForbiddenError,
    XeroNotFoundError,
    XeroRateLimitError,
    XeroScopeError,
    XeroServerError,
    XeroTransportError,
    XeroValidationError,
)

logger = logging.getLogger(__name__)


USER_AGENT = f"lookout-xero/{__version__}"
CONTACTS_PATH = "/api.xro/2.0/Contacts"
CONNECTIONS_PATH = "/connections"
# Ask for a new token this long before the old one expires (Xero's own SDK uses 60 s).
TOKEN_EXPIRY_MARGIN = timedelta(seconds=60)
EXCERPT_LENGTH = 300
# URL-encoded length of one `where` filter; well under the 2,048 bytes some servers allow.
MAX_WHERE_LENGTH = 1500
# ContactIDs per `GET /Contacts?IDs=…`: 50 GUIDs keep the URL under 2,000 bytes.
IDS_PER_READ = 50
# The parts of a contact that are its profile (compared with what Lookout sent: drift).
PROFILE_KEYS = (
    "Name",
    "FirstName",
    "LastName",
    "EmailAddress",
    "ContactNumber",
    "AccountNumber",
    "TaxNumber",
    "CompanyNumber",
    "Phones",
    "Addresses",
)


@dataclass(frozen=True)
class Credentials:
    client_id: str
    client_secret: str = field(repr=False)
    scope: str = ""


@dataclass(frozen=True)
class Token:
    access_token: str = field(repr=False)
    expires_at: datetime
    # What Xero's token answer says the token may do, space-separated ("" if it did not say).
    scope: str = ""

    def is_fresh(self, now: datetime | None = None) -> bool:
        now = now or datetime.now(UTC)
        return bool(self.access_token) and self.expires_at - TOKEN_EXPIRY_MARGIN > now


@dataclass(frozen=True)
class RateLimits:
    """What Xero said was left, from the last tenant response's headers."""

    minute_remaining: int | None = None
    day_remaining: int | None = None
    seen_at: datetime | None = None


@dataclass(frozen=True)
class XeroTenant:
    tenant_id: str
    name: str


@dataclass(frozen=True)
class XeroContact:
    """An existing Xero contact: what matching needs, where a merge led, and its profile."""

    contact_id: str
    name: str
    email: str
    contact_number: str
    status: str
    # The contact this one was merged into in Xero. Xero shows it only on paged reads and
    # reads by id (docs/xero.md, "Merged contacts"), so every read here is paged.
    merged_to: str = ""
    # The profile fields Lookout may send, as Xero holds them (for drift): Xero's own keys.
    profile: dict = field(default_factory=dict, compare=False, hash=False, repr=False)


@dataclass(frozen=True)
class ItemResult:
    """Xero's answer for one element of a batch (summarizeErrors=false)."""

    ok: bool
    contact_id: str
    status: str
    messages: list[str]
    warnings: list[str]


class XeroClient:
    def __init__(
        self,
        credentials: Credentials,
        *,
        token: Token | None = None,
        on_new_token: Callable[[Token], None] | None = None,
        session: requests.Session | None = None,
        token_url: str | None = None,
        api_url: str | None = None,
        timeout: float | None = None,
        before_request: Callable[[XeroClient], None] | None = None,
    ) -> None:
        self.credentials = credentials
        # Called before every call that counts against the organisation's limits: the sync
        # paces itself and renews its lease there.
        self.before_request = before_request
        self.token = token
        self.on_new_token = on_new_token
        self.session = session or requests.Session()
        self.session.headers["User-Agent"] = USER_AGENT
        self.token_url = token_url or conf.token_url()
        self.api_url = (api_url or conf.api_url()).rstrip("/")
        self.timeout = timeout if timeout is not None else conf.get("HTTP_TIMEOUT")
        self.limits = RateLimits()

    # --- token -----------------------------------------------------------------------------

    @sensitive_variables()
    def fetch_token(self) -> Token:
        """Ask Xero for a new access token (client-credentials grant).

        Posted with requests directly, never following a redirect: a 307 would post the
        Client Secret again to wherever it points. Plain http is refused here unless the
        token URL is on loopback (the fake Xero), for this request only; nothing is set
        for the whole process. Marked sensitive: an error report shows none of its locals,
        nor those of requests' frames below it, which hold the form with the secret.
        """
        _refuse_insecure(self.token_url)
        form = {"grant_type": "client_credentials"}
        if self.credentials.scope.split():
            form["scope"] = " ".join(self.credentials.scope.split())
        # In the body, as requests-oauthlib's include_client_id=True sent them.
        form["client_id"] = self.credentials.client_id
        form["client_secret"] = self.credentials.client_secret
        try:
            response = self.session.post(
                self.token_url,
                data=form,
                headers={"Accept": "application/json"},
                timeout=self.timeout,
                allow_redirects=False,
            )
        except requests.RequestException as exc:
            raise _transport_error(exc, "asking Xero for a token") from None
        _refuse_redirect(response, "Xero's token URL")
        error = classify_response(response)
        if error:
            raise error
        raw = _json_or_none(response)
        if isinstance(raw, dict) and raw.get("error"):
            raise _oauth_error(str(raw["error"]), {"status_code": response.status_code})
        if not isinstance(raw, dict) or not isinstance(raw.get("access_token"), str):
            raise XeroServerError(
                "Xero's token endpoint gave an answer that is not a token",
                status_code=response.status_code,
            )
        try:
            expires_in = int(raw.get("expires_in") or 1800)
        except (TypeError, ValueError):
            expires_in = 1800
        granted = raw.get("scope") or ""
        self.token = Token(
            raw["access_token"],
            datetime.now(UTC) + timedelta(seconds=expires_in),
            scope=" ".join(granted) if isinstance(granted, list | tuple) else str(granted),
        )
        if self.on_new_token:
            self.on_new_token(self.token)
        return self.token

    def _bearer(self) -> str:
        if not (self.token and self.token.is_fresh()):
            self.fetch_token()
        return f"Bearer {self.token.access_token}"

    # --- calls -----------------------------------------------------------------------------

    def get_tenants(self) -> list[XeroTenant]:
        """GET /connections: the Xero organisation(s) this token may reach."""
        data = self._request("GET", CONNECTIONS_PATH).json()
        return [XeroTenant(item.get("tenantId", ""), item.get("tenantName") or "") for item in data]

    def list_contacts(
        self, *, page: int, page_size: int, include_archived: bool = True, where: str = ""
    ) -> list[XeroContact]:
        params: dict[str, str | int] = {"page": page, "pageSize": page_size}
        if include_archived:
            params["includeArchived"] = "true"
        if where:
            params["where"] = where
        data = self._request("GET", CONTACTS_PATH, params=params).json()
        return [_contact(item) for item in data.get("Contacts") or []]

    def iter_contacts(
        self, *, page_size: int, include_archived: bool = True
    ) -> Iterator[XeroContact]:
        """Every contact of the organisation, page by page."""
        page = 1
        while True:
            contacts = self.list_contacts(
                page=page, page_size=page_size, include_archived=include_archived
            )
            yield from contacts
            if len(contacts) < page_size:
                return
            page += 1

    def find_contacts(self, *, numbers=(), emails=(), names=()) -> list[XeroContact]:
        """Contacts (archived included) whose ContactNumber, e-mail or name is one of these.

        As few GETs as the URL length allows: Xero's limit is not documented, so each `where`
        stays under a length most web servers accept.
        """
        clauses = [f"ContactNumber=={_quote(v)}" for v in numbers if v]
        clauses += [f"EmailAddress=={_quote(v)}" for v in emails if v]
        clauses += [f"Name=={_quote(v)}" for v in names if v]
        found: dict[str, XeroContact] = {}
        for where in _joined_within(clauses, " || ", MAX_WHERE_LENGTH):
            for contact in self.list_contacts(page=1, page_size=1000, where=where):
                found[contact.contact_id] = contact
        return list(found.values())

    def get_contacts_by_ids(self, contact_ids) -> list[XeroContact]:
        """These contacts, archived and merged ones included: one paged GET per 50 ids.

        Paged (``page=1``) because only paged reads carry ``MergedToContactID``; archived
        contacts are asked for explicitly, as Xero does not document that ``IDs`` finds them.
        """
        ids = list(dict.fromkeys(i for i in contact_ids if i))
        found: list[XeroContact] = []
        for start in range(0, len(ids), IDS_PER_READ):
            chunk = ids[start : start + IDS_PER_READ]
            params = {"IDs": ",".join(chunk), "page": 1, "includeArchived": "true"}
            data = self._request("GET", CONTACTS_PATH, params=params).json()
            found += [_contact(item) for item in data.get("Contacts") or []]
        return found

    def save_contacts(self, payloads: list[dict], *, idempotency_key: str) -> list[ItemResult]:
        """POST /Contacts?summarizeErrors=false: create or update up to a batch of contacts.

        Per-item validation errors come back as data; only whole-request failures raise.
        """
        response = self._request(
            "POST",
            CONTACTS_PATH,
            params={"summarizeErrors": "false"},
            json={"Contacts": payloads},
            headers={"Idempotency-Key": idempotency_key},
        )
        items = response.json().get("Contacts") or []
        if len(items) != len(payloads):
            raise XeroServerError(
                f"Xero answered {len(items)} contacts for a batch of {len(payloads)}",
                status_code=response.status_code,
                correlation_id=_correlation_id(response),
            )
        return [_item_result(item) for item in items]

    def _request(self, method: str, path: str, **kwargs) -> requests.Response:
        headers = {"Accept": "application/json", **kwargs.pop("headers", {})}
        for attempt in (1, 2):
            if self.before_request and path != CONNECTIONS_PATH:
                self.before_request(self)
            headers["Authorization"] = self._bearer()
            try:
                response = self.session.request(
                    method,
                    self.api_url + path,
                    headers=headers,
                    timeout=self.timeout,
                    allow_redirects=False,
                    **kwargs,
                )
            except requests.RequestException as exc:
                raise _transport_error(exc, f"calling Xero ({method} {path})") from None
            _refuse_redirect(response, f"Xero ({method} {path})")
            if path != CONNECTIONS_PATH:
                self._remember_limits(response)
            if response.status_code == 401 and attempt == 1:
                # The shared token may have been revoked or expired early: one new token, once.
                logger.info("Xero answered 401; fetching a new token and retrying once")
                self.token = None
                continue
            error = classify_response(response)
            if error:
                raise error
            return response
        raise AssertionError("unreachable")  # pragma: no cover

    def _remember_limits(self, response: requests.Response) -> None:
        def header_int(name: str) -> int | None:
            try:
                return int(response.headers[name])
            except (KeyError, ValueError):
                return None

        minute = header_int("X-MinLimit-Remaining")
        day = header_int("X-DayLimit-Remaining")
        if minute is not None or day is not None:
            self.limits = RateLimits(minute, day, datetime.now(UTC))


# --- classification: the one place that decides what an answer means --------------------------


def classify_response(response: requests.Response) -> XeroError | None:
    """The exception a Xero response stands for, or None for success."""
    status = response.status_code
    if 200 <= status < 300:
        return None
    context = {
        "status_code": status,
        "correlation_id": _correlation_id(response),
        "body_excerpt": _excerpt(response),
    }
    body = _json_or_none(response)
    if status == 429:
        limit = (response.headers.get("X-Rate-Limit-Problem") or "unknown").strip().lower()
        return XeroRateLimitError(
            f"Xero's {limit} rate limit was reached",
            retry_after=_retry_after(response),
            limit=limit,
            **context,
        )
    if status == 400 and isinstance(body, dict) and "error" in body:
        return _oauth_error(str(body.get("error")), context)
    if status == 400:
        if isinstance(body, dict):
            elements = body.get("Elements") or []
            messages = [m for element in elements for m in _messages(element)]
            message = "; ".join(messages) or body.get("Message") or "Xero refused the request"
            return XeroValidationError(message, **context)
        return XeroValidationError(_excerpt(response) or "Xero refused the request", **context)
    if status == 401:
        if isinstance(body, dict) and "error" in body:
            return _oauth_error(str(body.get("error")), context)
        detail = body.get("Detail") if isinstance(body, dict) else ""
        return XeroAuthError(
            f"Xero did not accept the access token. {detail or ''}".strip(), **context
        )
    if status == 403:
        return XeroForbiddenError(
            "Xero refused access: the custom connection may have been revoked, the organisation "
            "disconnected, or the scope does not cover contacts",
            **context,
        )
    if status == 404:
        return XeroNotFoundError("Xero could not find that resource", **context)
    if status == 503 and "oauth_problem=rate" in response.text.replace("%20", " ").replace(
        "+", " "
    ):
        # Xero's legacy way of saying "rate limit": a form-encoded 503.
        return XeroRateLimitError(
            "Xero's rate limit was reached",
            retry_after=_retry_after(response),
            limit="legacy",
            **context,
        )
    if status >= 500:
        return XeroServerError(f"Xero is unavailable or failed ({status})", **context)
    return XeroError(f"Xero answered HTTP {status}", **context)


def _refuse_redirect(response: requests.Response, who: str) -> None:
    """Lookout never follows a redirect: it would carry the secret or token elsewhere."""
    if 300 <= response.status_code < 400:
        raise XeroError(
            f"{who} answered with a redirect (HTTP {response.status_code}); lookout_xero follows "
            "no redirects, so nothing was sent on. Check TOKEN_URL and API_URL",
            status_code=response.status_code,
            correlation_id=_correlation_id(response),
        )


def _refuse_insecure(url: str) -> None:
    """Credentials go over https, or plain http to this machine (the fake Xero) only."""
    parts = urlsplit(url)
    if parts.scheme == "https" or (
        parts.scheme == "http" and parts.hostname in conf.LOOPBACK_HOSTS
    ):
        return
    raise XeroError(
        "The token URL must be https:// (plain http:// only on loopback); no credentials were sent"
    )


def _oauth_error(code: str, context: dict) -> XeroError:
    context = {**context, "code": code}
    if code == "invalid_scope":
        return XeroScopeError(
            "Xero refused the scope: this custom connection does not allow the scope asked for "
            "(newer connections need the Scope field left empty)",
            **context,
        )
    if code == "invalid_client":
        return XeroAuthError(
            "Xero refused the Client ID or Client Secret (invalid_client): check them in the "
            "customer's Xero developer portal, or generate a new secret",
            **context,
        )
    return XeroAuthError(f"Xero refused the token request ({code})", **context)


def _transport_error(exc: requests.RequestException, doing: str) -> XeroTransportError:
    kind = "timed out" if isinstance(exc, requests.Timeout) else "could not connect"
    return XeroTransportError(f"Xero {kind} while {doing} ({type(exc).__name__})")


def _retry_after(response: requests.Response) -> int | None:
    try:
        return max(0, int(float(response.headers["Retry-After"])))
    except (KeyError, ValueError):
        return None


def _correlation_id(response: requests.Response) -> str:
    return response.headers.get("Xero-Correlation-Id", "")


def _json_or_none(response: requests.Response):
    if "json" not in response.headers.get("Content-Type", "") and not response.text.startswith(
        ("{", "[")
    ):
        return None
    try:
        return response.json()
    except ValueError:
        return None


def _excerpt(response: requests.Response) -> str:
    text = response.text or ""
    if "form-urlencoded" in response.headers.get("Content-Type", ""):
        text = json.dumps({k: v[0] for k, v in parse_qs(text).items()})
    return " ".join(text.split())[:EXCERPT_LENGTH]


def _messages(item: dict) -> list[str]:
    return [
        str(e.get("Message", "")) for e in item.get("ValidationErrors") or [] if e.get("Message")
    ]


def _contact(item: dict) -> XeroContact:
    return XeroContact(
        contact_id=item.get("ContactID", ""),
        name=item.get("Name") or "",
        email=item.get("EmailAddress") or "",
        contact_number=item.get("ContactNumber") or "",
        status=item.get("ContactStatus") or "ACTIVE",
        merged_to=_merged_to(item.get("MergedToContactID")),
        profile={key: item[key] for key in PROFILE_KEYS if key in item},
    )


NO_GUID = "00000000-0000-0000-0000-000000000000"


def _merged_to(value) -> str:
    """The survivor's ContactID, or "" (Xero may send an all-zero GUID for "none")."""
    value = str(value or "").strip().lower()
    return "" if value == NO_GUID else value


def _item_result(item: dict) -> ItemResult:
    messages = _messages(item)
    ok = item.get("StatusAttributeString", "OK").upper() != "ERROR" and not messages
    return ItemResult(
        ok=ok,
        contact_id=item.get("ContactID") or "",
        status=item.get("ContactStatus") or "",
        messages=messages,
        warnings=[str(w.get("Message", "")) for w in item.get("Warnings") or []],
    )


def _joined_within(parts: list[str], separator: str, limit: int) -> Iterator[str]:
    """Join parts into as few strings as keep each one's URL-encoded length within limit."""
    current: list[str] = []
    for part in parts:
        candidate = separator.join([*current, part])
        if current and len(quote_plus(candidate)) > limit:
            yield separator.join(current)
            current = [part]
        else:
            current.append(part)
    if current:
        yield separator.join(current)


def _quote(value: str) -> str:
    """A string literal for Xero's `where` filter."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
