"""What a person asks for or decides: push now, retry failures, whether credentials are right,
how a conflict is resolved.
"""

from __future__ import annotations

from dataclasses import dataclass

from .. import conf, dispatch, wording
from ..client import Credentials, XeroClient
from ..exceptions import (
    XeroAuthError,
    XeroError,
    XeroForbiddenError,
    XeroScopeError,
    XeroServerError,
    XeroTransportError,
)
from ..models import OutboxEntry, SyncLog, XeroConnection, XeroContactLink
from .outbox import queue_funder
from .records import write_log

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
    dispatch.drain_on_commit(connection.pk)  # a person asked: now, marker or not
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


def check_credentials(client_id: str, client_secret: str, scope: str) -> CredentialCheck:
    """Ask Xero for a token and the organisation with these credentials. Changes nothing."""
    client = XeroClient(Credentials(client_id.strip(), client_secret, scope.strip()), timeout=10)
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


# --- what a person decides about the bookkeeper's changes in Xero -----------------------------


def push_profile_now(links) -> int:
    """Send Lookout's profile now, even unchanged since the last push (it overrides drift).

    Held links (archived or merged in Xero, GDPR) are not written: they need their own decision.
    """
    queued = 0
    for link in links:
        if link.is_held or link.state == XeroContactLink.State.IGNORED:
            continue
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
