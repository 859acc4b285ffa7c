"""Keep each organisation under Xero's minute limit, from the X-MinLimit-Remaining header.

Xero says how many calls are left in the current minute, not when that minute ends. So once
the count falls to MIN_LIMIT_RESERVE, each next call waits 60/(left+1) seconds after the answer
that reported it: from the reserve down to zero those waits add up to more than a minute, so
the window has turned over before the last call of it is spent. Every worker shares what it
learns through the connection row, so a planner and a drain of one organisation pace together.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from django.utils import timezone

from .. import conf
from ..client import RateLimits, XeroClient
from ..models import XeroConnection

MINUTE = timedelta(seconds=60)


class Pacer:
    """A client's `before_request` hook: waits (through `wait`) when a call would come too soon."""

    def __init__(self, connection_id: int, *, wait: Callable[[float], None]) -> None:
        self.connection_id = connection_id
        self.wait = wait
        self._shared: RateLimits | None = None

    def __call__(self, client: XeroClient) -> None:
        self._share(client.limits)
        left, seen_at = (
            XeroConnection.objects.filter(pk=self.connection_id)
            .values_list("min_limit_remaining", "limits_seen_at")
            .first()
        ) or (None, None)
        now = timezone.now()
        if left is None or seen_at is None or now - seen_at >= MINUTE:
            return  # nothing known for this minute: the first answer will say
        if left > conf.get("MIN_LIMIT_RESERVE"):
            return
        ready_at = seen_at + timedelta(seconds=60 / (max(left, 0) + 1))
        if ready_at > now:
            self.wait((ready_at - now).total_seconds())

    def _share(self, limits: RateLimits) -> None:
        """Store what the last answer said, once per answer, for every worker to read."""
        if limits is self._shared or limits.minute_remaining is None:
            return
        self._shared = limits
        XeroConnection.objects.filter(pk=self.connection_id).update(
            min_limit_remaining=limits.minute_remaining,
            day_limit_remaining=limits.day_remaining,
            limits_seen_at=limits.seen_at,
        )
