"""What the admin shows about a connection's health and a run's progress. Reads only; no HTTP."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from functools import reduce
from operator import or_

from django.db.models import (
    BooleanField,
    Count,
    Exists,
    ExpressionWrapper,
    IntegerField,
    Min,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
)
from django.db.models.functions import Coalesce
from django.utils import timezone
from django.utils.timesince import timesince

from . import conf, matching, wording
from .models import OutboxEntry, SyncRun, XeroAlert, XeroConnection, XeroContactLink


@dataclass(frozen=True)
class Health:
    key: str  # disabled | syncing | healthy | paused | error
    label: str  # the badge's words
    reason: str = ""


def health(
    connection: XeroConnection, *, syncing: bool = False, locked: Sequence[str] = ()
) -> Health:
    """One word for the state of a customer's sync, and why when it needs a person.

    ``locked``: the stored values no key in FERNET_KEYS opens (`keys.cannot_open`), known before
    any worker has met them and recorded the error on the row.
    """
    if not connection.enabled:
        return Health("disabled", "Disabled", "Nothing is sent to Xero for this organisation.")
    if locked:
        return Health("error", "Error", wording.keys_cannot_open(list(locked)))
    if connection.state == XeroConnection.State.ERROR:
        reason = wording.CONNECTION_ERROR_REASONS.get(connection.error_code)
        reason = reason or connection.error_message
        return Health("error", "Error", reason)
    if connection.is_paused:
        until = wording.when(connection.paused_until)
        return Health(
            "paused",
            f"Paused until {until}",
            wording.PAUSED_HEALTH_REASON,
        )
    if syncing:
        return Health("syncing", "Syncing")
    return Health("healthy", "Healthy")


def calls_left(connection: XeroConnection) -> str:
    """Xero's remaining allowance as last seen, in words (windows that have passed are full)."""
    seen = connection.limits_seen_at
    if seen is None:
        return "not known yet (no calls made)"
    age = timezone.now() - seen
    minute = connection.min_limit_remaining
    day = connection.day_limit_remaining
    minute_text = (
        "full allowance this minute"
        if age >= timedelta(minutes=1) or minute is None
        else f"{minute} this minute"
    )
    day_text = (
        "full allowance today" if age >= timedelta(days=1) or day is None else f"{day:,} today"
    )
    return f"{minute_text}, {day_text}"


def progress(run: SyncRun) -> dict:
    """A run's counts, percentage and estimated time left, for the live progress bar."""
    done = run.done
    percent = (
        100
        if run.status == SyncRun.Status.COMPLETED
        else (min(100, round(100 * done / run.in_scope)) if run.in_scope else 0)
    )
    eta_seconds = None
    if run.status == SyncRun.Status.RUNNING and run.started_at and 0 < done < run.in_scope:
        elapsed = (timezone.now() - run.started_at).total_seconds()
        eta_seconds = round(elapsed / done * (run.in_scope - done))
    return {
        "id": run.pk,
        "status": run.status,
        "status_label": run.get_status_display(),
        "active": run.status in SyncRun.ACTIVE_STATUSES,
        "dry_run": run.dry_run,
        "in_scope": run.in_scope,
        "done": done,
        "percent": percent,
        "eta_seconds": eta_seconds,
        "eta": _eta_text(run, eta_seconds),
        "created": run.created,
        "linked": run.linked,
        "updated": run.updated,
        "unchanged": run.unchanged,
        "conflicts": run.conflicts,
        "failed": run.failed,
        "message": run.message,
    }


def summary(connection: XeroConnection) -> dict:
    """Everything the status panel shows, in a handful of queries whatever the data size."""
    links = XeroContactLink.objects.filter(connection=connection).aggregate(
        conflicts=Count("pk", filter=Q(state=XeroContactLink.State.CONFLICT)),
        failed=Count("pk", filter=Q(state=XeroContactLink.State.FAILED)),
        synced=Count("pk", filter=Q(state=XeroContactLink.State.SYNCED)),
        decisions=Count("pk", filter=Q(decision_since__isnull=False)),
    )
    pending = OutboxEntry.objects.filter(connection=connection).count()
    run = connection.runs.full_syncs().order_by("-created_at").first()
    active = bool(run and run.status in SyncRun.ACTIVE_STATUSES)
    state = health(connection, syncing=active or bool(pending))
    return {
        "health": asdict(state),
        "xero_tenant_name": connection.xero_tenant_name,
        "last_synced_at": _iso(connection.last_synced_at),
        "last_synced": _when(connection.last_synced_at),
        "pending": pending,
        **links,
        "minute_remaining": connection.min_limit_remaining,
        "day_remaining": connection.day_limit_remaining,
        "limits_seen_at": _iso(connection.limits_seen_at),
        "calls_left": calls_left(connection),
        "run": progress(run) if run else None,
    }


def bookkeeper_counts(connection: XeroConnection) -> dict[str, int]:
    """Links the bookkeeper's changes in Xero touched: merges followed (or in conflict),
    contacts archived in Xero, under a GDPR request, or edited there (drift). One query."""
    return XeroContactLink.objects.filter(connection=connection).aggregate(
        merged=Count(
            "pk",
            filter=Q(matched_by=XeroContactLink.MatchedBy.MERGE) | ~Q(merged_into=""),
        ),
        archived_in_xero=Count("pk", filter=Q(state=XeroContactLink.State.ARCHIVED_IN_XERO)),
        gdpr=Count("pk", filter=Q(state=XeroContactLink.State.GDPR_REQUEST)),
        drifted=Count("pk", filter=Q(drift_seen_at__isnull=False)),
        waiting=Count("pk", filter=Q(decision_since__isnull=False)),
    )


def webhook_facts(connection: XeroConnection) -> dict:
    """What the connection page says about Xero's webhook (the URL itself needs the request)."""
    return {
        "path": connection.webhook_path,
        "key_set": bool(connection.webhook_key),
        "last_event": _when(connection.last_webhook_at),
        # Without a verified webhook, beat reads what changed (`services.changes`).
        "reads_changes": connection.last_webhook_at is None,
        "read_every": _every(conf.get("READ_CHANGES_SECONDS")),
        "changes_read": _when(connection.changes_read_at),
        **bookkeeper_counts(connection),
    }


def _every(seconds: float) -> str:
    return f"{seconds:g} s" if seconds < 120 else f"{seconds / 60:g} min"


def _eta_text(run: SyncRun, eta_seconds: int | None) -> str:
    if run.status == SyncRun.Status.PENDING:
        return "waiting for a worker to start it"
    if run.status != SyncRun.Status.RUNNING:
        return ""
    if eta_seconds is None:
        return "estimating…"
    if eta_seconds < 60:
        return f"about {eta_seconds} s left"
    return f"about {round(eta_seconds / 60)} min left"


def _when(value: datetime | None) -> str:
    if value is None:
        return "never"
    stamp = wording.when(value)
    if timezone.now() - value < timedelta(minutes=1):
        return f"{stamp} (just now)"
    return f"{stamp} ({timesince(value)} ago)"


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def preview_report(run: SyncRun) -> dict:
    """What the preview report template shows: counts, link rules, and the funders in each."""
    report = run.report or {}
    counts = report.get("counts", {})
    links = [
        {**item, "rule_label": matching.RULE_LABELS.get(item.get("rule"), item.get("rule"))}
        for item in report.get("link", [])
    ]
    by_rule: dict[str, int] = defaultdict(int)
    for item in links:
        by_rule[item["rule_label"]] += 1
    lists = {**report, "link": links}
    sections = [
        ("create", "Would be created in Xero"),
        ("link", "Would be linked to a contact already in Xero"),
        ("conflict", "Conflicts a person must resolve"),
        ("invalid", "Rejected by validation, so they would fail"),
        ("warnings", "Would sync, with warnings"),
    ]
    return {
        "run": run,
        "counts": counts,
        "by_rule": sorted(by_rule.items()),
        "sections": [
            {
                "key": key,
                "title": title,
                "count": counts.get(key, 0),
                "items": lists.get(key, []),
                "truncated": counts.get(key, 0) > len(lists.get(key, [])),
            }
            for key, title in sections
        ],
    }


# --- needs attention: the one definition the alerts, `xero_status` and the admin filter share ---

# error, paused, conflicts, failures, decisions
ATTENTION_KINDS = tuple(XeroAlert.Kind.values)


def attention_conditions(now: datetime | None = None) -> dict[str, Q]:
    """Per kind, when an *enabled* connection needs a person, as a filter on connections.

    Conflicts and failures count once one has waited ``ALERT_AFTER_MINUTES`` unchanged (a link's
    ``updated_at``): a failure a retry may still fix, or a conflict someone is resolving right
    now, is not yet worth an e-mail. A disabled connection never needs attention: nothing is
    sent to Xero for it, so nothing is waiting.
    """
    now = now or timezone.now()
    waited_since = now - timedelta(minutes=conf.get("ALERT_AFTER_MINUTES"))

    def waiting(state: str) -> Q:
        links = XeroContactLink.objects.filter(
            connection=OuterRef("pk"), state=state, updated_at__lte=waited_since
        )
        return Q(Exists(links))

    enabled = Q(enabled=True)
    return {
        XeroAlert.Kind.ERROR: enabled & Q(state=XeroConnection.State.ERROR),
        XeroAlert.Kind.PAUSED: enabled & Q(paused_until__gt=now),
        XeroAlert.Kind.CONFLICTS: enabled & waiting(XeroContactLink.State.CONFLICT),
        XeroAlert.Kind.FAILURES: enabled & waiting(XeroContactLink.State.FAILED),
        # A change made in Xero that a person must take or refuse (a field set to Ask, or a
        # value the funder could not hold), waiting since the link's `decision_since`.
        XeroAlert.Kind.DECISIONS: enabled
        & Q(
            Exists(
                XeroContactLink.objects.filter(
                    connection=OuterRef("pk"), decision_since__lte=waited_since
                )
            )
        ),
    }


def needs_attention_q(now: datetime | None = None) -> Q:
    """Connections that need a person, for ``XeroConnection.objects.filter()``."""
    return reduce(or_, attention_conditions(now).values())


def with_attention(queryset: QuerySet, now: datetime | None = None) -> QuerySet:
    """Annotate ``lx_attention_<kind>`` per kind and ``lx_needs_attention``, in the same query."""
    conditions = attention_conditions(now)
    flags = {
        f"lx_attention_{kind}": ExpressionWrapper(condition, output_field=BooleanField())
        for kind, condition in conditions.items()
    }
    flags["lx_needs_attention"] = ExpressionWrapper(
        reduce(or_, conditions.values()), output_field=BooleanField()
    )
    return queryset.annotate(**flags)


def attention(connection: XeroConnection) -> list[str]:
    """The kinds for which this connection needs a person now (empty when it does not)."""
    if not hasattr(connection, "lx_needs_attention"):
        queryset = XeroConnection.objects.filter(pk=connection.pk).only("pk")
        connection = with_attention(queryset).get()
    return [kind for kind in ATTENTION_KINDS if getattr(connection, f"lx_attention_{kind}")]


def with_figures(queryset: QuerySet) -> QuerySet:
    """Annotate what `xero_status` shows per connection, as subqueries of one query."""
    active_run = SyncRun.objects.full_syncs().active().filter(connection=OuterRef("pk"))
    oldest = (
        OutboxEntry.objects.filter(connection=OuterRef("pk"))
        .values("connection")
        .annotate(oldest=Min("created_at"))
        .values("oldest")
    )
    return queryset.annotate(
        lx_pending=_count_of(OutboxEntry.objects.all()),
        lx_oldest_pending_at=Subquery(oldest),
        lx_conflicts=_count_of(
            XeroContactLink.objects.filter(state=XeroContactLink.State.CONFLICT)
        ),
        lx_failed=_count_of(XeroContactLink.objects.filter(state=XeroContactLink.State.FAILED)),
        lx_decisions=_count_of(XeroContactLink.objects.filter(decision_since__isnull=False)),
        lx_running=Exists(active_run),
    )


def _count_of(rows: QuerySet):
    counted = (
        rows.filter(connection=OuterRef("pk"))
        .values("connection")
        .annotate(n=Count("pk"))
        .values("n")
    )
    return Coalesce(Subquery(counted, output_field=IntegerField()), 0)


def calls_left_today(connection: XeroConnection) -> int | None:
    """Xero's day allowance left as last seen; None when not seen, or seen a day or more ago."""
    seen = connection.limits_seen_at
    if seen is None or timezone.now() - seen >= timedelta(days=1):
        return None
    return connection.day_limit_remaining
