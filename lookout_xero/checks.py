"""System checks: `manage.py check` names any setting lookout_xero cannot work with."""

from __future__ import annotations

from django.apps import apps
from django.conf import settings
from django.core import checks
from django.core.exceptions import ImproperlyConfigured
from django.db import DatabaseError
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
