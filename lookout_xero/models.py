"""Per-organisation Xero connection, funder ↔ contact links, the outbox, runs and the sync log."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from .fields import EncryptedCharField, EncryptedTextField


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

    # The token is shared by every worker on every machine, so it lives here, encrypted.
    access_token = EncryptedTextField(blank=True, default="", editable=False)
    access_token_expires_at = models.DateTimeField(null=True, blank=True, editable=False)

    # At most one drain per organisation across all workers: a lease taken with one UPDATE.
    lease_token = models.CharField(max_length=64, blank=True, editable=False)
    lease_expires_at = models.DateTimeField(null=True, blank=True, editable=False)

    min_limit_remaining = models.IntegerField(null=True, blank=True, editable=False)
    day_limit_remaining = models.IntegerField(null=True, blank=True, editable=False)
    limits_seen_at = models.DateTimeField(null=True, blank=True, editable=False)
    last_synced_at = models.DateTimeField(null=True, blank=True, editable=False)

    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "Xero connection"
        permissions = [
            ("manage_xero_credentials", "Can see and change Xero credentials and the switch"),
        ]

    def __str__(self) -> str:
        return f"Xero connection for {self.organisation}"

    # What a person edits. Everything else is the sync's, written with targeted UPDATEs, so a
    # form saved from a stale page must not write it back (a lease, a pause, a fresh token...).
    EDITABLE_FIELDS = (
        "organisation",
        "client_id",
        "client_secret",
        "scope",
        "enabled",
        "webhook_key",
    )

    def save(self, *args, **kwargs) -> None:
        # Imported here: services imports models.
        from . import services

        touched = services.before_connection_save(self)
        if self.pk and not self._state.adding and kwargs.get("update_fields") is None:
            kwargs["update_fields"] = {*self.EDITABLE_FIELDS, "updated_at", *touched}
        super().save(*args, **kwargs)
        services.after_connection_save(self)

    @property
    def is_paused(self) -> bool:
        return bool(self.paused_until and self.paused_until > timezone.now())

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
    # Set when every in-scope funder has been queued: only then can the run complete.
    planned_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["connection", "status"], name="lx_run_conn_status")]

    def __str__(self) -> str:
        kind = "Preview" if self.dry_run else "Full sync"
        return f"{kind} #{self.pk} ({self.get_status_display()})"

    @property
    def done(self) -> int:
        """Funders with a final outcome in this run (linked funders count once, when pushed)."""
        return self.created + self.updated + self.unchanged + self.conflicts + self.failed


class XeroContactLink(models.Model):
    """Which Xero contact a funder is, on one connection, and how its last push went."""

    class State(models.TextChoices):
        PENDING = "pending", "Not yet in Xero"
        SYNCED = "synced", "Synced"
        CONFLICT = "conflict", "Conflict"
        FAILED = "failed", "Failed"
        IGNORED = "ignored", "Not synced (by choice)"

    class MatchedBy(models.TextChoices):
        CREATED = "created", "Created by Lookout"
        CONTACT_NUMBER = "contact_number", "Contact number"
        EMAIL = "email", "E-mail"
        NAME = "name", "Name"
        PERSON = "person", "Chosen by a person"

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
        indexes = [models.Index(fields=["connection", "state"], name="lx_link_conn_state")]

    def __str__(self) -> str:
        return f"{self.funder} → {self.xero_contact_id or 'not in Xero'}"


class OutboxEntry(models.Model):
    """A funder whose profile must be pushed: one row per (connection, funder), upserted.

    Written in the same transaction as the funder's save, so a change committed while the
    broker or the worker is down is still found by the sweep.
    """

    connection = models.ForeignKey(XeroConnection, on_delete=models.CASCADE, related_name="outbox")
    funder = models.ForeignKey(
        settings.LOOKOUT_XERO_FUNDER_MODEL, on_delete=models.CASCADE, related_name="+"
    )
    run = models.ForeignKey(
        SyncRun, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
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
                fields=["connection", "funder"], name="lx_outbox_one_per_funder"
            ),
        ]
        indexes = [models.Index(fields=["connection", "due_at"], name="lx_outbox_conn_due")]

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
    # Submissions Xero refused; at LINK_MAX_TRIES the link stops accepting more.
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
