"""The only reader of settings. Everything is read at call time, never at import.

`LOOKOUT_XERO` is one dict; a missing key takes the default below. The two model settings are
top-level, like ``AUTH_USER_MODEL``, because lookout_xero's foreign keys point at them.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from django.apps import apps
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import models
from django.utils.module_loading import import_string

DEFAULTS: dict[str, Any] = {
    "TOKEN_URL": "https://identity.xero.com/connect/token",
    "API_URL": "https://api.xero.com",
    "DEFAULT_SCOPE": "accounting.contacts",
    # Funder fields lookout_xero needs to decide scope without knowing the host's model.
    "ORGANISATION_FIELD": "organisation",
    "MEMBERSHIP_FIELD": "funder_type",
    "MEMBERSHIP_VALUE": "membership",
    "ARCHIVED_FIELD": "archived",
    # The organisation's field the admin searches and sorts the organisation column by.
    "ORGANISATION_NAME_FIELD": "name",
    # Dotted path to a pure function funder -> lookout_xero.mapping.MappedContact.
    "MAPPING": "lookout_xero.mapping.map_funder",
    # Dotted path to f(contact_fields, funder) -> {funder field: value}: what a correction made
    # in Xero becomes in the funder, for the fields whose direction lets Xero's value in.
    "REVERSE_MAPPING": "lookout_xero.mapping.unmap_funder",
    "CONTACT_NUMBER_PREFIX": "LKT-",
    "ARCHIVE_IN_XERO": True,
    "BATCH_SIZE": 50,
    "PAGE_SIZE": 100,
    "HTTP_TIMEOUT": 30,
    "MAX_ATTEMPTS": 8,
    "RETRY_BASE_SECONDS": 5,
    "RETRY_MAX_SECONDS": 900,
    "MIN_LIMIT_RESERVE": 5,
    "LEASE_SECONDS": 45,
    # How long one drain task works through an organisation's backlog before it hands over
    # (its next pass goes to the back of the queue), so organisations take turns.
    "DRAIN_SLICE_SECONDS": 10,
    # How long a process trusts what it read of an organisation's Enabled switch, so that a
    # funder save in an organisation without an enabled connection costs no query.
    "ENABLED_CACHE_SECONDS": 2,
    # How often beat reconciles (queues.beat_schedule reads it from the settings module).
    "RECONCILE_SECONDS": 3600,
    # How often beat reads the contacts changed in Xero of connections without a working webhook
    # (queues.beat_schedule reads it from the settings module).
    "READ_CHANGES_SECONDS": 300,
    "LOG_RETENTION_DAYS": 90,
    "CONFLICT_NAME_SUFFIX": " ({n})",
    # Who is e-mailed when a connection needs a person (empty: nobody), and after how long
    # conflicts and failures count as waiting for one.
    "ALERT_RECIPIENTS": [],
    "ALERT_AFTER_MINUTES": 60,
    # Absolute base of this site (e.g. "https://lookout.example.org") for links in e-mails.
    "SITE_URL": "",
    "LINK_HOURS": 72,
    # Refused submissions before a credentials link stops accepting more.
    "LINK_MAX_TRIES": 10,
    # Seconds a web request waits for each answer when it checks credentials with Xero (the
    # customer's page, Test connection): a slow Xero must not hold a web worker for long.
    "CHECK_TIMEOUT": 5,
}

LOOPBACK_HOSTS = {"localhost", "127.0.0.1", "::1"}


def get(name: str) -> Any:
    """One lookout_xero setting, from ``settings.LOOKOUT_XERO`` or its default."""
    if name not in DEFAULTS:
        raise KeyError(f"Unknown lookout_xero setting {name!r}")
    return getattr(settings, "LOOKOUT_XERO", {}).get(name, DEFAULTS[name])


def organisation_model_label() -> str:
    return _model_label("LOOKOUT_XERO_ORGANISATION_MODEL")


def funder_model_label() -> str:
    return _model_label("LOOKOUT_XERO_FUNDER_MODEL")


def _model_label(setting: str) -> str:
    label = getattr(settings, setting, None)
    if not label:
        raise ImproperlyConfigured(f"{setting} must name the host's model, e.g. 'crm.Funder'.")
    return label


def funder_model() -> type[models.Model]:
    return apps.get_model(funder_model_label())


def organisation_model() -> type[models.Model]:
    return apps.get_model(organisation_model_label())


def organisation_name_lookup(path: str) -> str:
    """The lookup for the name of the organisation at `path`, e.g. for admin search fields."""
    return f"{path}__{get('ORGANISATION_NAME_FIELD')}"


def mapping_function():
    return import_string(get("MAPPING"))


def reverse_mapping_function():
    return import_string(get("REVERSE_MAPPING"))


def alert_recipients() -> list[str]:
    """ALERT_RECIPIENTS as a list; a single address given as a string is one recipient."""
    value = get("ALERT_RECIPIENTS")
    if isinstance(value, str):
        value = [value]
    return [address.strip() for address in value if address and address.strip()]


def api_url() -> str:
    return _checked_url("API_URL").rstrip("/")


def token_url() -> str:
    return _checked_url("TOKEN_URL")


def _checked_url(name: str) -> str:
    url = get(name)
    parts = urlsplit(url)
    if parts.scheme == "https" and parts.hostname:
        return url
    if parts.scheme == "http" and parts.hostname in LOOPBACK_HOSTS | {"[::1]"}:
        return url
    raise ImproperlyConfigured(
        f"LOOKOUT_XERO[{name!r}] must be an https:// URL (plain http:// only on loopback), "
        f"got {url!r}."
    )
