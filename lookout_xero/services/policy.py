"""How the sync reacts to an error from Xero: decided here, once, for every caller.

The drain, the full sync and its task all ask `react_to`; none of them decides on its own.
"""

from __future__ import annotations

import enum
import random
from dataclasses import dataclass

from .. import conf
from ..exceptions import (
    XeroAuthError,
    XeroError,
    XeroForbiddenError,
    XeroRateLimitError,
    XeroTenantChangedError,
)


class Reaction(enum.Enum):
    STOP = "stop"  # credentials refused, access revoked, another Xero organisation: a person acts
    PAUSE = "pause"  # Xero's day limit: the organisation waits until Xero's Retry-After
    WAIT = "wait"  # minute or concurrency limit: the same work, a little later
    RETRY = "retry"  # outage, 5xx, timeout: try again after a backoff (a drain's grows with
    # the organisation's failed calls in a row, not with the funder's: drain.failures_in_a_row)
    GIVE_UP = "give_up"  # permanent, or retried MAX_ATTEMPTS times: record it, do not retry


@dataclass(frozen=True)
class Decision:
    reaction: Reaction
    seconds: float = 0.0  # how long to wait (PAUSE, WAIT, RETRY)


# Longest countdown the sync schedules; beyond that, the sweep picks the work up. A worker holds
# a countdown task unacknowledged until it is due, so this stays under RabbitMQ's default
# consumer_timeout (30 min), and a Redis broker's visibility_timeout must be longer
# (docs/install.md).
MAX_FOLLOW_UP_SECONDS = 25 * 60
# When Xero sends no Retry-After: a day-limit pause, a minute-limit wait, a concurrency wait.
DEFAULT_PAUSE_SECONDS = 3600
DEFAULT_WAIT_SECONDS = {"minute": 60, "concurrent": 1}
FALLBACK_WAIT_SECONDS = 60


def react_to(exc: XeroError, *, attempt: int) -> Decision:
    """What to do after `exc` ended try number `attempt` (1 for the first) of some work."""
    if isinstance(exc, (XeroAuthError, XeroForbiddenError, XeroTenantChangedError)):
        return Decision(Reaction.STOP)
    if isinstance(exc, XeroRateLimitError):
        if exc.limit == "day":
            return Decision(Reaction.PAUSE, exc.retry_after or DEFAULT_PAUSE_SECONDS)
        wait = DEFAULT_WAIT_SECONDS.get(exc.limit, FALLBACK_WAIT_SECONDS)
        return Decision(Reaction.WAIT, exc.retry_after or wait)
    if exc.retryable and attempt < conf.get("MAX_ATTEMPTS"):
        return Decision(Reaction.RETRY, backoff(attempt))
    return Decision(Reaction.GIVE_UP)


def backoff(attempt: int) -> float:
    """Exponential backoff with full jitter, bounded by RETRY_MAX_SECONDS."""
    ceiling = min(
        conf.get("RETRY_MAX_SECONDS"), conf.get("RETRY_BASE_SECONDS") * 2 ** (attempt - 1)
    )
    return random.uniform(ceiling / 2, ceiling)  # noqa: S311 - jitter, not security
