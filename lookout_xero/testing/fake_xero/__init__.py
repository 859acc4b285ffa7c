"""A fake Xero (identity + Accounting Contacts) that speaks real HTTP on loopback.

It follows the Xero behaviour written down in docs/xero.md: client-credentials tokens,
Bearer auth, optional ``xero-tenant-id``, per-tenant minute/day/concurrency limits with the
``X-*Limit-Remaining`` headers, ``summarizeErrors``, ``Idempotency-Key`` and the Contacts
validation rules (unique active names, field lengths, e-mail format).

Standard library only, and independent of the rest of lookout_xero, so it can run anywhere
the tests or the demo run::

    python -m lookout_xero.testing.fake_xero --port 8765 --client-id demo-client \
        --client-secret demo-secret --name "Demo Company"

Modules: ``server`` (HTTP, routing, identity, faults, request log), ``contacts`` (the
contacts store and its validation), ``contacts_api`` (the Contacts endpoints), ``where``
(the ``where`` filter), ``limits`` (rate limits), ``wire`` (requests and replies).
"""

from .org import FakeOrg
from .server import FakeXero
from .wire import RecordedRequest

__all__ = ["FakeOrg", "FakeXero", "RecordedRequest"]
