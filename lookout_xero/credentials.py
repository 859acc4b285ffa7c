"""The one-time credentials link: a customer hands over their Xero credentials without e-mail.

A link's URL carries a random secret, signed together with its expiry (Django signing with its
own salt), so a tampered or expired link is refused before the database is asked. The database
keeps only a SHA-256 of the secret. One open link per organisation: a new one revokes the old.
Submitting checks the credentials with Xero at once; accepted ones are stored encrypted on the
organisation's connection (created disabled when there is none), and the link is spent. Ones
that reach another Xero organisation, or carry another Client ID, than the connection synced
with wait, encrypted, for a person to confirm them on the connection's page: a link can be
forwarded, and nothing may send an organisation's members to a stranger's Xero.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass, replace
from datetime import timedelta

from django.core import signing
from django.db import transaction
from django.db.models import F
from django.urls import reverse
from django.utils import formats, timezone
from django.views.decorators.debug import sensitive_variables

from . import audit, conf, services
from .models import XeroConnection, XeroCredentialsLink, XeroPendingCredentials
from .services import CredentialCheck

SALT = "lookout_xero.credentials_link"
NEEDED_SCOPE = "accounting.contacts"


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


# --- making and opening links ----------------------------------------------------------------


def create_link(organisation, *, user=None, hours: float | None = None):
    """A new link for the organisation, revoking any open one. Returns (link, url path).

    The path is shown once, to the person who sends it; it cannot be rebuilt later.
    """
    hours = float(conf.get("LINK_HOURS") if hours is None else hours)
    if not 0 < hours <= 24 * 30:
        raise ValueError("A credentials link lasts more than 0 and at most 720 hours.")
    secret = secrets.token_urlsafe(32)
    now = timezone.now()
    expires_at = now + timedelta(hours=hours)
    with transaction.atomic():
        open_links(organisation).update(revoked_at=now)
        link = XeroCredentialsLink.objects.create(
            organisation=organisation,
            token_hash=_hash(secret),
            created_by=user if getattr(user, "pk", None) else None,
            created_at=now,
            expires_at=expires_at,
        )
        until = formats.date_format(timezone.localtime(expires_at), "j M Y, H:i T")
        audit.record(user, organisation, f"{audit.LINK_PREFIX} (#{link.pk}), valid until {until}.")
    token = signing.dumps({"k": secret, "e": int(expires_at.timestamp())}, salt=SALT, compress=True)
    return link, reverse("lookout_xero:credentials", args=[token])


def open_links(organisation=None):
    """Links that can still be used (the organisation's, when one is given)."""
    links = XeroCredentialsLink.objects.filter(
        used_at__isnull=True, revoked_at__isnull=True, expires_at__gt=timezone.now()
    )
    return links if organisation is None else links.filter(organisation=organisation)


def find_link(token: str) -> XeroCredentialsLink | None:
    """The live link this token opens, or None: tampered, expired, spent, revoked or unknown."""
    try:
        payload = signing.loads(token, salt=SALT)
        secret, expires = str(payload["k"]), float(payload["e"])
    except (signing.BadSignature, KeyError, TypeError, ValueError):
        return None
    if expires <= timezone.now().timestamp():
        return None
    return open_links().select_related("organisation").filter(token_hash=_hash(secret)).first()


def is_locked(link: XeroCredentialsLink) -> bool:
    return link.tries >= int(conf.get("LINK_MAX_TRIES"))


def mark_opened(link: XeroCredentialsLink) -> None:
    if link.opened_at is None:
        XeroCredentialsLink.objects.filter(pk=link.pk, opened_at__isnull=True).update(
            opened_at=timezone.now()
        )


# --- checking credentials (the customer page and the admin's Test connection) -----------------


@sensitive_variables("client_secret")
def check(client_id: str, client_secret: str, scope: str) -> CredentialCheck:
    """Ask Xero what these credentials can do, and whether the sync's scope is allowed.

    Asked first with no scope, Xero's token says everything the connection may do: that is
    what least privilege is about, whatever narrower scope the sync then asks for.
    """
    broad = services.check_credentials(client_id, client_secret, "")
    if not broad.ok:
        return broad
    result = broad
    if scope.strip():
        narrow = services.check_credentials(client_id, client_secret, scope)
        result = replace(narrow, scopes=broad.scopes)
    if result.ok and result.scopes:
        result = replace(result, message=f"{result.message} {scopes_sentence(result.scopes)}")
    return result


def scopes_sentence(scopes) -> str:
    extra = [s for s in scopes if s != NEEDED_SCOPE]
    sentence = f"Xero granted: {', '.join(scopes)}."
    if extra:
        sentence += (
            f" Warning: this connection can do more than {NEEDED_SCOPE} "
            f"({', '.join(extra)}); the sync needs only {NEEDED_SCOPE}."
        )
    return sentence


def remember_scopes(connection: XeroConnection, result: CredentialCheck) -> None:
    """Keep what a successful check learnt, so the connection list can flag broad scopes."""
    if result.ok and result.scopes:
        XeroConnection.objects.filter(pk=connection.pk).update(
            granted_scopes=" ".join(result.scopes)
        )


# --- the customer's submission ---------------------------------------------------------------


@dataclass(frozen=True)
class Submission:
    accepted: bool
    message: str = ""
    tenant_name: str = ""
    scopes: tuple[str, ...] = ()
    gone: bool = False  # the link died meanwhile (another tab, a new link)
    locked: bool = False  # LINK_MAX_TRIES reached (by this or a parallel submission)
    # Accepted by Xero, but for another Xero organisation or Client ID than the connection
    # synced with: kept until the Lookout team confirms.
    waiting: bool = False
    sync_on: bool = False  # applied to an enabled connection: syncing carries on with them
    created: bool = False  # the organisation had no connection: this made one, disabled

    @property
    def extra_scopes(self) -> list[str]:
        return [s for s in self.scopes if s != NEEDED_SCOPE]


def sync_is_on(organisation_id) -> bool:
    """Whether credentials accepted for this organisation are used at once (no credential is
    loaded: the customer's page must not decrypt any)."""
    return XeroConnection.objects.filter(organisation_id=organisation_id, enabled=True).exists()


def _reserve_try(link: XeroCredentialsLink) -> bool:
    """Take one of the link's tries, in one conditional UPDATE, before Xero is asked.

    Parallel submissions each take their own, so together they never ask Xero more than
    LINK_MAX_TRIES times; an accepted submission gives its try back (`tries` counts refusals).
    """
    return bool(
        XeroCredentialsLink.objects.filter(
            pk=link.pk,
            used_at__isnull=True,
            revoked_at__isnull=True,
            tries__lt=int(conf.get("LINK_MAX_TRIES")),
        ).update(tries=F("tries") + 1)
    )


@sensitive_variables("client_secret", "webhook_key")
def submit(
    link: XeroCredentialsLink, *, client_id: str, client_secret: str, webhook_key: str = ""
) -> Submission:
    """Check the customer's credentials with Xero; store them and spend the link if accepted.

    Credentials that reach the Xero organisation the connection synced with, with its Client
    ID (a rotated secret), replace the old ones at once. Others wait for a person
    (`XeroPendingCredentials`): whoever holds a link is not necessarily the customer.
    """
    client_id, client_secret, webhook_key = (
        client_id.strip(),
        client_secret.strip(),
        webhook_key.strip(),
    )
    if not _reserve_try(link):
        fresh = XeroCredentialsLink.objects.filter(pk=link.pk).values("used_at", "revoked_at")
        state = fresh.first() or {}
        if state.get("used_at") or state.get("revoked_at") or not state:
            return Submission(False, gone=True)
        return Submission(False, locked=True)
    scope = (
        XeroConnection.objects.filter(organisation_id=link.organisation_id)
        .values_list("scope", flat=True)
        .first()
    )
    scope = conf.get("DEFAULT_SCOPE") if scope is None else scope
    result = check(client_id, client_secret, scope)
    if not result.ok and result.scope_refused:
        # The customer's connection lacks the scope we name: ask for none, and Xero gives what
        # the connection has (the done page then lists it, and warns if it is not contacts).
        scope = ""
        result = check(client_id, client_secret, scope)
    if not result.ok:
        # The check's words are written for the Lookout team; this reader is the customer.
        message = result.message.replace("the customer's ", "your ")
        return Submission(False, _redacted(message, client_id, client_secret, webhook_key))
    with transaction.atomic():
        now = timezone.now()
        spent = XeroCredentialsLink.objects.filter(
            pk=link.pk, used_at__isnull=True, revoked_at__isnull=True
        ).update(used_at=now, xero_tenant_name=result.tenant_name[:255], tries=F("tries") - 1)
        if not spent:
            return Submission(False, gone=True)
        # Read again, locked, after the (slow) check: what the team changed meanwhile, such
        # as switching the sync off, stays as they left it. Only credential fields are written.
        connection = (
            XeroConnection.objects.select_for_update()
            .filter(organisation_id=link.organisation_id)
            .first()
        )
        if connection is not None and _needs_a_person(connection, client_id, result):
            XeroPendingCredentials.objects.update_or_create(
                connection=connection,
                defaults={
                    "link": link,
                    "client_id": client_id,
                    "client_secret": client_secret,
                    "webhook_key": webhook_key,
                    "scope": scope,
                    "granted_scopes": " ".join(result.scopes),
                    "xero_tenant_id": result.tenant_id,
                    "xero_tenant_name": result.tenant_name[:255],
                    "received_at": now,
                },
            )
            return Submission(
                True, tenant_name=result.tenant_name, scopes=result.scopes, waiting=True
            )
        created = connection is None
        if created:
            connection = XeroConnection(organisation_id=link.organisation_id)
        had = frozenset(name for name in audit.WRITE_ONLY if getattr(connection, name))
        changed = ["client_secret", *(["webhook_key"] if webhook_key else [])]
        if connection.pk and connection.client_id != client_id:
            changed.append("client_id")
        connection.client_id, connection.client_secret = client_id, client_secret
        connection.scope = scope
        fields = ["client_id", "client_secret", "scope"]
        if webhook_key:
            connection.webhook_key = webhook_key
            fields.append("webhook_key")
        if connection.pk:
            connection.save(update_fields=fields)  # never `enabled`: see above
        else:
            connection.save()  # a new connection starts disabled
        XeroConnection.objects.filter(pk=connection.pk).update(
            credentials_received_at=now,
            granted_scopes=" ".join(result.scopes),
            xero_tenant_name=result.tenant_name[:255],
        )
        audit.customer_link_used(link, connection, changed, had)
    return Submission(
        True,
        tenant_name=result.tenant_name,
        scopes=result.scopes,
        sync_on=connection.enabled,
        created=created,
    )


def _needs_a_person(connection: XeroConnection, client_id: str, result: CredentialCheck) -> bool:
    """Another Xero organisation, or another Client ID, than a connection that has synced."""
    if not connection.xero_tenant_id:
        return False  # never synced: nothing to protect yet
    if result.tenant_id.lower() != connection.xero_tenant_id.lower():
        return True
    return client_id != connection.client_id


def _redacted(message: str, *typed: str) -> str:
    """Xero's answer is quoted in some messages: make sure nothing typed comes back in it."""
    for value in typed:
        if len(value) >= 4:
            message = message.replace(value, "[what you typed]")
    return message


def links_of(organisation, limit: int = 20) -> list[XeroCredentialsLink]:
    return list(
        XeroCredentialsLink.objects.filter(organisation=organisation).select_related("created_by")[
            :limit
        ]
    )
