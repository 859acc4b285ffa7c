"""Xero's call limits: per tenant 5 concurrent, 60 a minute, 5000 a day; 10,000 a minute per app.

Windows are fixed and start at a tenant's first call, as Xero describes; every tenant answer
carries the ``X-*Limit-Remaining`` headers, and a refused call is a 429 naming the limit in
``X-Rate-Limit-Problem`` (with ``Retry-After`` for the minute and day limits). See docs/xero.md,
"Rate limits".
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass

from .wire import Reply, text_reply

MINUTE = 60
DAY = 86400


@dataclass
class TenantUsage:
    """One organisation's calls in the current windows."""

    calls_today: int = 0
    calls_this_minute: int = 0
    in_flight: int = 0
    minute_started: float | None = None
    day_started: float | None = None

    def roll(self, now: float) -> None:
        if self.minute_started is None or now - self.minute_started >= MINUTE:
            self.minute_started = now
            self.calls_this_minute = 0
        if self.day_started is None or now - self.day_started >= DAY:
            self.day_started = now
            self.calls_today = 0


def _retry_after(started: float | None, window: int, now: float) -> int:
    return max(1, math.ceil((started or now) + window - now))


def rate_limited(problem: str, retry_after: int | None, headers: dict[str, str]) -> Reply:
    reply = text_reply(429, f"Rate limit exceeded: {problem} limit reached")
    reply.headers.update(headers)
    reply.headers["X-Rate-Limit-Problem"] = problem
    if retry_after is not None:
        reply.headers["Retry-After"] = str(retry_after)
    return reply


class RateLimiter:
    """Counts calls against the limits; the app-wide minute window is shared by all tenants."""

    def __init__(self, *, minute: int, day: int, concurrent: int, app_minute: int) -> None:
        self.minute_limit = minute
        self.day_limit = day
        self.concurrent_limit = concurrent
        self.app_minute_limit = app_minute
        self._app_minute_started: float | None = None
        self._app_calls_this_minute = 0
        # Its own lock, so a request sleeping in a delay holds a concurrency slot without
        # blocking other requests on the data lock.
        self._flight_lock = threading.Lock()

    def reset(self) -> None:
        self._app_minute_started = None
        self._app_calls_this_minute = 0

    def enter(self, usage: TenantUsage) -> Reply | None:
        """Take a concurrency slot, or return the 429 when the tenant has none left."""
        with self._flight_lock:
            if usage.in_flight >= self.concurrent_limit:
                return rate_limited("concurrent", None, self.headers(usage))
            usage.in_flight += 1
            return None

    def leave(self, usage: TenantUsage) -> None:
        with self._flight_lock:
            usage.in_flight -= 1

    def count(self, usage: TenantUsage) -> Reply | None:
        """Count one tenant call, or return the 429 if a window is used up (not counted).

        The caller holds the fake's data lock.
        """
        now = time.monotonic()
        usage.roll(now)
        if self._app_minute_started is None or now - self._app_minute_started >= MINUTE:
            self._app_minute_started = now
            self._app_calls_this_minute = 0
        if usage.calls_today >= self.day_limit:
            retry = _retry_after(usage.day_started, DAY, now)
            return rate_limited("day", retry, self.headers(usage))
        if usage.calls_this_minute >= self.minute_limit:
            retry = _retry_after(usage.minute_started, MINUTE, now)
            return rate_limited("minute", retry, self.headers(usage))
        if self._app_calls_this_minute >= self.app_minute_limit:
            retry = _retry_after(self._app_minute_started, MINUTE, now)
            return rate_limited("appminute", retry, self.headers(usage))
        usage.calls_today += 1
        usage.calls_this_minute += 1
        self._app_calls_this_minute += 1
        return None

    def force(
        self, usage: TenantUsage, minute_remaining: int | None, day_remaining: int | None
    ) -> None:
        """Set the counters so the next call sees these remaining allowances."""
        now = time.monotonic()
        if minute_remaining is not None:
            usage.minute_started = now
            usage.calls_this_minute = self.minute_limit - minute_remaining
        if day_remaining is not None:
            usage.day_started = now
            usage.calls_today = self.day_limit - day_remaining

    def headers(self, usage: TenantUsage) -> dict[str, str]:
        app_left = self.app_minute_limit - self._app_calls_this_minute
        return {
            "X-DayLimit-Remaining": str(max(0, self.day_limit - usage.calls_today)),
            "X-MinLimit-Remaining": str(max(0, self.minute_limit - usage.calls_this_minute)),
            "X-AppMinLimit-Remaining": str(max(0, app_left)),
        }
