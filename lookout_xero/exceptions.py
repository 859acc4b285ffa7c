"""Errors raised by the Xero client. Classified in one place (`client.classify_response`).

`retryable` tells the sync whether waiting and trying again can help. Nothing here ever holds a
token or a secret: messages carry Xero's status, correlation id and a short body excerpt only.
"""

from __future__ import annotations

import requests


class XeroError(Exception):
    """Base of every error that came from talking to Xero."""

    retryable = False

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = None,
        correlation_id: str = "",
        body_excerpt: str = "",
        code: str = "",
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code  # Xero's or OAuth's short error name, e.g. "invalid_client"
        self.status_code = status_code
        self.correlation_id = correlation_id
        self.body_excerpt = body_excerpt

    def __str__(self) -> str:
        parts = [self.message]
        if self.status_code:
            parts.append(f"(HTTP {self.status_code})")
        if self.correlation_id:
            parts.append(f"[correlation {self.correlation_id}]")
        return " ".join(parts)


class XeroTransportError(XeroError, requests.ConnectionError):
    """No usable answer: connection refused or dropped, DNS, TLS, timeout."""

    retryable = True


class XeroServerError(XeroError, requests.HTTPError):
    """5xx, including Xero's plain-text 503 outage pages."""

    retryable = True


class XeroAuthError(XeroError, requests.HTTPError):
    """The credentials or the token were refused (401, `invalid_client`)."""


class XeroScopeError(XeroAuthError):
    """The requested scope is not allowed on this custom connection (`invalid_scope`)."""


class XeroForbiddenError(XeroError, requests.HTTPError):
    """403: access revoked, the organisation disconnected, or a missing scope."""


class XeroNotFoundError(XeroError, requests.HTTPError):
    """404."""


class XeroValidationError(XeroError, ValueError):
    """400 for the request as a whole; per-item errors are returned as data, not raised."""


class XeroRateLimitError(XeroError, requests.HTTPError):
    """429 (or a legacy 503 rate-limit page). `limit` is "minute", "day", "concurrent", "app"..."""

    retryable = True

    def __init__(self, message: str, *, retry_after: int | None, limit: str, **kwargs) -> None:
        super().__init__(message, **kwargs)
        self.retry_after = retry_after
        self.limit = limit


class XeroTenantChangedError(XeroError):
    """The credentials reach another Xero organisation than the connection synced with.

    Not an answer of Xero's but what the sync makes of one: following silently would write the
    organisation's members into someone else's books, so a person must confirm first.
    """
