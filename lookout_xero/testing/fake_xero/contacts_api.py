"""The Accounting API's Contacts endpoints: list/get, PUT/POST, summarizeErrors, idempotency.

See docs/xero.md, "Contacts" and "Idempotency". Callers have authenticated the request,
counted it against the limits, and hold the fake's data lock.
"""

from __future__ import annotations

import math
import time
from typing import Any
from urllib.parse import unquote

from .contacts import SEARCH_FIELDS, public_copy
from .org import FakeOrg
from .where import QueryError, matches, parse_where
from .wire import (
    RecordedRequest,
    Reply,
    contacts_rest,
    envelope,
    json_reply,
    not_found,
    parse_iso,
    parse_ms_date,
    text_reply,
)

IDEMPOTENCY_KEY_MAX = 128
NO_DATA_MESSAGE = (
    "No data has been processed for this endpoint. This endpoint is expecting Contact data "
    "to be specifed in the request body."
)


def serve(org: FakeOrg, record: RecordedRequest, idempotency_ttl: float) -> Reply:
    """Answer a Contacts call, replaying or refusing a repeated ``Idempotency-Key``."""
    key = (record.header("idempotency-key") or "").strip()
    if record.method not in ("PUT", "POST", "PATCH") or not key:
        return _route(org, record)
    if len(key) > IDEMPOTENCY_KEY_MAX:
        return text_reply(
            400, f"Idempotency-Key must not be more than {IDEMPOTENCY_KEY_MAX} characters."
        )
    now = time.monotonic()
    for stale in [k for k, entry in org.idempotency.items() if entry[2] <= now]:
        del org.idempotency[stale]
    fingerprint = (record.method, record.path, record.body)
    entry = org.idempotency.get(key)
    if entry is not None:
        if entry[0] != fingerprint:
            return text_reply(400, f"Idempotency Key: {key} is used with a different request.")
        return entry[1].copy()
    reply = _route(org, record)
    org.idempotency[key] = (fingerprint, reply.copy(), now + idempotency_ttl)
    return reply


def _route(org: FakeOrg, record: RecordedRequest) -> Reply:
    rest = contacts_rest(record.path)
    if "/" in rest:
        return not_found()
    ident = unquote(rest) or None
    if record.method == "GET":
        return _get_one(org, ident) if ident else _list(org, record)
    if record.method == "PUT" and ident is None:
        return _save(org, record, mode="create")
    if record.method == "POST" and ident is None:
        return _save(org, record, mode="upsert")
    if record.method == "POST":
        if ident.lower() not in org.contacts:
            return not_found()
        return _save(org, record, mode="update", path_id=ident.lower())
    return text_reply(405, "Method not allowed")


def _get_one(org: FakeOrg, ident: str) -> Reply:
    contact = org.contacts.get(ident.lower())
    if contact is None:
        contact = next((c for c in org.contacts.values() if c.get("ContactNumber") == ident), None)
    if contact is None:
        return not_found()
    return json_reply(200, envelope({"Contacts": [public_copy(contact, with_merge=True)]}))


def _list(org: FakeOrg, record: RecordedRequest) -> Reply:
    query = {k.lower(): v[-1] for k, v in record.query.items()}
    contacts = list(org.contacts.values())
    if query.get("ids"):
        # Asking by ContactID finds archived (and merged) contacts too; see docs/xero.md.
        wanted = {i.strip().lower() for i in query["ids"].split(",") if i.strip()}
        contacts = [c for c in contacts if c["ContactID"] in wanted]
    elif query.get("includearchived", "").lower() != "true":
        contacts = [c for c in contacts if c.get("ContactStatus") != "ARCHIVED"]
    if query.get("where"):
        try:
            groups = parse_where(query["where"])
        except QueryError as exc:
            return json_reply(
                400, {"ErrorNumber": 16, "Type": "QueryParseException", "Message": str(exc)}
            )
        contacts = [c for c in contacts if matches(groups, c)]
    if query.get("searchterm"):
        term = query["searchterm"].lower()
        contacts = [
            c for c in contacts if any(term in (c.get(f) or "").lower() for f in SEARCH_FIELDS)
        ]
    since = parse_iso(record.header("if-modified-since"))
    if since is not None:
        contacts = [c for c in contacts if (parse_ms_date(c["UpdatedDateUTC"]) or 0) >= since]

    payload: dict[str, Any] = {}
    paged = "page" in query
    if paged:
        try:
            page = max(1, int(query["page"]))
            size = min(1000, max(1, int(query.get("pagesize") or 100)))
        except ValueError:
            return text_reply(400, "page and pageSize must be integers")
        total = len(contacts)
        payload["pagination"] = {
            "page": page,
            "pageSize": size,
            "pageCount": math.ceil(total / size),
            "itemCount": total,
        }
        contacts = contacts[(page - 1) * size : page * size]
    payload["Contacts"] = [public_copy(c, with_merge=paged) for c in contacts]
    return json_reply(200, envelope(payload))


def _save(org: FakeOrg, record: RecordedRequest, *, mode: str, path_id: str | None = None) -> Reply:
    if record.body.strip() and record.json is None:
        return text_reply(400, "The request body could not be parsed as JSON.")
    elements = record.json.get("Contacts") if isinstance(record.json, dict) else None
    if not isinstance(elements, list) or not elements:
        return json_reply(
            400,
            {"ErrorNumber": 17, "Type": "NoDataProcessedException", "Message": NO_DATA_MESSAGE},
        )
    if mode == "update":
        elements = elements[:1]  # POST /Contacts/{ContactID} updates exactly one contact
    # Xero summarises by default, whatever its OpenAPI file says.
    summarize = True
    for key, values in record.query.items():
        if key.lower() == "summarizeerrors" and values[-1].strip().lower() == "false":
            summarize = False

    results = [org.save_element(element, mode, path_id) for element in elements]
    results = [(public_copy(element, with_merge=False), ok) for element, ok in results]
    if summarize:
        failed = [element for element, ok in results if not ok]
        if failed:
            return json_reply(
                400,
                {
                    "ErrorNumber": 10,
                    "Type": "ValidationException",
                    "Message": "A validation exception occurred",
                    "Elements": failed,
                },
            )
        return json_reply(200, envelope({"Contacts": [element for element, _ in results]}))
    for element, ok in results:
        element["StatusAttributeString"] = "OK" if ok else "ERROR"
    return json_reply(200, envelope({"Contacts": [element for element, _ in results]}))
