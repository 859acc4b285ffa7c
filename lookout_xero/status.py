"""What the admin shows about a connection's health and a run's progress. Reads only; no HTTP."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta

from django.db.models import Count, Q
from django.utils import formats, timezone
from django.utils.timesince import timesince

from . import matching
from .models import OutboxEntry, SyncRun, XeroConnection, XeroContactLink

ACTIVE_RUN_STATUSES = (SyncRun.Status.PENDING, SyncRun.Status.RUNNING)

# Plain words for the error codes `services.record_connection_error` stores.
ERROR_REASONS = {
    "invalid_client": "Xero did not accept the Client ID and Client Secret. Check both (Test "
    "connection), or generate a new secret in the customer's Xero developer portal, then save.",
    "invalid_scope": "Xero refused the scope for this custom connection. Connections created "
    "since April 2026 need the Scope left empty.",
    "forbidden": "Xero refused access: the custom connection may have been revoked or the "
    "organisation disconnected.",
    "unauthorized": "Xero refused the credentials. Check them with Test connection, then save.",
    "undecryptable": "The stored credentials cannot be decrypted with FERNET_KEYS: the key that "
    "encrypted them was removed. Put it back (after the current key) and run xero_rotate_keys.",
}


@dataclass(frozen=True)
class Health:
    key: str  # disabled | syncing | healthy | paused | error
    label: str  # the badge's words
    reason: str = ""


def health(connection: XeroConnection, *, syncing: bool = False) -> Health:
    """One word for the state of a customer's sync, and why when it needs a person."""
    if not connection.enabled:
        return Health("disabled", "Disabled", "Nothing is sent to Xero for this organisation.")
    if connection.state == XeroConnection.State.ERROR:
        reason = ERROR_REASONS.get(connection.error_code) or connection.error_message
        return Health("error", "Error", reason)
    if connection.is_paused:
        until = formats.date_format(timezone.localtime(connection.paused_until), "j M H:i T")
        return Health(
            "paused",
            f"Paused until {until}",
            "Xero's daily call limit is used up; it resumes then.",
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
        "active": run.status in ACTIVE_RUN_STATUSES,
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
    )
    pending = OutboxEntry.objects.filter(connection=connection).count()
    run = connection.runs.filter(dry_run=False).order_by("-created_at").first()
    active = bool(run and run.status in ACTIVE_RUN_STATUSES)
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
    stamp = formats.date_format(timezone.localtime(value), "j M Y, H:i T")
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
