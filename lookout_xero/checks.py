"""System checks: `manage.py check` names any setting lookout_xero cannot work with."""

from __future__ import annotations

from django.apps import apps
from django.conf import settings
from django.core import checks
from django.core.exceptions import FieldDoesNotExist, ImproperlyConfigured
from django.db import DatabaseError, models
from django.utils.module_loading import import_string

from . import conf


@checks.register()
def check_settings(app_configs=None, **kwargs) -> list[checks.CheckMessage]:
    errors: list[checks.CheckMessage] = []
    for setting in ("LOOKOUT_XERO_ORGANISATION_MODEL", "LOOKOUT_XERO_FUNDER_MODEL"):
        label = getattr(settings, setting, "")
        try:
            apps.get_model(label)
        except (LookupError, ValueError):
            errors.append(
                checks.Error(
                    f"{setting} = {label!r} is not an installed model.", id="lookout_xero.E001"
                )
            )
    unknown = set(getattr(settings, "LOOKOUT_XERO", {})) - set(conf.DEFAULTS)
    if unknown:
        errors.append(
            checks.Error(
                f"LOOKOUT_XERO has unknown keys: {', '.join(sorted(unknown))}.",
                hint=f"Known keys: {', '.join(sorted(conf.DEFAULTS))}.",
                id="lookout_xero.E002",
            )
        )
    for name in ("TOKEN_URL", "API_URL"):
        try:
            conf.token_url() if name == "TOKEN_URL" else conf.api_url()
        except ImproperlyConfigured as exc:
            errors.append(checks.Error(str(exc), id="lookout_xero.E003"))
    try:
        import_string(conf.get("MAPPING"))
    except ImportError as exc:
        errors.append(
            checks.Error(
                f"LOOKOUT_XERO['MAPPING'] cannot be imported: {exc}", id="lookout_xero.E004"
            )
        )
    try:
        import_string(conf.get("REVERSE_MAPPING"))
    except ImportError as exc:
        errors.append(
            checks.Error(
                f"LOOKOUT_XERO['REVERSE_MAPPING'] cannot be imported: {exc}",
                id="lookout_xero.E027",
            )
        )
    if not 1 <= int(conf.get("BATCH_SIZE")) <= 100:
        errors.append(
            checks.Error(
                "LOOKOUT_XERO['BATCH_SIZE'] must be 1 to 100 (Xero advises 50).",
                id="lookout_xero.E005",
            )
        )
    if float(conf.get("LEASE_SECONDS")) <= float(conf.get("HTTP_TIMEOUT")) + 5:
        errors.append(
            checks.Error(
                "LOOKOUT_XERO['LEASE_SECONDS'] must be longer than HTTP_TIMEOUT (plus a margin): "
                "a drain renews its lease before each call, and one slow call must not let "
                "another worker take the organisation over.",
                id="lookout_xero.E007",
            )
        )
    if not 0 <= float(conf.get("ENABLED_CACHE_SECONDS")) <= 60:
        errors.append(
            checks.Error(
                "LOOKOUT_XERO['ENABLED_CACHE_SECONDS'] must be 0 to 60: every full sync started "
                "by enabling waits this long before reading the funders.",
                id="lookout_xero.E008",
            )
        )
    if not getattr(settings, "FERNET_KEYS", None):
        errors.append(
            checks.Warning(
                "FERNET_KEYS is not set: Xero credentials are encrypted with a key derived "
                "from SECRET_KEY.",
                id="lookout_xero.W001",
            )
        )
    return errors


@checks.register()
def check_keys_open_stored_values(app_configs=None, **kwargs) -> list[checks.CheckMessage]:
    """A sample of stored credentials must decrypt with FERNET_KEYS (a dropped key shows here)."""
    from . import keys

    try:
        problems = keys.undecryptable_sample()
    except DatabaseError:
        return []  # no database yet, or not migrated: nothing stored to check
    if not problems:
        return []
    shown = ", ".join(problems[:5]) + (" …" if len(problems) > 5 else "")
    return [
        checks.Error(
            f"{len(problems)} stored Xero credential value(s) cannot be decrypted with any key "
            f"in FERNET_KEYS ({shown}).",
            hint="The key that encrypted them was removed or changed. Put it back in FERNET_KEYS "
            "after the current key, run `manage.py xero_rotate_keys`, then remove it.",
            id="lookout_xero.E006",
        )
    ]


# Xero's request-size limit for one POST (docs/xero.md, "Contacts": 3.5 MB).
XERO_REQUEST_LIMIT_BYTES = 3_500_000


@checks.register()
def check_xero_limits(app_configs=None, **kwargs) -> list[checks.CheckMessage]:
    """Sizes Xero itself would not accept: a page over 1,000, a batch over 3.5 MB."""
    from .client import MAX_PAGE_SIZE

    errors: list[checks.CheckMessage] = []
    page_size = conf.get("PAGE_SIZE")
    if not isinstance(page_size, int) or not 1 <= page_size <= MAX_PAGE_SIZE:
        errors.append(
            checks.Error(
                f"LOOKOUT_XERO['PAGE_SIZE'] must be 1 to {MAX_PAGE_SIZE}, got {page_size!r}: "
                f"Xero answers at most {MAX_PAGE_SIZE} contacts a page, so a larger page would "
                "end a full sync's reading early without a word.",
                id="lookout_xero.E009",
            )
        )
    batch_size = conf.get("BATCH_SIZE")
    largest = largest_contact_bytes()
    if isinstance(batch_size, int) and batch_size * largest > XERO_REQUEST_LIMIT_BYTES:
        errors.append(
            checks.Error(
                f"LOOKOUT_XERO['BATCH_SIZE'] = {batch_size} can make a request larger than "
                f"Xero's 3.5 MB limit: one contact within Xero's field limits can take "
                f"{largest:,} bytes as JSON, so at most "
                f"{XERO_REQUEST_LIMIT_BYTES // largest} fit (Xero advises 50).",
                id="lookout_xero.E010",
            )
        )
    return errors


def largest_contact_bytes() -> int:
    """The JSON size of the largest contact the sync can send: every field Xero limits at its
    limit, every character escaped as ``\\uXXXX`` (as `requests` encodes non-ASCII), with the
    four standard phones plus OFFICE and both address types."""
    import json

    from . import mapping

    def full(limits: dict) -> dict:
        return {key: "é" * limit for key, limit in limits.items()}

    contact = {
        **full(mapping.CONTACT_LIMITS),
        "ContactID": "00000000-0000-0000-0000-000000000000",
        "ContactStatus": mapping.ARCHIVED,
        "Phones": [
            {"PhoneType": kind, **full(mapping.PHONE_LIMITS)}
            for kind in ("DEFAULT", "DDI", "MOBILE", "FAX", "OFFICE")
        ],
        "Addresses": [
            {"AddressType": kind, **full(mapping.ADDRESS_LIMITS)} for kind in ("POBOX", "STREET")
        ],
    }
    return len(json.dumps(contact).encode()) + 2  # and the comma and space between contacts


# --- the host's model and field names ---------------------------------------------------------
# Each setting that names a host field is looked up on the model it names, as Django checks
# AUTH_USER_MODEL: a wrong name shows in `manage.py check`, not as a FieldError on the first
# sync or the first admin list sorted by organisation.


@checks.register()
def check_host_fields(app_configs=None, **kwargs) -> list[checks.CheckMessage]:
    try:
        funders = conf.funder_model()
        organisations = conf.organisation_model()
    except (LookupError, ValueError, ImproperlyConfigured):
        return []  # lookout_xero.E001 names the model setting
    errors = []
    label = conf.funder_model_label()

    def error(key: str, message: str, id: str, hint: str | None = None) -> None:
        errors.append(
            checks.Error(f"LOOKOUT_XERO[{key!r}] = {conf.get(key)!r}: {message}", hint=hint, id=id)
        )

    field = _field(funders, conf.get("ORGANISATION_FIELD"))
    if field is None:
        error("ORGANISATION_FIELD", f"{label} has no such field.", "lookout_xero.E020")
    elif not (field.many_to_one and field.related_model is organisations):
        error(
            "ORGANISATION_FIELD",
            f"{label}.{field.name} is not a ForeignKey to "
            f"LOOKOUT_XERO_ORGANISATION_MODEL ({conf.organisation_model_label()}).",
            "lookout_xero.E020",
        )

    name = conf.get("ORGANISATION_NAME_FIELD")
    if _lookup_target(organisations, name) is None:
        error(
            "ORGANISATION_NAME_FIELD",
            f"{conf.organisation_model_label()} has no such field: the admin searches and sorts "
            "by organisation with it.",
            "lookout_xero.E021",
            hint="Name the organisation model's name field, e.g. 'title'.",
        )

    field = _field(funders, conf.get("MEMBERSHIP_FIELD"))
    if field is None or not field.concrete:
        error(
            "MEMBERSHIP_FIELD",
            f"{label} has no such field with a column of its own.",
            "lookout_xero.E022",
        )
    elif field.choices and conf.get("MEMBERSHIP_VALUE") not in {
        value for value, _ in field.flatchoices
    }:
        error(
            "MEMBERSHIP_VALUE",
            f"not one of the choices of {label}.{field.name}: no funder would ever sync.",
            "lookout_xero.E023",
        )

    field = _field(funders, conf.get("ARCHIVED_FIELD"))
    if field is None:
        error("ARCHIVED_FIELD", f"{label} has no such field.", "lookout_xero.E024")
    elif not isinstance(field, models.BooleanField):
        error("ARCHIVED_FIELD", f"{label}.{field.name} is not a BooleanField.", "lookout_xero.E024")

    _check_reverse_mapping(funders, label, error, errors)
    try:
        mapping = import_string(conf.get("MAPPING"))
    except ImportError:
        return errors  # lookout_xero.E004
    if not callable(mapping):
        error("MAPPING", "not a function of a funder.", "lookout_xero.E025")
    elif conf.get("MAPPING") == conf.DEFAULTS["MAPPING"]:
        missing = [f for f in DEFAULT_MAPPING_FIELDS if _field(funders, f) is None]
        if missing:
            error(
                "MAPPING",
                f"the default mapping reads fields {label} does not have ({', '.join(missing)}).",
                "lookout_xero.E026",
                hint="Point MAPPING at the host's own function of a funder "
                "(see lookout_xero.mapping.map_funder).",
            )
    return errors


def _check_reverse_mapping(funders, label: str, error, warnings: list) -> None:
    """REVERSE_MAPPING: callable, and the default one only on a model with the demo's fields.

    The default on another model is a warning, not an error: a host that had set MAPPING
    before directions existed keeps passing `check`, and until it sets REVERSE_MAPPING a value
    taken from Xero into a field its funder lacks is refused and waits for a person.
    """
    try:
        reverse = import_string(conf.get("REVERSE_MAPPING"))
    except ImportError:
        return  # lookout_xero.E027, from check_settings
    if not callable(reverse):
        error(
            "REVERSE_MAPPING",
            "not a function of (contact fields, funder).",
            "lookout_xero.E027",
        )
    elif conf.get("REVERSE_MAPPING") == conf.DEFAULTS["REVERSE_MAPPING"]:
        missing = [f for f in DEFAULT_MAPPING_FIELDS if _field(funders, f) is None]
        if missing:
            warnings.append(
                checks.Warning(
                    f"LOOKOUT_XERO['REVERSE_MAPPING'] = {conf.get('REVERSE_MAPPING')!r}: the "
                    f"default reverse mapping writes fields {label} does not have "
                    f"({', '.join(missing)}); a value taken from Xero into one of them is "
                    "refused and waits for a person.",
                    hint="Point REVERSE_MAPPING at the host's own function of (contact fields, "
                    "funder) returning {funder field: value} (see "
                    "lookout_xero.mapping.unmap_funder), or at one returning {} to take nothing.",
                    id="lookout_xero.W028",
                )
            )


# What lookout_xero.mapping.map_funder reads of a funder (and unmap_funder writes back).
DEFAULT_MAPPING_FIELDS = (
    "name",
    "first_name",
    "last_name",
    "email",
    "tax_number",
    "phone",
    "mobile",
    "address_line1",
    "address_line2",
    "city",
    "region",
    "postal_code",
    "country",
)


def _field(model, name: str):
    try:
        return model._meta.get_field(name)
    except FieldDoesNotExist:
        return None


def _lookup_target(model, path: str):
    """The field at the end of a `a__b` path from `model`, or None where one step is missing."""
    field = None
    for part in path.split("__"):
        if model is None:
            return None
        field = _field(model, part)
        if field is None:
            return None
        model = field.related_model
    return field
