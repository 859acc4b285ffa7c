"""Per-organisation Xero connection, funder ↔ contact links, the outbox, runs and the sync log."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q
from django.urls import NoReverseMatch, reverse
from django.utils import timezone

from .fields import EncryptedCharField, EncryptedTextField
from .signals import connection_changed

CREDENTIAL_FIELDS = ("client_id", "client_secret", "scope")


def new_webhook_id() -> str:
    """The opaque part of a connection's webhook URL: unguessable, so the URL names no one."""
    return secrets.token_urlsafe(24)


@dataclass(frozen=True)
class ConnectionChange:
    """What one save of a connection changed: the receivers of `connection_changed` act on it."""

    created: bool = False
    switched_on: bool = False  # enabled now, and was not (or is new and enabled)
    switched_off: bool = False
    credentials: bool = False  # Client ID, secret or scope of an existing connection changed
    client_id: bool = False  # another Client ID: probably another Xero organisation
    secret: bool = False  # a secret was set (first time or replaced)
    webhook_key: bool = False  # another webhook key: not verified until Xero signs with it

    @classmethod
    def between(cls, previous, current, fields) -> ConnectionChange:
        """Compare the saved row with the instance, over the fields this save writes."""
        if previous is None:
            return cls(created=True, switched_on=current.enabled, secret=True)

        def changed(name: str) -> bool:
            return name in fields and getattr(previous, name) != getattr(current, name)

        return cls(
            switched_on="enabled" in fields and current.enabled and not previous.enabled,
            switched_off="enabled" in fields and previous.enabled and not current.enabled,
            credentials=any(changed(name) for name in CREDENTIAL_FIELDS),
            client_id=changed("client_id"),
            secret=changed("client_secret"),
            webhook_key=changed("webhook_key"),
        )


class XeroConnectionQuerySet(models.QuerySet):
    def usable(self):
        """Enabled, not refused by Xero and not paused: Xero may be called for these."""
        return self.filter(enabled=True, state=XeroConnection.State.OK).filter(
            Q(paused_until__isnull=True) | Q(paused_until__lte=timezone.now())
        )


class SyncRunQuerySet(models.QuerySet):
    def active(self):
        """Waiting for a worker or running."""
        return self.filter(status__in=SyncRun.ACTIVE_STATUSES)

    def full_syncs(self):
        return self.filter(dry_run=False)


class SyncLogQuerySet(models.QuerySet):
    def older_than(self, days: float):
        return self.filter(created_at__lt=timezone.now() - timedelta(days=days))


class XeroConnection(models.Model):
    """One organisation's Xero custom connection: encrypted credentials, the switch, its health."""

    class State(models.TextChoices):
        OK = "ok", "OK"
        ERROR = "error", "Needs attention"

    organisation = models.OneToOneField(
        settings.LOOKOUT_XERO_ORGANISATION_MODEL,
        on_delete=models.CASCADE,
        related_name="xero_connection",
    )
    client_id = EncryptedCharField("Client ID", max_length=255)
    client_secret = EncryptedCharField("Client Secret", max_length=255)
    client_secret_set_at = models.DateTimeField(null=True, blank=True, editable=False)
    scope = models.CharField(
        max_length=500,
        blank=True,
        default="accounting.contacts",
        help_text="Space-separated. Leave empty to request no scope, as custom connections "
        "created since April 2026 require.",
    )
    enabled = models.BooleanField(
        default=False,
        help_text="Enabling syncs every unarchived membership funder to Xero, then keeps each "
        "change in step. Disabling stops all calls to Xero for this organisation at once.",
    )
    # The key Xero signs this connection's webhook events with; write-only, like the secret.
    webhook_key = EncryptedCharField("Webhook key", max_length=255, blank=True, default="")
    # Where Xero posts this connection's events (`webhook_path`); stable, never shown as a pk.
    webhook_id = models.CharField(
        max_length=64, unique=True, default=new_webhook_id, editable=False
    )
    last_webhook_at = models.DateTimeField(null=True, blank=True, editable=False)
    # Which side wins, per Contact field the mapping sends: {"EmailAddress": "xero", ...}.
    # A field not named is Lookout's (`corrections.LOOKOUT`). Set by people with the change
    # permission (the connection page, `xero_directions`), never by the connection's form.
    directions = models.JSONField(default=dict, blank=True, editable=False)
    # The periodic read of contacts changed in Xero (for a connection without a working
    # webhook) asks for those changed since this moment: its last complete read's start.
    changes_read_at = models.DateTimeField(null=True, blank=True, editable=False)
    # Space-separated scopes Xero said this connection can use, when last asked without
    # narrowing them (a check, or a token fetched with no scope): least privilege at a glance.
    granted_scopes = models.CharField(max_length=1000, blank=True, editable=False)
    credentials_received_at = models.DateTimeField(null=True, blank=True, editable=False)

    state = models.CharField(max_length=10, choices=State, default=State.OK, editable=False)
    error_code = models.CharField(max_length=40, blank=True, editable=False)
    error_message = models.TextField(blank=True, editable=False)
    paused_until = models.DateTimeField(null=True, blank=True, editable=False)
    xero_tenant_id = models.CharField(max_length=36, blank=True, editable=False)
    xero_tenant_name = models.CharField(max_length=255, blank=True, editable=False)
    # The Xero organisation a worker found the credentials reaching when it is not the one
    # above: nothing is written there until a person confirms (`credentials.use_new_tenant`).
    other_tenant_id = models.CharField(max_length=36, blank=True, editable=False)
    other_tenant_name = models.CharField(max_length=255, blank=True, editable=False)

    # The token is shared by every worker on every machine, so it lives here, encrypted.
    access_token = EncryptedTextField(blank=True, default="", editable=False)
    access_token_expires_at = models.DateTimeField(null=True, blank=True, editable=False)

    # At most one drain per organisation across all workers: a lease taken with one UPDATE,
    # renewed by its holder before every batch and every call to Xero (services.lease).
    lease_token = models.CharField(max_length=64, blank=True, editable=False)
    lease_expires_at = models.DateTimeField(null=True, blank=True, editable=False)
    # A drain was asked for and has not finished yet: further saves need not publish another.
    drain_requested = models.BooleanField(default=False, editable=False)

    min_limit_remaining = models.IntegerField(null=True, blank=True, editable=False)
    day_limit_remaining = models.IntegerField(null=True, blank=True, editable=False)
    limits_seen_at = models.DateTimeField(null=True, blank=True, editable=False)
    last_synced_at = models.DateTimeField(null=True, blank=True, editable=False)

    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = XeroConnectionQuerySet.as_manager()

    class Meta:
        verbose_name = "Xero connection"
        permissions = [
            ("manage_xero_credentials", "Can see and change Xero credentials and the switch"),
        ]

    def __str__(self) -> str:
        return f"Xero connection for {self.organisation}"

    # What a person edits. Everything else is the sync's, written with targeted UPDATEs: code
    # that holds an instance for a while (a form, a check that calls Xero) saves with
    # ``update_fields`` so as not to write back a lease, a pause or a token read long ago.
    EDITABLE_FIELDS = (
        "organisation",
        "client_id",
        "client_secret",
        "scope",
        "enabled",
        "webhook_key",
    )

    def save(self, *args, **kwargs) -> None:
        """Save, then send `connection_changed` with what changed.

        Saves what it is told to: every field, or ``update_fields`` (and the fields a change
        of credentials resets with them). The Enabled switch itself (a full sync on enable,
        stopping on disable) is not here: the receivers connected in `AppConfig.ready()` run
        it, whoever saved (admin, ORM, command).
        """
        previous = None
        if self.pk and not self._state.adding:
            previous = (
                type(self)._base_manager.filter(pk=self.pk).only(*self.EDITABLE_FIELDS).first()
            )
        if previous is not None and previous.organisation_id != self.organisation_id:
            raise ValueError(self._refuse_move(previous))
        fields = kwargs.get("update_fields")
        change = ConnectionChange.between(
            previous, self, set(self.EDITABLE_FIELDS) if fields is None else set(fields)
        )
        touched = self._reset_for(change)
        if previous is not None and fields is not None:
            kwargs["update_fields"] = {*fields, "updated_at", *touched}
        super().save(*args, **kwargs)
        connection_changed.send(sender=type(self), connection=self, change=change)

    def clean(self) -> None:
        super().clean()
        moved = self._moved_from()
        if moved is not None:
            raise ValidationError({"organisation": self._refuse_move(moved)})

    def _moved_from(self) -> XeroConnection | None:
        """The saved connection, if this one now names another organisation."""
        if not self.pk or self._state.adding:
            return None
        saved = type(self)._base_manager.filter(pk=self.pk).only("organisation").first()
        return saved if saved and saved.organisation_id != self.organisation_id else None

    @staticmethod
    def _refuse_move(previous: XeroConnection) -> str:
        # Its links, outbox and runs are the first organisation's funders, and Xero's
        # contacts are the customer's: carried over, they would sync the wrong people.
        return (
            f"{previous} cannot move to another organisation: delete it, then create a "
            "connection for the other organisation (its full sync starts when enabled)."
        )

    def _reset_for(self, change: ConnectionChange) -> set[str]:
        """New credentials void the cached token and the verdict on the old ones."""
        touched: set[str] = set()
        if change.webhook_key:
            # Until Xero signs a delivery with the new key, its changes are read, not told.
            self.last_webhook_at = None
            touched.add("last_webhook_at")
        if change.secret:
            self.client_secret_set_at = timezone.now()
            touched.add("client_secret_set_at")
        if change.credentials:
            self.access_token, self.access_token_expires_at = "", None
            self.state, self.error_code, self.error_message = self.State.OK, "", ""
            # What a worker found the old credentials reaching: the new ones are checked afresh.
            self.other_tenant_id, self.other_tenant_name = "", ""
            touched |= {"access_token", "access_token_expires_at", "state"}
            touched |= {"error_code", "error_message", "other_tenant_id", "other_tenant_name"}
        return touched

    @property
    def is_paused(self) -> bool:
        return bool(self.paused_until and self.paused_until > timezone.now())

    @property
    def webhook_path(self) -> str:
        """The absolute path on this site where Xero posts this connection's webhook events."""
        try:
            return reverse("lookout_xero:webhook", args=[self.webhook_id])
        except NoReverseMatch:  # the host has not mounted lookout_xero.urls
            return ""

    @property
    def extra_scopes(self) -> list[str]:
        """Granted scopes beyond the one the sync needs (``accounting.contacts``)."""
        return [s for s in self.granted_scopes.split() if s != "accounting.contacts"]


class SyncRun(models.Model):
    """A full sync (on enable, or asked for), with live counts the admin can show."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        RUNNING = "running", "Running"
        COMPLETED = "completed", "Completed"
        CANCELLED = "cancelled", "Cancelled"
        FAILED = "failed", "Failed"

    class Trigger(models.TextChoices):
        ENABLED = "enabled", "Enabled"
        MANUAL = "manual", "Asked for"

    ACTIVE_STATUSES = (Status.PENDING, Status.RUNNING)

    connection = models.ForeignKey(XeroConnection, on_delete=models.CASCADE, related_name="runs")
    trigger = models.CharField(max_length=10, choices=Trigger, default=Trigger.ENABLED)
    # A preview reads Xero and reports what a full sync would do, writing nothing to Xero.
    dry_run = models.BooleanField(default=False)
    report = models.JSONField(default=dict, blank=True)
    status = models.CharField(max_length=10, choices=Status, default=Status.PENDING)
    message = models.TextField(blank=True)
    in_scope = models.PositiveIntegerField(default=0)
    created = models.PositiveIntegerField(default=0)
    linked = models.PositiveIntegerField(default=0)
    updated = models.PositiveIntegerField(default=0)
    unchanged = models.PositiveIntegerField(default=0)
    conflicts = models.PositiveIntegerField(default=0)
    failed = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    started_at = models.DateTimeField(null=True, blank=True)
    # Renewed while a worker plans the run: a stale one means the planner died.
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    # Set when every in-scope funder has been queued: only then can the run complete.
    planned_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    objects = SyncRunQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["connection", "status"], name="lx_run_conn_status")]

    def __str__(self) -> str:
        kind = "Preview" if self.dry_run else "Full sync"
        return f"{kind} #{self.pk} ({self.get_status_display()})"

    # Each in-scope funder ends the run counted in exactly one of these.
    OUTCOME_COUNTERS = ("created", "linked", "updated", "unchanged", "conflicts", "failed")

    @property
    def done(self) -> int:
        """Funders with a final outcome in this run."""
        return sum(getattr(self, name) for name in self.OUTCOME_COUNTERS)


class XeroContactLink(models.Model):
    """Which Xero contact a funder is, on one connection, and how its last push went."""

    class State(models.TextChoices):
        PENDING = "pending", "Not yet in Xero"
        SYNCED = "synced", "Synced"
        CONFLICT = "conflict", "Conflict"
        FAILED = "failed", "Failed"
        IGNORED = "ignored", "Not synced (by choice)"
        # The bookkeeper's decisions in Xero: nothing is written until a person decides.
        ARCHIVED_IN_XERO = "xarchived", "Archived in Xero"
        GDPR_REQUEST = "gdpr", "GDPR request in Xero"

    class MatchedBy(models.TextChoices):
        CREATED = "created", "Created by Lookout"
        CONTACT_NUMBER = "contact_number", "Contact number"
        EMAIL = "email", "E-mail"
        NAME = "name", "Name"
        PERSON = "person", "Chosen by a person"
        MERGE = "merge", "Followed a merge in Xero"

    class ArchivedBy(models.TextChoices):
        LOOKOUT = "lookout", "Lookout"
        XERO = "xero", "Someone in Xero"

    # States in which nothing is written to the link's contact, and no other is made or found.
    HELD_STATES = (State.ARCHIVED_IN_XERO, State.GDPR_REQUEST)

    connection = models.ForeignKey(XeroConnection, on_delete=models.CASCADE, related_name="links")
    funder = models.ForeignKey(
        settings.LOOKOUT_XERO_FUNDER_MODEL, on_delete=models.CASCADE, related_name="xero_links"
    )
    xero_contact_id = models.CharField("Xero ContactID", max_length=36, blank=True)
    xero_contact_status = models.CharField(max_length=12, blank=True)
    matched_by = models.CharField(max_length=16, choices=MatchedBy, blank=True)
    state = models.CharField(max_length=10, choices=State, default=State.PENDING)
    payload_hash = models.CharField(max_length=64, blank=True)
    # Fields Lookout has ever given a value: on a contact found in Xero, only these are cleared.
    sent_fields = models.JSONField(default=list, blank=True)
    last_error = models.TextField(blank=True)
    conflict_candidates = models.JSONField(default=list, blank=True)
    # The contact had its own ContactNumber (another system's) when linked: leave it alone.
    keeps_own_number = models.BooleanField(default=False)
    # Set when a person resolves a name clash by creating a distinct contact, e.g. " (2)".
    name_suffix = models.CharField(max_length=20, blank=True)
    # Who archived the contact. Lookout restores only what Lookout archived (or a person asks).
    archived_by = models.CharField(max_length=10, choices=ArchivedBy, blank=True)
    # Set when the contact was merged in Xero into one already linked to another funder: the
    # link is a conflict and its (merged) contact is never written again.
    merged_into = models.CharField(max_length=36, blank=True)
    # The profile as Lookout last sent it, flattened ("Phones.MOBILE.PhoneNumber": "…").
    last_sent = models.JSONField(default=dict, blank=True)
    # Fields whose value in Xero differs from `last_sent`: {path: {"lookout": …, "xero": …}}.
    drift = models.JSONField(default=dict, blank=True)
    drift_seen_at = models.DateTimeField(null=True, blank=True)
    # Since when a field changed in Xero waits for a person (its direction is "ask", or Xero's
    # value was refused by the funder): nothing is written to that field meanwhile.
    decision_since = models.DateTimeField(null=True, blank=True)
    last_synced_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "Xero contact link"
        constraints = [
            models.UniqueConstraint(fields=["connection", "funder"], name="lx_link_one_per_funder"),
            models.UniqueConstraint(
                fields=["connection", "xero_contact_id"],
                condition=~Q(xero_contact_id=""),
                name="lx_link_one_funder_per_contact",
            ),
        ]
        indexes = [
            models.Index(fields=["connection", "state"], name="lx_link_conn_state"),
            # Funders waiting for a decision on a change in Xero: counts and the alert's check.
            models.Index(fields=["connection", "decision_since"], name="lx_link_conn_decision"),
        ]

    def __str__(self) -> str:
        return f"{self.funder} → {self.xero_contact_id or 'not in Xero'}"

    @property
    def is_held(self) -> bool:
        """Nothing may be written to this link's contact, or made in its place."""
        return self.state in self.HELD_STATES or bool(self.merged_into)


class XeroWebhookEvent(models.Model):
    """A CONTACT event Xero sent, stored as it arrived and processed by a worker.

    Written in autocommit outside any request transaction, before the 200 goes back, so an
    event Xero was told we have is never lost to a rollback; deleted once processed.
    """

    connection = models.ForeignKey(
        XeroConnection, on_delete=models.CASCADE, related_name="webhook_events"
    )
    xero_contact_id = models.CharField("Xero ContactID", max_length=36)
    event_type = models.CharField(max_length=20, blank=True)
    event_date = models.CharField(max_length=40, blank=True)
    received_at = models.DateTimeField(default=timezone.now)
    # Failed reads of this event's contact (outages): backoff and MAX_ATTEMPTS as for pushes.
    attempts = models.PositiveSmallIntegerField(default=0)

    class Meta:
        verbose_name = "Xero webhook event"
        indexes = [models.Index(fields=["connection", "id"], name="lx_event_conn_id")]

    def __str__(self) -> str:
        return f"{self.event_type} of {self.xero_contact_id}"


class OutboxEntry(models.Model):
    """A funder whose profile must be pushed: one row per (connection, funder), upserted.

    Written by post_save (in the save's transaction, if it has one), by a full sync and by the
    reconcile, so a change committed while the broker or the worker is down is still found by
    the sweep.
    """

    # Every funder save that queues writes a row here, so each index is paid for by the host's
    # saves: the foreign keys get none of Django's automatic ones. The unique constraint
    # (funder first) serves look-ups by funder, the due index those by connection, and the
    # run's index holds only the rows a full sync owns, which a save's row never is.
    connection = models.ForeignKey(
        XeroConnection, on_delete=models.CASCADE, related_name="outbox", db_index=False
    )
    funder = models.ForeignKey(
        settings.LOOKOUT_XERO_FUNDER_MODEL,
        on_delete=models.CASCADE,
        related_name="+",
        db_index=False,
    )
    run = models.ForeignKey(
        SyncRun,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        db_index=False,
    )
    # Bumped by every save: a push only clears the row if no newer change arrived meanwhile.
    version = models.PositiveIntegerField(default=1)
    attempts = models.PositiveSmallIntegerField(default=0)
    due_at = models.DateTimeField(default=timezone.now)
    # True when a full sync already looked for this funder among the existing Xero contacts.
    looked_up = models.BooleanField(default=False)
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = "pending change"
        constraints = [
            models.UniqueConstraint(
                fields=["funder", "connection"], name="lx_outbox_one_per_funder"
            ),
        ]
        indexes = [
            models.Index(fields=["connection", "due_at"], name="lx_outbox_conn_due"),
            models.Index(fields=["run"], name="lx_outbox_run", condition=Q(run__isnull=False)),
        ]

    def __str__(self) -> str:
        return f"pending push of funder {self.funder_id}"


class SyncLog(models.Model):
    """One outcome: a funder pushed, skipped or refused, or an event of the connection."""

    class Outcome(models.TextChoices):
        CREATED = "created", "Created"
        LINKED = "linked", "Linked to existing"
        UPDATED = "updated", "Updated"
        UNCHANGED = "unchanged", "Unchanged"
        ARCHIVED = "archived", "Archived"
        RESTORED = "restored", "Restored"
        CONFLICT = "conflict", "Conflict"
        FAILED = "failed", "Failed"
        RETRYING = "retrying", "Will retry"
        PAUSED = "paused", "Paused by Xero's limits"
        FOLLOWED_MERGE = "followed_merge", "Followed a merge in Xero"
        HELD = "held", "Held: the bookkeeper's decision in Xero"
        RESUMED = "resumed", "Restored in Xero"
        DRIFT = "drift", "Changed in Xero"
        TAKEN = "taken", "Taken from Xero"
        KEPT = "kept", "Kept Lookout's value"
        REFUSED = "refused", "Refused from Xero"
        CONNECTION_ERROR = "connection_error", "Connection error"
        RUN = "run", "Run event"

    created_at = models.DateTimeField(default=timezone.now)
    connection = models.ForeignKey(XeroConnection, on_delete=models.CASCADE, related_name="logs")
    run = models.ForeignKey(
        SyncRun, on_delete=models.SET_NULL, null=True, blank=True, related_name="logs"
    )
    funder = models.ForeignKey(
        settings.LOOKOUT_XERO_FUNDER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    # Copied, so the row still says who it was about after the funder is edited or deleted.
    funder_name = models.CharField(max_length=300, blank=True)
    funder_email = models.CharField(max_length=300, blank=True)
    xero_contact_id = models.CharField("Xero ContactID", max_length=36, blank=True)
    outcome = models.CharField(max_length=20, choices=Outcome)
    http_status = models.PositiveSmallIntegerField(null=True, blank=True)
    message = models.TextField(blank=True)
    warnings = models.JSONField(default=list, blank=True)

    objects = SyncLogQuerySet.as_manager()

    class Meta:
        verbose_name = "sync log entry"
        verbose_name_plural = "sync log"
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["connection", "-created_at"], name="lx_log_conn_created"),
            models.Index(fields=["outcome", "-created_at"], name="lx_log_outcome_created"),
            models.Index(fields=["created_at"], name="lx_log_created"),
            models.Index(fields=["xero_contact_id"], name="lx_log_contact"),
        ]

    def __str__(self) -> str:
        return f"{self.get_outcome_display()}: {self.funder_name or self.connection}"


class XeroAlert(models.Model):
    """One episode of a connection needing a person, and whether the team was told of it.

    At most one open episode per (connection, kind), enforced by the database, so workers
    checking at the same time open it once; each e-mail is claimed with a conditional UPDATE
    of its `*_notified_at` column, so it is sent once.
    """

    class Kind(models.TextChoices):
        ERROR = "error", "Xero refused the connection"
        PAUSED = "paused", "Paused by Xero's daily call limit"
        CONFLICTS = "conflicts", "Conflicts waiting for a person"
        FAILURES = "failures", "Funders failing to sync"
        DECISIONS = "decisions", "Changes in Xero waiting for a decision"

    connection = models.ForeignKey(XeroConnection, on_delete=models.CASCADE, related_name="alerts")
    kind = models.CharField(max_length=12, choices=Kind)
    # What was wrong when the episode opened, in words (never a secret: see `alerts`).
    detail = models.TextField(blank=True)
    opened_at = models.DateTimeField(default=timezone.now)
    notified_at = models.DateTimeField(null=True, blank=True)
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolved_notified_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "Xero alert"
        ordering = ["-opened_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["connection", "kind"],
                condition=Q(resolved_at__isnull=True),
                name="lx_alert_one_open_per_kind",
            ),
        ]
        indexes = [models.Index(fields=["resolved_at"], name="lx_alert_resolved")]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} ({self.connection})"


class XeroCredentialsLink(models.Model):
    """A one-time page where a customer hands over their Xero credentials, never by e-mail.

    Only a SHA-256 of the link's secret part is stored: a database dump opens no link.
    """

    organisation = models.ForeignKey(
        settings.LOOKOUT_XERO_ORGANISATION_MODEL,
        on_delete=models.CASCADE,
        related_name="xero_credentials_links",
    )
    token_hash = models.CharField(max_length=64, unique=True, editable=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    opened_at = models.DateTimeField(null=True, blank=True)
    # Submissions Xero refused; at LINK_MAX_TRIES the link stops accepting more. Each
    # submission takes a try before Xero is asked, and an accepted one gives it back.
    tries = models.PositiveSmallIntegerField(default=0)
    used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    xero_tenant_name = models.CharField(max_length=255, blank=True)

    class Meta:
        verbose_name = "Xero credentials link"
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["organisation", "-created_at"], name="lx_credlink_org_created")
        ]

    def __str__(self) -> str:
        return f"credentials link for {self.organisation} ({self.status})"

    @property
    def status(self) -> str:
        if self.used_at:
            return "accepted"
        if self.revoked_at:
            return "revoked"
        if self.expires_at <= timezone.now():
            return "expired"
        return "open"


class XeroPendingCredentials(models.Model):
    """Credentials from a customer link, waiting for a person before the connection uses them.

    Kept when they reach another Xero organisation, or carry another Client ID, than the one
    the connection synced with: whoever held the link may be a stranger, and using them would
    send the organisation's members to the stranger's Xero. A row of its own, so that loading
    a connection never loads (or decrypts) these.
    """

    connection = models.OneToOneField(
        XeroConnection, on_delete=models.CASCADE, related_name="pending_credentials"
    )
    link = models.ForeignKey(
        XeroCredentialsLink, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    client_id = EncryptedCharField("Client ID", max_length=255)
    client_secret = EncryptedCharField("Client Secret", max_length=255)
    webhook_key = EncryptedCharField("Webhook key", max_length=255, blank=True, default="")
    scope = models.CharField(max_length=500, blank=True)
    granted_scopes = models.CharField(max_length=1000, blank=True)
    xero_tenant_id = models.CharField(max_length=36)
    xero_tenant_name = models.CharField(max_length=255, blank=True)
    received_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = "Xero credentials waiting for confirmation"
        verbose_name_plural = "Xero credentials waiting for confirmation"

    def __str__(self) -> str:
        return f"credentials waiting for confirmation for {self.connection_id}"
