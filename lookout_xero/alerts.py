"""E-mail the Lookout team once when a connection starts needing a person, and once when it stops.

What "needs a person" means is `status.attention_conditions`, shared with `xero_status` and the
admin's filter. Each stretch of one kind of trouble is an *episode* (`XeroAlert`): the database
allows one open episode per connection and kind, and each e-mail is claimed by a conditional
UPDATE before it is sent, so several workers checking at once still send it once.

Messages are built from the connection's state words and Xero's own error text, which the client
keeps free of tokens and secrets; credentials are not even loaded for them. (`keys.record_lost_keys`
tries the stored bytes with FERNET_KEYS and keeps only whether a key opens them.)
"""

from __future__ import annotations

import logging
from datetime import datetime

from django.conf import settings
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.urls import NoReverseMatch, reverse
from django.utils import formats, timezone

from . import conf, keys, status, wording
from .models import XeroAlert, XeroConnection, XeroContactLink

logger = logging.getLogger(__name__)

# Never loaded (so never decrypted) by the alert check or `xero_status`: every encrypted field,
# or a key FERNET_KEYS lacks for one connection would stop the check for every organisation.
SECRET_FIELDS = ("client_id", "client_secret", "webhook_key", "access_token")
EXAMPLES = 3  # funders named in a conflicts or failures e-mail


def check_alerts(now: datetime | None = None) -> dict[str, int]:
    """Open and close episodes to match the connections' state now; send what is due."""
    now = now or timezone.now()
    # A lost key is found here, not only when a worker next needs it: an idle organisation's
    # connection would otherwise look healthy until its first change, days later.
    keys.record_lost_keys()
    opened, resolved = _update_episodes(now)
    recipients = conf.alert_recipients()
    sent = _deliver(now, recipients) if recipients else 0
    return {"opened": opened, "resolved": resolved, "sent": sent}


def _update_episodes(now: datetime) -> tuple[int, int]:
    open_alerts = {
        (alert.connection_id, alert.kind): alert
        for alert in XeroAlert.objects.filter(resolved_at__isnull=True)
    }
    watched = Q(pk__in={connection_id for connection_id, _ in open_alerts})
    connections = status.with_attention(
        XeroConnection.objects.filter(watched | status.needs_attention_q(now))
        .select_related("organisation")
        .defer(*SECRET_FIELDS),
        now,
    )
    opened = resolved = 0
    for connection in connections:
        for kind in status.ATTENTION_KINDS:
            active = getattr(connection, f"lx_attention_{kind}")
            alert = open_alerts.get((connection.pk, kind))
            if active and alert is None:
                opened += _open(connection, kind, now)
            elif alert is not None and not active:
                resolved += XeroAlert.objects.filter(pk=alert.pk, resolved_at__isnull=True).update(
                    resolved_at=now
                )
    return opened, resolved


def _open(connection: XeroConnection, kind: str, now: datetime) -> int:
    try:
        with transaction.atomic():
            XeroAlert.objects.create(
                connection=connection, kind=kind, opened_at=now, detail=describe(connection, kind)
            )
    except IntegrityError:
        return 0  # another worker opened this episode a moment ago
    return 1


def _deliver(now: datetime, recipients: list[str]) -> int:
    alerts = XeroAlert.objects.select_related("connection__organisation").defer(
        *(f"connection__{field}" for field in SECRET_FIELDS)
    )
    sent = 0
    for alert in alerts.filter(notified_at__isnull=True, resolved_at__isnull=True):
        sent += _send_once(alert, "notified_at", opened_message(alert), now, recipients)
    # A resolution is news only to someone who was told of the episode.
    for alert in alerts.filter(
        notified_at__isnull=False, resolved_at__isnull=False, resolved_notified_at__isnull=True
    ):
        sent += _send_once(alert, "resolved_notified_at", resolved_message(alert), now, recipients)
    return sent


def _send_once(
    alert: XeroAlert, field: str, message: tuple[str, str], now: datetime, recipients: list[str]
) -> int:
    """Claim this e-mail, send it, and give the claim back if sending failed (retried later)."""
    claimed = XeroAlert.objects.filter(pk=alert.pk, **{f"{field}__isnull": True}).update(
        **{field: now}
    )
    if not claimed:
        return 0  # another worker is sending it
    subject, body = message
    try:
        send_mail(one_line(subject), body, settings.DEFAULT_FROM_EMAIL, recipients)
    except Exception:
        logger.exception("Could not send the alert %r; the next check tries again", subject)
        XeroAlert.objects.filter(pk=alert.pk).update(**{field: None})
        return 0
    return 1


# --- the words ------------------------------------------------------------------------------


def describe(connection: XeroConnection, kind: str) -> str:
    """What is wrong, for the e-mail, stored on the episode when it opens."""
    if kind == XeroAlert.Kind.ERROR:
        reason = wording.CONNECTION_ERROR_REASONS.get(connection.error_code, "")
        said = f"Xero said: {connection.error_message}" if connection.error_message else ""
        if connection.error_code == "undecryptable":
            said = connection.error_message  # ours, naming the fields; Xero was not asked
        return "\n".join(part for part in (reason, said) if part) or "Xero refused the connection."
    if kind == XeroAlert.Kind.PAUSED:
        return (
            "Xero's daily call limit for this organisation is used up (the customer's other apps "
            f"share it). Syncing is paused until {_stamp(connection.paused_until)} and resumes "
            "by itself then; changes made meanwhile wait and are not lost."
        )
    if kind == XeroAlert.Kind.DECISIONS:
        return _decisions(connection)
    state = (
        XeroContactLink.State.CONFLICT
        if kind == XeroAlert.Kind.CONFLICTS
        else XeroContactLink.State.FAILED
    )
    links = XeroContactLink.objects.filter(connection=connection, state=state)
    count = links.count()
    oldest = links.order_by("updated_at").select_related("funder")[:EXAMPLES]
    what = (
        f"{count} funder(s) wait as conflicts: each could be more than one Xero contact, or its "
        "name is taken, and Lookout does not guess. Resolve them in the conflicts queue."
        if kind == XeroAlert.Kind.CONFLICTS
        else f"{count} funder(s) failed to sync and are not retried by themselves. Fix what "
        "Xero refused, then use Retry failed."
    )
    examples = [f"- {link.funder}: {link.last_error or 'no message'}" for link in oldest]
    if oldest:
        examples.insert(0, f"Waiting longest (since {_stamp(oldest[0].updated_at)}):")
    return "\n".join([what, *examples])


def _decisions(connection: XeroConnection) -> str:
    links = XeroContactLink.objects.filter(connection=connection, decision_since__isnull=False)
    count = links.count()
    oldest = links.order_by("decision_since").select_related("funder")[:EXAMPLES]
    what = (
        f"{count} funder(s) have changes made in Xero waiting for a decision: Take Xero's value "
        "or Keep Lookout's, on each funder's page (or the Xero contact links' action). Nothing "
        "is written to those fields until then."
    )
    examples = [
        f"- {link.funder}: {', '.join(path for path, v in link.drift.items() if v.get('waiting'))}"
        for link in oldest
    ]
    if oldest:
        examples.insert(0, f"Waiting longest (since {_stamp(oldest[0].decision_since)}):")
    return "\n".join([what, *examples])


def opened_message(alert: XeroAlert) -> tuple[str, str]:
    connection = alert.connection
    organisation = str(connection.organisation)
    subject = f"Xero sync needs attention: {organisation}: {alert.get_kind_display()}"
    body = [
        f"The Xero sync of {organisation} needs a person. {alert.get_kind_display()}:",
        "",
        alert.detail,
        "",
        f"Since: {_stamp(alert.opened_at)}",
        f"Connection page: {connection_url(connection)}",
        "",
        "You will get one more e-mail when this is over, and none in between.",
    ]
    return subject, "\n".join(body)


def resolved_message(alert: XeroAlert) -> tuple[str, str]:
    connection = alert.connection
    organisation = str(connection.organisation)
    now = status.health(connection)
    subject = f"Resolved: Xero sync of {organisation}: {alert.get_kind_display()}"
    body = [
        f"The Xero sync of {organisation} no longer needs a person for this: "
        f"{alert.get_kind_display()}.",
        "",
        f"From {_stamp(alert.opened_at)} to {_stamp(alert.resolved_at)}. It was:",
        alert.detail,
        "",
        f"The connection now: {now.label}." + (f" {now.reason}" if now.reason else ""),
        f"Connection page: {connection_url(connection)}",
    ]
    return subject, "\n".join(body)


def one_line(subject: str) -> str:
    """A subject fit for a header: an organisation's name may hold a newline or a tab, and
    Django refuses such a header (BadHeaderError), which would hold the alert back for good."""
    return " ".join(subject.split())


def connection_url(connection: XeroConnection) -> str:
    """The connection's admin page, absolute when SITE_URL is set."""
    try:
        path = reverse("admin:lookout_xero_xeroconnection_change", args=[connection.pk])
    except NoReverseMatch:
        return f"(no admin page is installed; connection #{connection.pk})"
    return conf.get("SITE_URL").rstrip("/") + path


def _stamp(value: datetime | None) -> str:
    if value is None:
        return "unknown"
    return formats.date_format(timezone.localtime(value), "j M Y, H:i T")
