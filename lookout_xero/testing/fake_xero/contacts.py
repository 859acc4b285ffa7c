"""The contacts store: one organisation's contacts, Xero's validation rules and field merging.

Rules (docs/xero.md, "Contacts"): a Name is required to create and must be unique among
ACTIVE contacts; field lengths are capped; e-mail must look valid and be ASCII; an update
keeps the fields it omits, clears those sent as ""; phones and addresses merge by type.
"""

from __future__ import annotations

import copy
import re
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .wire import ZERO_GUID, ms_date

NAME_EMPTY = "Contact Name cannot be empty."
EMAIL_INVALID = "Email address must be valid."
NAME_TAKEN = (
    "The contact name {name} is already assigned to another contact. "
    "The contact name must be unique across all active contacts."
)
CONTACT_NOT_FOUND = "The specified contact could not be found."
PUT_WITH_ID = "A ContactID cannot be supplied when creating contacts with PUT; use POST to update."

# Xero's rules, written out again here rather than imported from lookout_xero.mapping: the fake
# stands in for Xero, so a mistake in the app's copy must make a test fail, not agree with it.
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
SEARCH_FIELDS = ("Name", "FirstName", "LastName", "ContactNumber", "EmailAddress")
EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def fold(value: str | None) -> str:
    return (value or "").strip().lower()


class ContactStore:
    """One organisation's contacts, guarded by the fake's data lock."""

    def __init__(self, lock: threading.RLock) -> None:
        self._lock = lock
        self.contacts: dict[str, dict] = {}

    def add_contact(self, **fields: Any) -> dict:
        """Seed a pre-existing contact (no uniqueness check) and return the stored copy.

        ``MergedToContactID`` may be given, to seed a contact already merged into another.
        """
        with self._lock:
            contact_id = str(fields.pop("ContactID", None) or uuid.uuid4()).lower()
            merged_to = fields.pop("MergedToContactID", None)
            stored = blank_contact(contact_id)
            errors = apply_fields(stored, fields, creating=True)
            if errors:
                raise ValueError("; ".join(errors))
            if merged_to:
                stored["MergedToContactID"] = str(merged_to).lower()
            stored["UpdatedDateUTC"] = ms_date(time.time(), offset=True)
            self.contacts[contact_id] = stored
            return copy.deepcopy(stored)

    def find(
        self, *, name: str | None = None, email: str | None = None, number: str | None = None
    ) -> list[dict]:
        """Return stored contacts (archived included) matching every given criterion."""
        with self._lock:
            found = []
            for contact in self.contacts.values():
                if name is not None and fold(contact.get("Name")) != fold(name):
                    continue
                if email is not None and fold(contact.get("EmailAddress")) != fold(email):
                    continue
                if number is not None and contact.get("ContactNumber") != number:
                    continue
                found.append(copy.deepcopy(contact))
            return found

    def resolve(self, ref: str) -> str:
        """The ContactID a person means by ``ref``: a ContactID, a ContactNumber or a name.

        A name must be unique (among active contacts when several share it).
        """
        with self._lock:
            if ref.strip().lower() in self.contacts:
                return ref.strip().lower()
            for candidates in (
                [c for c in self.contacts.values() if c.get("ContactNumber") == ref],
                [c for c in self.contacts.values() if fold(c.get("Name")) == fold(ref)],
            ):
                if len(candidates) > 1:
                    candidates = [c for c in candidates if c["ContactStatus"] == "ACTIVE"]
                if len(candidates) == 1:
                    return candidates[0]["ContactID"]
                if candidates:
                    raise ValueError(f"{ref!r} names several contacts; use a ContactID.")
            raise ValueError(f"No contact {ref!r}.")

    # -- the API's writes; callers hold the fake's data lock

    def name_taken(self, name: str, own_id: str) -> bool:
        folded = fold(name)
        return any(
            cid != own_id and c.get("ContactStatus") == "ACTIVE" and fold(c.get("Name")) == folded
            for cid, c in self.contacts.items()
        )

    def save_element(self, element: Any, mode: str, path_id: str | None) -> tuple[dict, bool]:
        """Apply one element of a PUT/POST; return (element for the response, succeeded).

        ``mode`` is ``create`` (PUT), ``upsert`` (POST /Contacts) or ``update``
        (POST /Contacts/{id}, with ``path_id``).
        """
        if not isinstance(element, dict):
            return failed({}, ZERO_GUID, ["Each contact must be an object."]), False
        sent_id = element.get("ContactID")
        target_id = path_id or (str(sent_id).strip().lower() if sent_id else None)
        if mode == "create" and sent_id:
            return failed(element, str(sent_id), [PUT_WITH_ID]), False
        existing = self.contacts.get(target_id) if target_id else None
        if target_id and existing is None:
            return failed(element, str(sent_id), [CONTACT_NOT_FOUND]), False

        creating = existing is None
        new_id = target_id or str(uuid.uuid4())
        candidate = copy.deepcopy(existing) if existing else blank_contact(new_id)
        errors = apply_fields(candidate, element, creating=creating)
        if not errors and candidate.get("ContactStatus") == "ACTIVE":
            renamed = creating or fold(candidate.get("Name")) != fold(existing.get("Name"))
            reactivated = not creating and existing.get("ContactStatus") != "ACTIVE"
            if (renamed or reactivated) and self.name_taken(candidate["Name"], new_id):
                errors.append(NAME_TAKEN.format(name=candidate["Name"]))
        if errors:
            return failed(element, target_id or ZERO_GUID, errors), False

        candidate["UpdatedDateUTC"] = ms_date(time.time(), offset=True)
        self.contacts[new_id] = candidate
        return copy.deepcopy(candidate), True


# --------------------------------------------------------------------------- fields


def blank_contact(contact_id: str) -> dict:
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


@dataclass(frozen=True)
class _Typed:
    """A list of a contact's parts keyed by a type (its phones, or its addresses)."""

    field: str  # "Phones"
    item: str  # "phone"
    type_key: str  # "PhoneType"
    default_type: str  # the type of an item sent without one
    types: tuple[str, ...]  # the types Xero accepts
    order: tuple[str, ...]  # the order Xero returns them in
    limits: dict[str, int]
    blank: Callable[[str], dict]


PHONES = _Typed(
    "Phones",
    "phone",
    "PhoneType",
    "DEFAULT",
    PHONE_TYPES,
    (*STANDARD_PHONE_TYPES, "OFFICE"),
    PHONE_MAX_LENGTHS,
    _blank_phone,
)
ADDRESSES = _Typed(
    "Addresses",
    "address",
    "AddressType",
    "POBOX",
    ADDRESS_TYPES,
    ADDRESS_TYPES,
    ADDRESS_MAX_LENGTHS,
    _blank_address,
)


def _merge_typed(stored: dict, sent: Any, errors: list[str], kind: _Typed) -> None:
    """Replace the stored item of each type that was sent; keep the others."""
    if not isinstance(sent, list):
        errors.append(f"{kind.field} must be a list.")
        return
    by_type = {item[kind.type_key]: item for item in stored[kind.field]}
    for item in sent:
        if not isinstance(item, dict):
            errors.append(f"Each {kind.item} must be an object.")
            continue
        item_type = item.get(kind.type_key) or kind.default_type
        if item_type not in kind.types:
            errors.append(f"{kind.type_key} must be one of {', '.join(kind.types)}.")
            continue
        for key, limit in kind.limits.items():
            _check_length(errors, key, item.get(key), limit)
        new = kind.blank(item_type)
        new.update({k: item[k] for k in kind.limits if isinstance(item.get(k), str)})
        by_type[item_type] = new
    stored[kind.field] = [by_type[t] for t in kind.order if t in by_type]


def apply_fields(stored: dict, incoming: dict, *, creating: bool) -> list[str]:
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
            _merge_typed(stored, value, errors, PHONES)
        elif key == "Addresses":
            _merge_typed(stored, value, errors, ADDRESSES)
        elif key == "ContactStatus" and value == "":
            continue  # a status cannot be cleared; keep the current one
        elif value == "":
            stored.pop(key, None)  # "" clears a field
        else:
            stored[key] = copy.deepcopy(value)
    return errors


def failed(element: dict, contact_id: str, errors: list[str]) -> dict:
    """Echo a rejected element back the way Xero does, with its validation errors."""
    echoed = copy.deepcopy(element)
    echoed["ContactID"] = contact_id
    echoed["HasValidationErrors"] = True
    echoed["ValidationErrors"] = [{"Message": message} for message in errors]
    return echoed


def public_copy(contact: dict, *, with_merge: bool) -> dict:
    """The contact as an answer shows it.

    Xero returns ``MergedToContactID`` only on paged reads and when a contact is fetched by
    its ContactID or ContactNumber (docs/xero.md, "Merged contacts").
    """
    shown = copy.deepcopy(contact)
    if not with_merge:
        shown.pop("MergedToContactID", None)
    return shown
