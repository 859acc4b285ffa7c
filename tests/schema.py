"""Validate request bodies against the Contact schema of Xero's official OpenAPI description.

Stricter than the file alone: an unknown key is an error (a misspelt field would otherwise be
silently dropped by Xero), and so is a read-only field such as Website.
"""

from __future__ import annotations

import copy
from functools import lru_cache
from pathlib import Path

import yaml
from jsonschema import Draft7Validator


def _find_spec() -> Path:
    """shared/ lies beside the project checkout."""
    for folder in Path(__file__).resolve().parents:
        candidate = folder / "shared" / "xero" / "xero_accounting.yaml"
        if candidate.exists():
            return candidate
    raise FileNotFoundError("shared/xero/xero_accounting.yaml not found beside the project")


@lru_cache(maxsize=1)
def contact_validator() -> Draft7Validator:
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    spec = yaml.load(_find_spec().read_text(), Loader=loader)
    schemas = copy.deepcopy(spec["components"]["schemas"])
    for schema in schemas.values():
        _tighten(schema)
    root = {"$ref": "#/components/schemas/Contact", "components": {"schemas": schemas}}
    return Draft7Validator(root)


def _tighten(schema) -> None:
    if not isinstance(schema, dict):
        return
    properties = schema.get("properties")
    if properties:
        schema["additionalProperties"] = False
        for name, prop in list(properties.items()):
            if isinstance(prop, dict) and prop.get("readOnly"):
                properties[name] = False  # a boolean schema that nothing satisfies
            else:
                _tighten(prop)
    if isinstance(schema.get("items"), dict):
        _tighten(schema["items"])


def contact_errors(contact: dict) -> list[str]:
    return [
        f"{'/'.join(map(str, e.absolute_path)) or '<contact>'}: {e.message}"
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
