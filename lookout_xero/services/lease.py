"""The per-organisation lease: at most one drain per organisation, across workers and machines.

It is short (LEASE_SECONDS) and renewed by its holder before every batch and every call to
Xero, so a worker killed mid-batch (OOM killer, a deploy out of grace time) holds its
organisation for at most LEASE_SECONDS, not minutes.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta

from django.db.models import Q
from django.utils import timezone

from .. import conf
from ..models import XeroConnection


class LeaseLost(Exception):
    """The lease expired and another worker took it: that worker carries on."""


@dataclass
class Lease:
    connection_id: int
    token: str

    @classmethod
    def acquire(cls, connection_id: int) -> Lease | None:
        """Take the organisation's lease if it is free or its holder stopped renewing it."""
        token = uuid.uuid4().hex
        now = timezone.now()
        taken = (
            XeroConnection.objects.filter(pk=connection_id)
            .filter(Q(lease_expires_at__isnull=True) | Q(lease_expires_at__lt=now))
            .update(lease_token=token, lease_expires_at=_expiry(now))
        )
        return cls(connection_id, token) if taken else None

    def renew(self) -> None:
        """Push the expiry out again; raises LeaseLost if another worker holds it now."""
        renewed = self._mine().update(lease_expires_at=_expiry(timezone.now()))
        if not renewed:
            raise LeaseLost

    def release(self) -> None:
        self._mine().update(lease_token="", lease_expires_at=None)

    def _mine(self):
        return XeroConnection.objects.filter(pk=self.connection_id, lease_token=self.token)


def seconds_until_free(connection_id: int) -> float | None:
    """How long the current lease has left, or None when nobody holds it."""
    expires = (
        XeroConnection.objects.filter(pk=connection_id)
        .values_list("lease_expires_at", flat=True)
        .first()
    )
    if expires is None:
        return None
    return max(0.0, (expires - timezone.now()).total_seconds())


def _expiry(now):
    return now + timedelta(seconds=conf.get("LEASE_SECONDS"))
