"""A small control endpoint standing in for Xero's own screens, for the demo and for people.

``POST /_bookkeeper/<action>`` with a JSON object; the answer is JSON, 400 with ``{"error"}``
when the action is refused. ``client_id`` picks the organisation (optional with only one).
Contacts are named by ContactID, ContactNumber or (unique) name.

==================  =======================================================================
action              JSON body
==================  =======================================================================
contacts            (also ``GET``) every contact: id, name, number, status, merged-to
create              ``{"fields": {"Name": …}}``
edit                ``{"contact": ref, "fields": {"Phones": […], "EmailAddress": …}}``
archive / restore   ``{"contact": ref}``
gdpr                ``{"contact": ref}``
merge               ``{"from": ref, "into": ref}``
webhook             ``{"url": …, "key": …}`` (key optional: a new one is made and returned)
intent-to-receive   ``{}``: Xero's signed/unsigned check of the webhook URL
==================  =======================================================================
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

from .org import BookkeeperChange, FakeOrg
from .webhooks import new_key
from .wire import Reply, json_reply

if TYPE_CHECKING:
    from .server import FakeXero

CONTROL_PREFIX = "/_bookkeeper"
SUMMARY_FIELDS = ("ContactID", "Name", "ContactNumber", "EmailAddress", "ContactStatus")


def is_control_path(path: str) -> bool:
    return path == CONTROL_PREFIX or path.startswith(CONTROL_PREFIX + "/")


def serve(fake: FakeXero, method: str, path: str, query: str, body: bytes) -> Reply:
    """Perform one bookkeeper action and describe what happened."""
    action = path[len(CONTROL_PREFIX) :].strip("/")
    handler = ACTIONS.get(action)
    if handler is None:
        return json_reply(404, {"error": f"Unknown action {action!r}; one of {sorted(ACTIONS)}."})
    if method != "POST" and not (method == "GET" and action == "contacts"):
        return json_reply(405, {"error": "Use POST."})
    try:
        data = json.loads(body) if body.strip() else {}
    except ValueError:
        return json_reply(400, {"error": "The body is not JSON."})
    if not isinstance(data, dict):
        return json_reply(400, {"error": "The body must be a JSON object."})
    for key, values in parse_qs(query).items():
        data.setdefault(key, values[-1])
    try:
        return json_reply(200, handler(_organisation(fake, data.get("client_id")), data))
    except KeyError as exc:
        return json_reply(400, {"error": f"Missing {exc.args[0]!r} in the request."})
    except (TypeError, ValueError) as exc:
        return json_reply(400, {"error": str(exc)})


def _organisation(fake: FakeXero, client_id: str | None) -> FakeOrg:
    if client_id:
        try:
            return fake.org(client_id)
        except KeyError:
            raise ValueError(f"No organisation for client_id {client_id!r}.") from None
    orgs = fake.organisations()
    if len(orgs) != 1:
        raise ValueError("Say which organisation: client_id is needed when there are several.")
    return orgs[0]


def _summary(contact: dict) -> dict[str, Any]:
    shown = {key: contact.get(key) for key in SUMMARY_FIELDS}
    shown["MergedToContactID"] = contact.get("MergedToContactID")
    return shown


def _described(change: BookkeeperChange) -> dict[str, Any]:
    delivery = change.delivery.summary() if change.delivery else None
    return {"contact": _summary(change.contact), "webhook": delivery}


def _fields(data: dict) -> dict[str, Any]:
    fields = data.get("fields") or {}
    if not isinstance(fields, dict):
        raise ValueError("fields must be a JSON object.")
    return fields


def _contacts(org: FakeOrg, data: dict) -> dict:
    with org._lock:
        return {"contacts": [_summary(c) for c in org.contacts.values()]}


def _webhook(org: FakeOrg, data: dict) -> dict:
    key = data.get("key") or new_key()
    org.set_webhook(data["url"], key)
    return {"url": data["url"], "key": key}


def _intent_to_receive(org: FakeOrg, data: dict) -> dict:
    deliveries = org.send_intent_to_receive()
    return {
        "passed": all(d.as_xero_expects for d in deliveries),
        "deliveries": [d.summary() for d in deliveries],
    }


ACTIONS: dict[str, Callable[[FakeOrg, dict], dict]] = {
    "contacts": _contacts,
    "create": lambda org, data: _described(org.create(**_fields(data))),
    "edit": lambda org, data: _described(org.edit(org.resolve(data["contact"]), **_fields(data))),
    "archive": lambda org, data: _described(org.archive(org.resolve(data["contact"]))),
    "restore": lambda org, data: _described(org.restore(org.resolve(data["contact"]))),
    "gdpr": lambda org, data: _described(org.gdpr_request(org.resolve(data["contact"]))),
    "merge": lambda org, data: _described(
        org.merge(org.resolve(data["from"]), org.resolve(data["into"]))
    ),
    "webhook": _webhook,
    "intent-to-receive": _intent_to_receive,
}
