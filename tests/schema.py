"""Validate request bodies against the Contact schema of Xero's official OpenAPI description.

The schema comes from tests/fixtures/xero_contact_schema.json, extracted from Xero's
xero_accounting.yaml by scripts/extract_contact_schema.py (which records the file's version and
sha256): the tests read nothing outside the repository.

Stricter than the file alone: an unknown key is an error (a misspelt field would otherwise be
silently dropped by Xero), and so is a read-only field such as Website.
"""

from __future__ import annotations

import copy
import json
from functools import lru_cache
from pathlib import Path

from jsonschema import Draft7Validator

READ_ONLY = {"not": {}}
FIXTURE = Path(__file__).resolve().parent / "fixtures" / "xero_contact_schema.json"


@lru_cache(maxsize=1)
def contact_fixture() -> dict:
    return json.loads(FIXTURE.read_text())


@lru_cache(maxsize=1)
def contact_validator() -> Draft7Validator:
    fixture = contact_fixture()
    schemas = copy.deepcopy(fixture["schemas"])
    for schema in schemas.values():
        _tighten(schema)
    root = {"$ref": f"#/components/schemas/{fixture['root']}", "components": {"schemas": schemas}}
    return Draft7Validator(root)


def _tighten(schema) -> None:
    if not isinstance(schema, dict):
        return
    properties = schema.get("properties")
    if properties:
        schema["additionalProperties"] = False
        for name, prop in list(properties.items()):
            if isinstance(prop, dict) and prop.get("readOnly"):
                # Nothing satisfies {"not": {}}. (A plain `False` would do, but jsonschema then
                # reports the error without the key's path.)
                properties[name] = READ_ONLY
            else:
                _tighten(prop)
    if isinstance(schema.get("items"), dict):
        _tighten(schema["items"])


def contact_errors(contact: dict) -> list[str]:
    return [
        f"{'/'.join(map(str, e.absolute_path)) or '<contact>'}: "
        + ("read-only in Xero's API" if e.schema is READ_ONLY else e.message)
        for e in contact_validator().iter_errors(contact)
    ]


def assert_valid_contact_requests(requests) -> int:
    """Every Contact in every PUT/POST /Contacts body must be valid. Returns how many were."""
    checked = 0
    for request in requests:
        if request.method not in ("PUT", "POST") or "/Contacts" not in request.path:
            continue
        assert request.json is not None, f"{request.method} {request.path} sent no JSON"
        for contact in request.json.get("Contacts", []):
            errors = contact_errors(contact)
            assert not errors, f"{request.method} {request.path} sent an invalid Contact: {errors}"
            checked += 1
    return checked
