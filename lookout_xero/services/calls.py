"""Calling Xero for a connection: its client, the limits Xero reports, and what Xero's
refusals do to the connection (stop and say why, or pause for the day).
"""

from __future__ import annotations

import logging
from datetime import timedelta

from django.utils import timezone

from .. import wording
from ..client import Credentials, Token, XeroClient, XeroTenant
from ..exceptions import XeroError, XeroForbiddenError, XeroTenantChangedError
from ..fields import UndecryptableError
from ..models import SyncLog, SyncRun, XeroConnection
from .records import finish_run, write_log

logger = logging.getLogger(__name__)

Outcome = SyncLog.Outcome


class StopDrain(Exception):
    """End this drain now; the connection's state says why (error, pause)."""


class RetryLater(Exception):
    """The work should run again after `seconds` (rate limit or a passing outage)."""

    def __init__(self, seconds: float) -> None:
        super().__init__(f"retry in {seconds:.0f}s")
        self.seconds = seconds


def client_for(connection: XeroConnection, *, before_request=None) -> XeroClient:
    token = None
    if connection.access_token and connection.access_token_expires_at:
        token = Token(connection.access_token, connection.access_token_expires_at)

    def store(new: Token) -> None:
        # A new token is where other credentials first show (however they were changed): it
        # is used for nothing until the organisation it reaches is the one last synced with.
        client = XeroClient(credentials, token=new)
        tenants = client.get_tenants()
        if tenants:
            note_tenant(connection, tenants[0])
        fields = {"access_token": new.access_token, "access_token_expires_at": new.expires_at}
        if new.scope and not connection.scope.strip():
            # Asked for no scope, Xero grants all the connection may do: worth showing.
            fields["granted_scopes"] = new.scope
        XeroConnection.objects.filter(pk=connection.pk).update(**fields)
        connection.access_token, connection.access_token_expires_at = (
            new.access_token,
            new.expires_at,
        )

    credentials = Credentials(
        connection.client_id, connection.client_secret, connection.scope.strip()
    )
    return XeroClient(
        credentials,
        token=token,
        on_new_token=store,
        before_request=before_request,
    )


def note_tenant(connection: XeroConnection, tenant: XeroTenant) -> None:
    """Remember the Xero organisation the credentials reach, or stop if it is another one.

    A connection that never synced has nothing to protect: the first organisation is taken.
    Another one than it synced with is never followed silently (it may be a stranger's books,
    reached through a leaked credentials link): the connection goes to Error with the reason,
    and the worker raises before anything is written there.
    """
    if not tenant.tenant_id:
        return
    XeroConnection.objects.filter(pk=connection.pk, xero_tenant_id="").update(
        xero_tenant_id=tenant.tenant_id, xero_tenant_name=tenant.name[:255]
    )
    known = XeroConnection.objects.filter(pk=connection.pk).values_list(
        "xero_tenant_id", "xero_tenant_name"
    )
    known_id, known_name = known.first() or ("", "")
    if known_id.lower() == tenant.tenant_id.lower():
        if tenant.name and tenant.name != known_name:  # renamed in Xero
            XeroConnection.objects.filter(pk=connection.pk).update(
                xero_tenant_name=tenant.name[:255]
            )
        connection.xero_tenant_id, connection.xero_tenant_name = known_id, tenant.name or known_name
        return
    XeroConnection.objects.filter(pk=connection.pk).update(
        other_tenant_id=tenant.tenant_id, other_tenant_name=tenant.name[:255]
    )
    raise XeroTenantChangedError(
        wording.tenant_changed(tenant.name or tenant.tenant_id, known_name or known_id),
        code="tenant_changed",
    )


def remember_limits(connection: XeroConnection, client: XeroClient) -> None:
    limits = client.limits
    if limits.minute_remaining is None and limits.day_remaining is None:
        return
    XeroConnection.objects.filter(pk=connection.pk).update(
        min_limit_remaining=limits.minute_remaining,
        day_limit_remaining=limits.day_remaining,
        limits_seen_at=limits.seen_at or timezone.now(),
    )


def record_undecryptable(connection_id, exc: UndecryptableError) -> None:
    """A key was dropped too early: say so on the connection, where the team looks."""
    logger.error("Xero connection %s: %s", connection_id, exc)
    XeroConnection.objects.filter(pk=connection_id).update(
        state=XeroConnection.State.ERROR, error_code="undecryptable", error_message=str(exc)
    )


def record_connection_error(
    connection: XeroConnection, exc: XeroError, run: SyncRun | None = None
) -> None:
    """Credentials refused or access revoked: a person must act, so stop and say why."""
    code = exc.code or ("forbidden" if isinstance(exc, XeroForbiddenError) else "unauthorized")
    XeroConnection.objects.filter(pk=connection.pk).update(
        state=XeroConnection.State.ERROR,
        error_code=code,
        error_message=str(exc),
        access_token="",
        access_token_expires_at=None,
    )
    write_log(
        connection, Outcome.CONNECTION_ERROR, run=run, message=str(exc), http_status=exc.status_code
    )
    if run:
        finish_run(run, SyncRun.Status.FAILED, message=str(exc))


def pause_for_day_limit(connection: XeroConnection, seconds: float, run=None) -> None:
    until = timezone.now() + timedelta(seconds=seconds)
    XeroConnection.objects.filter(pk=connection.pk).update(paused_until=until)
    write_log(
        connection,
        Outcome.PAUSED,
        run=run,
        http_status=429,
        message=wording.paused_for_day_limit(until),
    )
