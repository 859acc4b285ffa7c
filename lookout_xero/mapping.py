"""Pure functions from a funder to the Xero Contact it should be. No ORM, no HTTP.

The host project may replace `map_funder` (setting ``MAPPING``); whatever it returns still goes
through `clean_contact`, which enforces Xero's field limits, so no replacement can send Xero
something it would refuse for length.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field

from django.core.exceptions import ValidationError
from django.core.validators import EmailValidator

# Xero's documented maximum lengths (docs/xero.md, "Contact fields"; from Xero's OpenAPI).
CONTACT_LIMITS = {
    "Name": 255,
    "FirstName": 255,
    "LastName": 255,
    "EmailAddress": 255,
    "ContactNumber": 50,
    "AccountNumber": 50,
    "TaxNumber": 50,
    "CompanyNumber": 50,
}
PHONE_LIMITS = {"PhoneNumber": 50, "PhoneAreaCode": 10, "PhoneCountryCode": 20}
ADDRESS_LIMITS = {
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
# Read-only in Xero's API: never sent, whatever a custom mapping returns.
READ_ONLY_FIELDS = {"Website", "IsSupplier", "IsCustomer", "Balances", "UpdatedDateUTC", "Discount"}
ACTIVE = "ACTIVE"
ARCHIVED = "ARCHIVED"
GDPR_REQUEST = "GDPRREQUEST"

_email_validator = EmailValidator()


@dataclass
class CleanContact:
    """A contact ready to send (without ContactID/ContactStatus), or the reason it cannot be."""

    payload: dict
    warnings: list[str] = field(default_factory=list)
    error: str = ""

    @property
    def name(self) -> str:
        return self.payload.get("Name", "")

    @property
    def email(self) -> str:
        return self.payload.get("EmailAddress", "")


def map_funder(funder) -> dict:
    """The default mapping for the demo's Funder fields (a host can point MAPPING elsewhere)."""
    name = funder.name.strip() or f"{funder.first_name} {funder.last_name}".strip()
    return {
        "Name": name,
        "FirstName": funder.first_name,
        "LastName": funder.last_name,
        "EmailAddress": funder.email,
        "TaxNumber": funder.tax_number,
        "Phones": [
            {"PhoneType": "DEFAULT", "PhoneNumber": funder.phone},
            {"PhoneType": "MOBILE", "PhoneNumber": funder.mobile},
        ],
        "Addresses": [
            {
                "AddressType": "STREET",
                "AddressLine1": funder.address_line1,
                "AddressLine2": funder.address_line2,
                "City": funder.city,
                "Region": funder.region,
                "PostalCode": funder.postal_code,
                "Country": funder.country,
            }
        ],
    }


# map_funder read backwards, field by field: Xero's Contact field -> the demo Funder's field.
_UNMAPPED_TEXT = {
    "Name": "name",
    "FirstName": "first_name",
    "LastName": "last_name",
    "EmailAddress": "email",
    "TaxNumber": "tax_number",
}
_UNMAPPED_PHONES = {"DEFAULT": "phone", "MOBILE": "mobile"}
_UNMAPPED_STREET = {
    "AddressLine1": "address_line1",
    "AddressLine2": "address_line2",
    "City": "city",
    "Region": "region",
    "PostalCode": "postal_code",
    "Country": "country",
}


def unmap_funder(contact: dict, funder) -> dict:
    """The default REVERSE_MAPPING, for the demo's Funder fields: `map_funder` read backwards.

    `contact` holds only the Contact fields being taken from Xero, in Xero's shape; the answer
    names the funder fields they become. A field it cannot take back is simply left out.
    """
    values: dict = {}
    for key, field_name in _UNMAPPED_TEXT.items():
        if key in contact:
            values[field_name] = _text(contact[key])
    phones = {p.get("PhoneType"): p for p in contact.get("Phones") or []}
    for kind, field_name in _UNMAPPED_PHONES.items():
        if kind in phones:
            values[field_name] = _text(phones[kind].get("PhoneNumber"))
    for address in contact.get("Addresses") or []:
        if address.get("AddressType") == "STREET":
            for key, field_name in _UNMAPPED_STREET.items():
                if key in address:
                    values[field_name] = _text(address[key])
    return values


def log_identity(map_raw, funder) -> tuple[str, str]:
    """The funder's name and e-mail for the sync log, from what the mapping makes of it.

    The host's field names are the mapping's business, not the app's. Without a name there,
    ``str(funder)``. The e-mail is shown even when Xero would refuse it: that is the row a person
    searches for.
    """
    try:
        raw = map_raw(funder)
    except Exception:  # the log row is how a failing mapping gets reported: write it anyway
        raw = {}
    return _text(raw.get("Name")) or str(funder), _text(raw.get("EmailAddress"))


def contact_number(prefix: str, funder_pk) -> str:
    """The stable Xero ContactNumber that identifies a funder (at most 50 characters)."""
    number = f"{prefix}{funder_pk}"
    if len(number) > CONTACT_LIMITS["ContactNumber"]:
        raise ValueError(f"ContactNumber {number!r} is longer than 50 characters")
    return number


def clean_contact(raw: dict, *, number: str) -> CleanContact:
    """Enforce Xero's limits on a mapped contact. Empty values stay, as "": they clear Xero."""
    warnings: list[str] = []
    payload: dict = {}
    for key, value in raw.items():
        if key in READ_ONLY_FIELDS or key in {"ContactID", "ContactStatus", "ContactNumber"}:
            continue
        if key == "Phones":
            payload[key] = [
                _clean_part(p, PHONE_LIMITS, f"Phone {p.get('PhoneType', '')}", warnings)
                for p in value
            ]
        elif key == "Addresses":
            payload[key] = [
                _clean_part(a, ADDRESS_LIMITS, f"Address {a.get('AddressType', '')}", warnings)
                for a in value
            ]
        elif isinstance(value, str) or value is None:
            payload[key] = _clip(key, _text(value), CONTACT_LIMITS.get(key), warnings)
        else:
            payload[key] = value
    payload["ContactNumber"] = number

    email = payload.get("EmailAddress", "")
    if email and not _is_valid_email(email):
        # Dropped, not cleared: Xero keeps whatever address it had rather than losing it.
        warnings.append(f"E-mail address {email!r} is not valid for Xero; it was not sent.")
        del payload["EmailAddress"]

    if not payload.get("Name"):
        return CleanContact(
            payload, warnings, error="The funder has no name, and Xero requires one."
        )
    return CleanContact(payload, warnings)


def with_identity(payload: dict, *, contact_id: str = "", status: str = "") -> dict:
    """The payload as sent: updates always carry the ContactID, never rely on ContactNumber.

    No ContactStatus unless one is given: an ordinary update leaves the status to whoever set
    it (an ACTIVE on every update revived contacts the bookkeeper archived or merged).
    """
    sent = dict(payload)
    if contact_id:
        sent["ContactID"] = contact_id
    if status:
        sent["ContactStatus"] = status
    return sent


def profile_values(sent: dict) -> dict[str, object]:
    """What a payload says of the profile, flattened: what drift is measured against."""
    return {
        path: value
        for path, value in _flatten(sent).items()
        if path not in IDENTITY_FIELDS - {"ContactNumber"}
    }


def drift(last_sent: dict[str, object], xero_profile: dict) -> dict[str, dict]:
    """The fields Lookout sent whose value in Xero is now different, with both values.

    Only what Lookout sent counts: fields it never set are the bookkeeper's alone.
    """
    in_xero = _flatten(xero_profile)
    found = {}
    for path, sent in sorted(last_sent.items()):
        theirs = in_xero.get(path, "")
        if _text(sent) != _text(theirs):
            found[path] = {"lookout": _text(sent), "xero": _text(theirs)}
    return found


def hold(payload: dict, held: dict[str, object]) -> dict:
    """The payload with Xero's own value at each held path it sends: those are not changed."""
    if not held:
        return payload
    flat = _flatten(payload)
    kept = {path: held[path] for path in held if path in flat}
    return _unflatten({**flat, **kept}) if kept else payload


def filled_fields(payload: dict) -> list[str]:
    """The fields a payload gives a value to, as paths like "Phones.MOBILE.PhoneNumber"."""
    return sorted(path for path, value in _flatten(payload).items() if value not in ("", None))


def fill_not_blank(payload: dict, previously_filled: list[str]) -> dict:
    """For a contact found in Xero: send what Lookout has; clear only what Lookout itself set.

    A bookkeeper's data in fields Lookout never had (a tax number, a second phone) survives;
    a value Lookout sent before and has since cleared is still cleared, as for any contact.
    """
    earlier = set(previously_filled)
    kept = {
        path: value
        for path, value in _flatten(payload).items()
        if value not in ("", None) or path in earlier or path in IDENTITY_FIELDS
    }
    return _unflatten(kept)


IDENTITY_FIELDS = {"ContactID", "ContactStatus", "ContactNumber"}
_KIND = {"Phones": "PhoneType", "Addresses": "AddressType"}
# The Contact fields whose direction (which side wins) a connection may choose: the profile
# fields Lookout can send. Website is not one: Xero's API cannot write it, so Lookout never
# sends it and the two sides never disagree on it.
DIRECTION_FIELDS = (
    "Name",
    "FirstName",
    "LastName",
    "EmailAddress",
    "Phones",
    "Addresses",
    "TaxNumber",
    "AccountNumber",
    "CompanyNumber",
)


def field_of(path: str) -> str:
    """The Contact field a flattened path belongs to: "Phones.MOBILE.PhoneNumber" -> "Phones"."""
    return path.split(".", 1)[0]


def is_valid_email(value: str) -> bool:
    """An address Xero (and Django) take: ASCII, well formed."""
    return _is_valid_email(value)


def flat_text(value) -> str:
    """A value as drift compares it: text, whitespace runs made one space."""
    return _text(value)


def same_text(a, b) -> bool:
    """Whether two values are the same to Xero (whitespace runs and None aside)."""
    return _text(a) == _text(b)


def flatten(payload: dict) -> dict[str, object]:
    """A Contact as paths: {"Phones.MOBILE.PhoneNumber": "…", "EmailAddress": "…"}."""
    return _flatten(payload)


def unflatten(flat: dict[str, object]) -> dict:
    """Paths back into a Contact's shape (the inverse of `flatten`)."""
    return _unflatten(flat)


def _flatten(payload: dict) -> dict[str, object]:
    flat: dict[str, object] = {}
    for key, value in payload.items():
        if key in _KIND and isinstance(value, list):
            for part in value:
                kind = part.get(_KIND[key], "")
                for field_name, field_value in part.items():
                    if field_name != _KIND[key]:
                        flat[f"{key}.{kind}.{field_name}"] = field_value
        else:
            flat[key] = value
    return flat


def _unflatten(flat: dict[str, object]) -> dict:
    payload: dict = {}
    for path, value in flat.items():
        if "." not in path:
            payload[path] = value
            continue
        key, kind, field_name = path.split(".", 2)
        parts = payload.setdefault(key, {})
        parts.setdefault(kind, {_KIND[key]: kind})[field_name] = value
    for key in _KIND:
        if key in payload:
            payload[key] = list(payload[key].values())
    return payload


def archive_payload(contact_id: str) -> dict:
    return {"ContactID": contact_id, "ContactStatus": ARCHIVED}


def payload_hash(payload: dict) -> str:
    """A stable fingerprint of what Xero sees (the ContactID aside), to skip no-op saves."""
    payload = {key: value for key, value in payload.items() if key != "ContactID"}
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def _clean_part(part: dict, limits: dict, label: str, warnings: list[str]) -> dict:
    return {
        key: _clip(f"{label} {key}", _text(value), limits.get(key), warnings)
        if isinstance(value, str) or value is None
        else value
        for key, value in part.items()
    }


def _clip(label: str, value: str, limit: int | None, warnings: list[str]) -> str:
    if limit and len(value) > limit:
        warnings.append(f"{label} was {len(value)} characters; Xero allows {limit}, so it was cut.")
        return value[:limit].rstrip()
    return value


def _text(value) -> str:
    return " ".join(str(value or "").split())


def _is_valid_email(value: str) -> bool:
    if not value.isascii():  # Xero: "umlauts not supported"
        return False
    try:
        _email_validator(value)
    except ValidationError:
        return False
    return True
