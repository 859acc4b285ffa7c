"""Retention: old sync log rows and alert episodes that are over go."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from .. import conf
from ..models import SyncLog, XeroAlert


def prune_logs(days: int | None = None) -> int:
    """Delete sync log rows, and alert episodes over, older than the retention; return how
    many log rows went. An episode still open is kept, however old."""
    days = conf.get("LOG_RETENTION_DAYS") if days is None else days
    deleted, _ = SyncLog.objects.older_than(days).delete()
    cutoff = timezone.now() - timedelta(days=days)
    XeroAlert.objects.filter(resolved_at__lt=cutoff).delete()
    return deleted
