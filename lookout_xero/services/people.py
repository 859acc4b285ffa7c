"""What a person asks for or decides: push now, retry failures, whether credentials are right,
how a conflict is resolved.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db import transaction

from .. import conf, dispatch, mapping, wording
from ..audit import record as record_audit
from ..client import Credentials, XeroClient
from ..exceptions import (
    XeroAuthError,
    XeroError,
    XeroForbiddenError,
    XeroScopeError,
    XeroServerError,
    XeroTransportError,
)
from ..models import (
    OutboxEntry,
    SyncLog,
    SyncRun,
    XeroConnection,
    XeroContactLink,
    XeroPendingCredentials,
)
from .corrections import held, keep_lookout_values
from .outbox import queue_funder
from .records import write_log
from .switch import start_full_sync

# --- what people ask for (admin actions, commands) --------------------------------------------


def push_now(connection: XeroConnection, funder_ids) -> int:
    """Queue these funders for pushing now (also brings back one set to "do not sync")."""
    if not connection.enabled:
        return 0
    ids = list(funder_ids)
    XeroContactLink.objects.filter(
        connection=connection, funder_id__in=ids, state=XeroContactLink.State.IGNORED
    ).update(state=XeroContactLink.State.PENDING)
    for funder_id in ids:
        queue_funder(connection.pk, funder_id)
    dispatch.edit_drain_on_commit(connection.pk)  # a person asked: now, marker or not
    return len(ids)


def retry_failed(connection: XeroConnection) -> int:
    """Queue every funder whose last push failed (conflicts wait for a person instead)."""
    ids = XeroContactLink.objects.filter(connection=connection, state=XeroContactLink.State.FAILED)
    return push_now(connection, ids.values_list("funder_id", flat=True))


@dataclass(frozen=True)
class CredentialCheck:
    ok: bool
    message: str
    tenant_name: str = ""
    # The scopes Xero's token answer granted, when the credentials were accepted.
    scopes: tuple[str, ...] = ()
    # Refused only because the connection does not allow the scope asked for.
    scope_refused: bool = False
    # The Xero organisation's id, when the credentials were accepted.
    tenant_id: str = ""


def check_credentials(client_id: str, client_secret: str, scope: str) -> CredentialCheck:
    """Ask Xero for a token and the organisation with these credentials. Changes nothing.

    A web request waits for the answer, so each call gets CHECK_TIMEOUT seconds, not the
    workers' HTTP_TIMEOUT.
    """
    client = XeroClient(
        Credentials(client_id.strip(), client_secret, scope.strip()),
        timeout=float(conf.get("CHECK_TIMEOUT")),
    )
    try:
        tenants = client.get_tenants()
    except XeroScopeError:
        return CredentialCheck(
            False, wording.CHECK_SCOPE_REFUSED.format(scope=scope.strip()), scope_refused=True
        )
    except XeroAuthError:
        return CredentialCheck(False, wording.CHECK_CREDENTIALS_REFUSED)
    except XeroForbiddenError:
        return CredentialCheck(False, wording.CHECK_FORBIDDEN)
    except XeroTransportError:
        return CredentialCheck(False, wording.CHECK_UNREACHABLE)
    except XeroServerError as exc:
        return CredentialCheck(False, wording.CHECK_XERO_DOWN.format(status=exc.status_code))
    except XeroError as exc:
        return CredentialCheck(False, wording.CHECK_UNEXPECTED.format(error=exc))
    if not tenants:
        return CredentialCheck(False, wording.CHECK_NO_ORGANISATION)
    name = tenants[0].name
    return CredentialCheck(
        True,
        wording.CHECK_CONNECTED.format(name=name),
        name,
        scopes=tuple(client.token.scope.split()) if client.token else (),
        tenant_id=tenants[0].tenant_id,
    )


def resolve_conflict(
    link: XeroContactLink, *, contact_id: str = "", create_new=False, ignore=False
) -> None:
    """A person's decision on a conflict: link to a contact, create a distinct one, or skip."""
    if ignore:
        link.state = XeroContactLink.State.IGNORED
        link.last_error = ""
        link.save()
        OutboxEntry.objects.filter(connection=link.connection, funder=link.funder).delete()
        return
    if contact_id:
        taken = XeroContactLink.objects.filter(
            connection=link.connection, xero_contact_id=contact_id
        )
        if taken.exclude(pk=link.pk).exists():
            raise ValueError("That Xero contact is already linked to another funder.")
        chosen = next(
            (c for c in link.conflict_candidates if c.get("contact_id") == contact_id), {}
        )
        link.xero_contact_id = contact_id
        link.keeps_own_number = bool(chosen.get("contact_number"))
    elif create_new:
        link.xero_contact_id = ""
        link.keeps_own_number = False
        link.name_suffix = next_name_suffix(link.name_suffix)
    else:
        raise ValueError("Say how to resolve the conflict.")
    link.matched_by = XeroContactLink.MatchedBy.PERSON
    link.merged_into = ""  # a person decided where this funder goes after a merge
    link.state = XeroContactLink.State.PENDING
    link.payload_hash = ""
    link.sent_fields = []
    link.last_error = ""
    link.conflict_candidates = []
    link.save()
    push_now(link.connection, [link.funder_id])


def next_name_suffix(current: str) -> str:
    """The suffix after `current` under CONFLICT_NAME_SUFFIX: " (2)", then " (3)"..."""
    rule = conf.get("CONFLICT_NAME_SUFFIX")
    n = 2
    while rule.format(n=n) != current and current and n < 100:
        n += 1
    return rule.format(n=n + 1 if current else 2)


# --- another Xero organisation: a person confirms or discards it --------------------------------


PENDING_SECRETS = ("client_id", "client_secret", "webhook_key")


def waiting_for_a_person(connection: XeroConnection) -> dict | None:
    """What the connection page asks a person to confirm, or None."""
    # The page shows no credential: none is loaded, so a lost key cannot close the page.
    pending = (
        XeroPendingCredentials.objects.filter(connection=connection).defer(*PENDING_SECRETS).first()
    )
    if pending is not None:
        return {
            "kind": "link",
            "new_name": pending.xero_tenant_name or pending.xero_tenant_id,
            "new_id": pending.xero_tenant_id,
            "old_name": connection.xero_tenant_name or connection.xero_tenant_id,
            "same_tenant": pending.xero_tenant_id.lower() == connection.xero_tenant_id.lower(),
            "received_at": pending.received_at,
            "scopes": pending.granted_scopes.split(),
        }
    if connection.other_tenant_id:
        return {
            "kind": "worker",
            "new_name": connection.other_tenant_name or connection.other_tenant_id,
            "new_id": connection.other_tenant_id,
            "old_name": connection.xero_tenant_name or connection.xero_tenant_id,
            "same_tenant": False,
        }
    return None


def use_new_tenant(connection_pk, *, tenant_id: str, user=None) -> bool:
    """A person confirms: the connection follows the new Xero organisation (and takes the
    link's credentials, when those are what waited). False if nothing (or something else)
    is waiting any more, e.g. a newer submission arrived since the page was shown.

    Links to the old organisation's contacts mean nothing there: they are forgotten, and an
    enabled connection syncs everyone afresh (a full sync links what is already there).
    """
    with transaction.atomic():
        connection = XeroConnection.objects.select_for_update().filter(pk=connection_pk).first()
        if connection is None:
            return False
        pending = XeroPendingCredentials.objects.filter(connection=connection).first()
        if pending is not None and pending.xero_tenant_id == tenant_id:
            new_id, new_name = pending.xero_tenant_id, pending.xero_tenant_name
        elif pending is None and tenant_id and connection.other_tenant_id == tenant_id:
            new_id, new_name = connection.other_tenant_id, connection.other_tenant_name
        else:
            return False
        old_name = connection.xero_tenant_name or connection.xero_tenant_id
        if new_id.lower() != connection.xero_tenant_id.lower():
            _forget_links(connection)
        _follow_tenant(connection, new_id, new_name)
        if pending is not None:
            _take_pending(connection, pending)
        if connection.enabled and not connection.runs.full_syncs().active().exists():
            start_full_sync(connection, trigger=SyncRun.Trigger.MANUAL)
        record_audit(
            user,
            connection,
            f"Confirmed the Xero organisation “{new_name or new_id}” in place of “{old_name}”.",
        )
    return True


def _follow_tenant(connection: XeroConnection, tenant_id: str, name: str) -> None:
    """The new organisation is now the one the connection syncs with; the stop it caused ends."""
    changes = {
        "xero_tenant_id": tenant_id,
        "xero_tenant_name": name,
        "other_tenant_id": "",
        "other_tenant_name": "",
    }
    if connection.error_code == "tenant_changed":
        changes.update(state=XeroConnection.State.OK, error_code="", error_message="")
    XeroConnection.objects.filter(pk=connection.pk).update(**changes)
    connection.xero_tenant_id, connection.xero_tenant_name = tenant_id, name


def _take_pending(connection: XeroConnection, pending: XeroPendingCredentials) -> None:
    """The link's credentials become the connection's: only the credential fields are saved
    (the Enabled switch stays as the team left it), and `connection_changed` is sent."""
    connection.client_id, connection.client_secret = pending.client_id, pending.client_secret
    connection.scope = pending.scope
    fields = ["client_id", "client_secret", "scope"]
    if pending.webhook_key:
        connection.webhook_key = pending.webhook_key
        fields.append("webhook_key")
    connection.save(update_fields=fields)
    XeroConnection.objects.filter(pk=connection.pk).update(
        credentials_received_at=pending.received_at, granted_scopes=pending.granted_scopes
    )
    pending.delete()


def discard_new_tenant(connection_pk, *, tenant_id: str, user=None) -> bool:
    """A person refuses: credentials waiting from a link are dropped; a worker's finding is
    dismissed (the connection stays in Error until its credentials are put right)."""
    with transaction.atomic():
        connection = XeroConnection.objects.select_for_update().filter(pk=connection_pk).first()
        if connection is None:
            return False
        pending = (
            XeroPendingCredentials.objects.filter(connection=connection)
            .defer(*PENDING_SECRETS)
            .first()
        )
        if pending is not None and pending.xero_tenant_id == tenant_id:
            name = pending.xero_tenant_name or tenant_id
            pending.delete()
        elif pending is None and connection.other_tenant_id == tenant_id and tenant_id:
            name = connection.other_tenant_name or tenant_id
            XeroConnection.objects.filter(pk=connection.pk).update(
                other_tenant_id="", other_tenant_name=""
            )
        else:
            return False
        record_audit(user, connection, f"Discarded the Xero organisation “{name}”.")
    return True


def _forget_links(connection: XeroConnection) -> None:
    """The old organisation's contacts mean nothing in the new one: every link starts over,
    except that a funder a person chose not to sync stays not synced."""
    links = XeroContactLink.objects.filter(connection=connection)
    links.update(
        xero_contact_id="",
        xero_contact_status="",
        matched_by="",
        payload_hash="",
        sent_fields=[],
        last_sent={},
        last_error="",
        conflict_candidates=[],
        keeps_own_number=False,
        name_suffix="",
        archived_by="",
        merged_into="",
        drift={},
        drift_seen_at=None,
        decision_since=None,
    )
    links.exclude(state=XeroContactLink.State.IGNORED).update(state=XeroContactLink.State.PENDING)
    write_log(
        connection,
        SyncLog.Outcome.RUN,
        message="A person confirmed another Xero organisation: links to the previous "
        "organisation's contacts were reset.",
    )


# --- what a person decides about the bookkeeper's changes in Xero -----------------------------


def push_profile_now(links, *, user=None) -> int:
    """Send Lookout's profile now, even unchanged since the last push (it overrides drift: a
    field waiting for a decision is decided for Lookout, `keep_lookout_values`).

    Held links (archived or merged in Xero, GDPR) are not written: they need their own decision.
    """
    queued = 0
    for link in links:
        if link.is_held or link.state == XeroContactLink.State.IGNORED:
            continue
        if link.decision_since is not None:
            waiting = {mapping.field_of(path) for path in held(link)}
            keep_lookout_values(link, sorted(waiting), user=user)
        XeroContactLink.objects.filter(pk=link.pk).update(payload_hash="")
        queued += push_now(link.connection, [link.funder_id])
    return queued


def restore_in_xero(link: XeroContactLink) -> bool:
    """A person asks Lookout to restore a contact archived in Xero by someone else."""
    if link.state != XeroContactLink.State.ARCHIVED_IN_XERO:
        return False
    # As if Lookout had archived it: the drain restores what Lookout archived (drain._restores).
    link.archived_by = XeroContactLink.ArchivedBy.LOOKOUT
    link.state = XeroContactLink.State.PENDING
    link.payload_hash, link.last_error = "", ""
    link.save()
    write_log(
        link.connection,
        SyncLog.Outcome.RESTORED,
        funder=link.funder,
        contact_id=link.xero_contact_id,
        message=wording.RESTORE_ASKED,
    )
    push_now(link.connection, [link.funder_id])
    return True


def stop_syncing_funder(link: XeroContactLink) -> None:
    """A person's decision: this funder is not synced any more (its contact is left alone)."""
    link.state = XeroContactLink.State.IGNORED
    link.last_error = ""
    link.save()
    OutboxEntry.objects.filter(connection=link.connection, funder=link.funder).delete()
