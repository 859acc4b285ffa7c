"""`manage.py xero_status [--json]`: every connection's state, for a person or a monitoring system.

Exits 1 when any enabled connection needs attention (`status.attention_conditions`, the same
definition the alerts and the admin's filter use), 0 otherwise. One query, however many
connections there are.

A connection whose stored values no key in FERNET_KEYS opens is reported in error, even before
a worker has met it: the stored bytes come with the query, undecrypted, and are only tried.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

from django.core.management.base import BaseCommand
from django.utils import timezone

from lookout_xero import keys, status
from lookout_xero.alerts import SECRET_FIELDS
from lookout_xero.models import XeroAlert, XeroConnection

ATTENTION_EXIT_CODE = 1


class Command(BaseCommand):
    # Monitoring must run exactly when the configuration is broken: Django's system checks
    # would stop this command at lookout_xero.E006 (a key FERNET_KEYS lacks), and it would
    # print nothing. It reports that problem itself, per connection; `manage.py check` (and
    # every other command) still refuses to run with it.
    requires_system_checks = []
    help = (
        "One line per Xero connection: organisation, state, pending changes and the oldest one's "
        "age, conflicts, failures, funders waiting for a decision on a change made in Xero, "
        "last successful sync, Xero calls left today. Exits 1 when an "
        "enabled connection needs attention."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--json", action="store_true", help="Print a JSON list, one object per connection."
        )

    def handle(self, *args, **options):
        rows = connection_rows()
        if options["json"]:
            self.stdout.write(json.dumps(rows, indent=2))
        elif not rows:
            self.stdout.write("No Xero connections.")
        else:
            for row in rows:
                self.stdout.write(plain_line(row))
        attention = [row for row in rows if row["needs_attention"]]
        if attention:
            self.stderr.write(f"{len(attention)} of {len(rows)} Xero connection(s) need attention.")
            raise SystemExit(ATTENTION_EXIT_CODE)


def connection_rows() -> list[dict]:
    """What the command reports, one dict per connection, from a single query."""
    now = timezone.now()
    connections = keys.with_stored_bytes(
        status.with_figures(
            status.with_attention(
                XeroConnection.objects.select_related("organisation").defer(*SECRET_FIELDS), now
            )
        )
    )
    rows = [_row(connection, now) for connection in connections]
    return sorted(rows, key=lambda row: (row["organisation"].lower(), row["connection_id"]))


def _row(connection: XeroConnection, now) -> dict:
    locked = keys.cannot_open(connection)
    health = status.health(
        connection, syncing=connection.lx_running or bool(connection.lx_pending), locked=locked
    )
    attention = status.attention(connection)
    if health.key == "error" and XeroAlert.Kind.ERROR not in attention:
        attention.insert(0, XeroAlert.Kind.ERROR)  # a lost key no worker has recorded yet
    oldest = connection.lx_oldest_pending_at
    return {
        "organisation": str(connection.organisation),
        "organisation_id": connection.organisation_id,
        "connection_id": connection.pk,
        "enabled": connection.enabled,
        "state": health.key,
        "state_label": health.label,
        "reason": health.reason,
        "needs_attention": bool(attention),
        "attention": attention,
        "pending": connection.lx_pending,
        "oldest_pending_seconds": round((now - oldest).total_seconds()) if oldest else None,
        "conflicts": connection.lx_conflicts,
        "failures": connection.lx_failed,
        "waiting_for_decision": connection.lx_decisions,
        "last_synced_at": connection.last_synced_at.isoformat()
        if connection.last_synced_at
        else None,
        "calls_left_today": status.calls_left_today(connection),
        "limits_seen": connection.limits_seen_at is not None,
        "xero_organisation": connection.xero_tenant_name,
    }


def plain_line(row: dict) -> str:
    pending = f"pending {row['pending']}"
    if row["oldest_pending_seconds"] is not None:
        pending += f" (oldest {_age(row['oldest_pending_seconds'])})"
    last = row["last_synced_at"]
    last_sync = (
        datetime.fromisoformat(last).astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
        if last
        else "never"
    )
    calls = row["calls_left_today"]
    calls_text = (
        f"{calls:,}" if calls is not None else ("full" if row["limits_seen"] else "unknown")
    )
    verdict = "NEEDS ATTENTION: " + ", ".join(row["attention"]) if row["needs_attention"] else "ok"
    return " | ".join(
        [
            row["organisation"],
            row["state"],
            pending,
            f"conflicts {row['conflicts']}",
            f"failures {row['failures']}",
            f"waiting for a decision {row['waiting_for_decision']}",
            f"last successful sync {last_sync}",
            f"calls left today {calls_text}",
            verdict,
        ]
    )


def _age(seconds: int) -> str:
    minutes = seconds // 60
    if minutes < 1:
        return f"{seconds}s"
    if minutes < 60:
        return f"{minutes}m"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours}h{minutes:02d}m"
    days, hours = divmod(hours, 24)
    return f"{days}d{hours:02d}h"
