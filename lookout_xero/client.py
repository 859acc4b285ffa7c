"""The only code that speaks HTTP to Xero. Returns plain data; knows nothing of the ORM.

One `XeroClient` serves one custom connection. Custom connections have no refresh token: when the
30-minute token is about to expire, or Xero answers 401, the client asks for a new one with the
same client-credentials grant, and hands it to `on_new_token` so every worker can share it.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

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
# Longest URL a GET sends. Real Xero answers 404 (its HTML "cannot be found") once a URL passes
# about 2,091 characters, i.e. a query string over 2,048 (docs/xero.md, "Reading contacts"):
# reads by `IDs=` and `where` look-ups are cut by this length, never by a count.
MAX_URL_LENGTH = 2048
# How long a read that failed with a 5xx or a dropped connection waits before its one retry.
READ_RETRY_SECONDS = 1
# Xero's largest pageSize (docs/xero.md): a larger one is answered with 1,000 rows.
MAX_PAGE_SIZE = 1000
# What Xero's 429 names in X-Rate-Limit-Problem, as the policy knows them.
RATE_LIMIT_PROBLEMS = {
    "minute": "minute",
    "day": "day",
    "daily": "day",
    "concurrent": "concurrent",
    "appminute": "appminute",
}
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
class LookUp:
    """What a look-up before creating found, and the values Xero refused to look up (400)."""

    contacts: list[XeroContact]
    # value -> Xero's 400 for it: only the funders with that value fail, never their batch.
    refused: dict[str, XeroValidationError] = field(default_factory=dict)


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
        self,
        *,
        page: int,
        page_size: int,
        include_archived: bool = True,
        where: str = "",
        search_term: str = "",
    ) -> list[XeroContact]:
        return self._read_page(
            _list_params(page, page_size, include_archived, where=where, search_term=search_term)
        )[0]

    def iter_contacts(
        self, *, page_size: int, include_archived: bool = True, search_term: str = ""
    ) -> Iterator[XeroContact]:
        """Every contact of the organisation (or of a `searchTerm`), page by page."""
        page = 1
        while True:
            params = _list_params(page, page_size, include_archived, search_term=search_term)
            contacts, page_count = self._read_page(params)
            yield from contacts
            # Xero's pagination says how many pages there are; without it, a short page ends.
            done = page >= page_count if page_count is not None else len(contacts) < page_size
            if done or not contacts:
                return
            page += 1

    def changed_since(self, since: datetime, *, page_size: int) -> Iterator[list[XeroContact]]:
        """Contacts created or changed in Xero since `since`, archived ones included, a page at
        a time: ``If-Modified-Since`` (Xero's header, in UTC), one GET per page.

        Paged, so merged contacts carry ``MergedToContactID``. A contact changed while the pages
        are read can only join the set, shifting later pages: it may be seen twice, never
        skipped.
        """
        stamp = since.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S")
        page = 1
        while True:
            params = _list_params(page, page_size, True)
            contacts, page_count = self._read_page(params, {"If-Modified-Since": stamp})
            if contacts:
                yield contacts
            done = page >= page_count if page_count is not None else len(contacts) < page_size
            if done or not contacts:
                return
            page += 1

    def _read_page(
        self, params: dict, headers: dict | None = None
    ) -> tuple[list[XeroContact], int | None]:
        data = self._request("GET", CONTACTS_PATH, params=params, headers=headers or {}).json()
        pagination = data.get("pagination") if isinstance(data, dict) else None
        page_count = pagination.get("pageCount") if isinstance(pagination, dict) else None
        contacts = [_contact(item) for item in data.get("Contacts") or []]
        return contacts, page_count if isinstance(page_count, int) else None

    def find_contacts(self, *, numbers=(), emails=(), names=()) -> LookUp:
        """Contacts (archived included) whose ContactNumber, e-mail or name is one of these.

        Values Xero's `where` can express are OR-ed into as few GETs as the URL length allows.
        Xero's `where` has no escape for a double quote (docs/xero.md, "Looking a value up"),
        so any other value is looked up with `searchTerm`, and the exact match is made by the
        caller (`matching.ContactIndex`). A 400 on a look-up is narrowed down to the values
        that caused it; they are returned as refused, and the rest are still looked up.
        """
        clauses: list[tuple[str, str]] = []
        searched: list[str] = []
        for field_name, values in (
            ("ContactNumber", numbers),
            ("EmailAddress", emails),
            ("Name", names),
        ):
            for value in dict.fromkeys(v for v in values if v):
                if where_can_hold(value):
                    clauses.append((f'{field_name}=="{value}"', value))
                else:
                    searched.append(value)
        found: dict[str, XeroContact] = {}
        refused: dict[str, XeroValidationError] = {}
        for group in self._cut_where(clauses):
            self._look_up_where(group, found, searched)
        for value in dict.fromkeys(searched):
            try:
                for contact in self.iter_contacts(page_size=MAX_PAGE_SIZE, search_term=value):
                    found[contact.contact_id] = contact
            except XeroValidationError as exc:
                refused[value] = exc
        return LookUp(list(found.values()), refused)

    def _look_up_where(self, group: list[tuple[str, str]], found: dict, searched: list) -> None:
        """One `where` GET for these clauses; on a 400, halves, down to the clause Xero refused
        (whose value is then looked up with `searchTerm` instead)."""
        where = " || ".join(clause for clause, _ in group)
        try:
            contacts = self.list_contacts(page=1, page_size=MAX_PAGE_SIZE, where=where)
        except XeroValidationError:
            if len(group) == 1:
                searched.append(group[0][1])
                return
            middle = len(group) // 2
            self._look_up_where(group[:middle], found, searched)
            self._look_up_where(group[middle:], found, searched)
            return
        for contact in contacts:
            found[contact.contact_id] = contact

    def _cut_where(self, clauses: list[tuple[str, str]]) -> Iterator[list[tuple[str, str]]]:
        """Clauses in groups whose OR-ed `where` keeps each GET's URL within MAX_URL_LENGTH."""

        def fits(group):
            where = " || ".join(clause for clause, _ in group)
            return self._url_fits(_list_params(1, MAX_PAGE_SIZE, True, where=where))

        yield from _cut(clauses, fits)

    def get_contacts_by_ids(self, contact_ids) -> list[XeroContact]:
        """These contacts, archived and merged ones included, in as few paged GETs as fit.

        Paged (``page=1``) because only paged reads carry ``MergedToContactID``; archived
        contacts are asked for explicitly, as Xero does not document that ``IDs`` finds them.
        The ids are cut by URL length (Xero's limit), and a 404 on a read of several ids (what
        Xero answers to a URL it finds too long) reads them again in halves.
        """
        ids = list(dict.fromkeys(i for i in contact_ids if i))
        found: list[XeroContact] = []
        for chunk in _cut(ids, lambda chunk: self._url_fits(_ids_params(chunk))):
            found += self._read_ids(chunk)
        return found

    def _read_ids(self, chunk: list[str]) -> list[XeroContact]:
        try:
            data = self._request("GET", CONTACTS_PATH, params=_ids_params(chunk)).json()
        except XeroNotFoundError:
            if len(chunk) == 1:
                raise
            middle = len(chunk) // 2
            return self._read_ids(chunk[:middle]) + self._read_ids(chunk[middle:])
        return [_contact(item) for item in data.get("Contacts") or []]

    def _url_fits(self, params: dict) -> bool:
        url = requests.Request("GET", self.api_url + CONTACTS_PATH, params=params).prepare().url
        return len(url) <= MAX_URL_LENGTH

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
        data = response.json()
        items = data.get("Contacts") or []
        if len(items) != len(payloads):
            raise XeroServerError(
                f"Xero answered {len(items)} contacts for a batch of {len(payloads)}",
                status_code=response.status_code,
                correlation_id=_correlation_id(response),
            )
        # Warnings at the top level concern the whole request: each contact's log row shows them.
        batch_warnings = _words_of(data, "Warnings")
        return [_item_result(item, batch_warnings) for item in items]

    def _request(self, method: str, path: str, **kwargs) -> requests.Response:
        if method != "GET":
            return self._call(method, path, **kwargs)
        try:
            return self._call(method, path, **kwargs)
        except (XeroServerError, XeroTransportError) as exc:
            if "timed out" in str(exc):  # (_transport_error's words)
                raise  # a slow Xero: waiting HTTP_TIMEOUT again is the sync's decision
            # A read is safe to repeat, and one 5xx or dropped connection among answers is
            # not an outage: once more, a moment later, before the caller backs off.
            logger.info("Xero failed a read (%s); trying it once more", exc)
            time.sleep(READ_RETRY_SECONDS)
            return self._call(method, path, **kwargs)

    def _call(self, method: str, path: str, **kwargs) -> requests.Response:
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
            if response.status_code == 401 and attempt == 1 and not _lacks_scope(response):
                # The shared token may have been revoked or expired early: one new token, once.
                # (A token that lacks the scope would lack it again: no new token for that.)
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
        limit, said = _rate_limit(response)
        return XeroRateLimitError(
            f"Xero's {limit} rate limit was reached{said}"
            if limit != "unknown"
            else f"Xero refused the call as one too many (429){said}",
            retry_after=_retry_after(response),
            limit=limit,
            **context,
        )
    if status == 400 and isinstance(body, dict) and "error" in body:
        return _oauth_error(str(body.get("error")), context)
    if status == 400:
        if isinstance(body, dict):
            elements = body.get("Elements") or []
            messages = _unique(m for element in elements for m in _words_of(element))
            message = "; ".join(messages) or body.get("Message") or "Xero refused the request"
            return XeroValidationError(message, code=str(body.get("Type") or ""), **context)
        return XeroValidationError(_words(response) or "Xero refused the request", **context)
    if status == 401:
        if isinstance(body, dict) and "error" in body:
            return _oauth_error(str(body.get("error")), context)
        if _lacks_scope(response):
            return XeroScopeError(
                "Xero accepted the token but refused the call (AuthorizationUnsuccessful): the "
                "custom connection does not allow contacts. Add the accounting.contacts scope "
                "to it in the customer's Xero developer portal",
                code="missing_scope",
                **context,
            )
        detail = _detail(body)
        return XeroAuthError(
            f"Xero did not accept the access token. {detail or ''}".strip(), **context
        )
    if status == 403:
        detail = _detail(body)
        return XeroForbiddenError(
            "Xero refused access: the custom connection may have been revoked, the organisation "
            "disconnected, or the scope does not cover contacts"
            + (f" ({detail})" if detail else ""),
            **context,
        )
    if status == 404:
        said = _words(response)
        return XeroNotFoundError(
            "Xero could not find that resource" + (f": “{said}”" if said else ""), **context
        )
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
        # Outages ("The Organisation is Offline", maintenance) come as plain text: the team
        # reads Xero's own words.
        said = _words(response)
        return XeroServerError(
            f"Xero is unavailable or failed ({status})" + (f": “{said}”" if said else ""),
            **context,
        )
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


def _words_of(item: dict, key: str = "ValidationErrors") -> list[str]:
    """Xero's words under `key` of an element and of its addresses, phones and payment terms.

    An entry says it in `Message` or in `Description` (Xero's docs show both).
    """
    words = [_entry_words(entry) for entry in _entries(item, key)]
    return _unique(word for word in words if word)


def _entries(item, key: str) -> list:
    """Every entry under `key` in the element and the parts Xero nests errors in."""
    if not isinstance(item, dict):
        return []
    found = [entry for entry in item.get(key) or [] if isinstance(entry, dict)]
    for part in ("Addresses", "Phones", "ContactPersons"):
        for nested in item.get(part) or []:
            found += _entries(nested, key)
    terms = item.get("PaymentTerms")
    if isinstance(terms, dict):
        for nested in terms.values():
            found += _entries(nested, key)
    return found


def _entry_words(entry: dict) -> str:
    return " ".join(str(entry.get("Message") or entry.get("Description") or "").split())


def _unique(words) -> list[str]:
    return list(dict.fromkeys(words))


def _detail(body) -> str:
    """The `Detail` of Xero's problem JSON (PascalCase live, camelCase in its docs)."""
    if not isinstance(body, dict):
        return ""
    return str(body.get("Detail") or body.get("detail") or "")


def _lacks_scope(response: requests.Response) -> bool:
    """401 AuthorizationUnsuccessful: the token works but may not do this (docs/xero.md)."""
    return (
        response.status_code == 401
        and _detail(_json_or_none(response)).strip() == "AuthorizationUnsuccessful"
    )


def _rate_limit(response: requests.Response) -> tuple[str, str]:
    """Which limit a 429 is about, and what Xero said of it for the message.

    X-Rate-Limit-Problem when it names a limit the policy knows; otherwise the X-*-Remaining
    header that reached 0, as Xero's Java SDK reads them (day first: when the day is used up,
    waiting a minute helps nothing).
    """
    said = (response.headers.get("X-Rate-Limit-Problem") or "").strip()
    limit = RATE_LIMIT_PROBLEMS.get(said.lower(), "")
    if not limit:
        for header, name in (
            ("X-DayLimit-Remaining", "day"),
            ("X-MinLimit-Remaining", "minute"),
            ("X-AppMinLimit-Remaining", "appminute"),
        ):
            try:
                if int(response.headers[header]) <= 0:
                    limit = name
                    break
            except (KeyError, ValueError):
                continue
    note = f" (X-Rate-Limit-Problem: {said})" if said and said.lower() != limit else ""
    return limit or "unknown", note


def _words(response: requests.Response) -> str:
    """A short, plain rendering of what a non-JSON (or problem JSON) answer says."""
    body = _json_or_none(response)
    if isinstance(body, dict):
        text = str(body.get("Message") or _detail(body) or body.get("title") or "")
    elif "form-urlencoded" in response.headers.get("Content-Type", ""):
        return ""
    else:
        text = re.sub(r"<[^>]*>", " ", response.text or "")
    return " ".join(text.split())[:200]


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


def _item_result(item: dict, batch_warnings: list[str] = ()) -> ItemResult:
    messages = _words_of(item)
    failed = item.get("StatusAttributeString", "OK").upper() == "ERROR" or bool(
        _entries(item, "ValidationErrors")
    )
    return ItemResult(
        ok=not failed,
        contact_id=_merged_to(item.get("ContactID")),  # an all-zero GUID is no contact
        status=item.get("ContactStatus") or "",
        messages=messages,
        warnings=_unique([*_words_of(item, "Warnings"), *batch_warnings]),
    )


def where_can_hold(value: str) -> bool:
    """True if `value` can be put in Xero's `where` as a string literal.

    Xero's `where` has no escape: a double quote ends the literal whatever precedes it (a
    backslash-escaped one answers 400 "Syntax error"), and a backslash is not an escape either,
    so neither may appear; nor may control characters (line breaks, tabs).
    """
    return value.isprintable() and '"' not in value and "\\" not in value


def _list_params(page, page_size, include_archived, *, where="", search_term="") -> dict:
    params: dict[str, str | int] = {"page": page, "pageSize": page_size}
    if include_archived:
        params["includeArchived"] = "true"
    if where:
        params["where"] = where
    if search_term:
        params["searchTerm"] = search_term
    return params


def _ids_params(ids: list[str]) -> dict:
    return {"IDs": ",".join(ids), "page": 1, "includeArchived": "true"}


def _cut(items: list, fits: Callable[[list], bool]) -> Iterator[list]:
    """Items in consecutive groups, each as long as `fits` allows (at least one item)."""
    current: list = []
    for item in items:
        if current and not fits([*current, item]):
            yield current
            current = [item]
        else:
            current.append(item)
    if current:
        yield current
