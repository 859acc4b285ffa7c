"""Shared by the sync's parts: scope, the client for a connection, errors, runs and the log."""

from __future__ import annotations

import logging
from datetime import timedelta

from django.db.models import F
from django.utils import timezone

from .. import conf, mapping, wording
from ..client import Credentials, Token, XeroClient, XeroTenant
from ..exceptions import XeroError, XeroForbiddenError, XeroTenantChangedError
from ..fields import UndecryptableError
from ..models import OutboxEntry, SyncLog, SyncRun, XeroConnection

logger = logging.getLogger(__name__)

Outcome = SyncLog.Outcome


class StopDrain(Exception):
    """End this drain now; the connection's state says why (error, pause)."""


class RetryLater(Exception):
    """The work should run again after `seconds` (rate limit or a passing outage)."""

    def __init__(self, seconds: float) -> None:
        super().__init__(f"retry in {seconds:.0f}s")
        self.seconds = seconds


# --- scope: which funders belong in Xero ------------------------------------------------------


def is_membership(funder) -> bool:
    return getattr(funder, conf.get("MEMBERSHIP_FIELD")) == conf.get("MEMBERSHIP_VALUE")


def is_archived(funder) -> bool:
    return bool(getattr(funder, conf.get("ARCHIVED_FIELD")))


def organisation_id_of(funder):
    return getattr(funder, conf.get("ORGANISATION_FIELD") + "_id")


def funders_of(connection: XeroConnection):
    return conf.funder_model().objects.filter(
        **{conf.get("ORGANISATION_FIELD") + "_id": connection.organisation_id}
    )


def in_scope_funders(connection: XeroConnection):
    """Unarchived membership funders of the connection's organisation, and no one else's."""
    return funders_of(connection).filter(
        **{
            conf.get("MEMBERSHIP_FIELD"): conf.get("MEMBERSHIP_VALUE"),
            conf.get("ARCHIVED_FIELD"): False,
        }
    )


# --- Xero client for a connection -------------------------------------------------------------


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


# --- runs and logs ----------------------------------------------------------------------------


def complete_run_if_done(run_id: int) -> None:
    if OutboxEntry.objects.filter(run_id=run_id).exists():
        return
    run = SyncRun.objects.filter(
        pk=run_id, status=SyncRun.Status.RUNNING, planned_at__isnull=False
    ).first()
    if run:
        # Funders deleted while the run went on left its scope with no outcome to count.
        outcomes = [F(name) for name in SyncRun.OUTCOME_COUNTERS]
        SyncRun.objects.filter(pk=run_id).update(in_scope=sum(outcomes[1:], outcomes[0]))
        finish_run(run, SyncRun.Status.COMPLETED)


def finish_run(run: SyncRun, status: str, message: str = "") -> None:
    now = timezone.now()
    SyncRun.objects.filter(pk=run.pk).update(status=status, finished_at=now, message=message)
    if status == SyncRun.Status.COMPLETED:
        XeroConnection.objects.filter(pk=run.connection_id).update(last_synced_at=now)
    kind = "Preview" if run.dry_run else "Full sync"
    write_log(run.connection, Outcome.RUN, run=run, message=f"{kind} {status}. {message}".strip())


def write_log(connection, outcome, **fields) -> None:
    """Sync log rows are written on their own, so they survive a rollback of the work."""
    log_row(connection, outcome, **fields).save()


def log_row(
    connection,
    outcome,
    *,
    run=None,
    funder=None,
    contact_id="",
    http_status=None,
    message="",
    warnings=None,
) -> SyncLog:
    name, email = mapping.log_identity(conf.mapping_function(), funder) if funder else ("", "")
    return SyncLog(
        connection_id=connection.pk,
        run_id=run.pk if isinstance(run, SyncRun) else run,
        funder=funder,
        funder_name=name[:300],
        funder_email=email[:300],
        xero_contact_id=contact_id or "",
        outcome=outcome,
        http_status=http_status,
        message=message,
        warnings=warnings or [],
    )
