"""A fake Xero (identity + Accounting Contacts) that speaks real HTTP on loopback.

It follows the Xero behaviour written down in docs/xero.md: client-credentials tokens,
Bearer auth, optional ``xero-tenant-id``, per-tenant minute/day/concurrency limits with the
``X-*Limit-Remaining`` headers, ``summarizeErrors``, ``Idempotency-Key`` and the Contacts
validation rules (unique active names, field lengths, e-mail format). It also plays the
organisation's bookkeeper (``FakeOrg.merge``, ``archive``, ``restore``, ``gdpr_request``,
``edit``, ``create``), announcing each change with a signed webhook as Xero does.

Standard library only, and independent of the rest of lookout_xero, so it can run anywhere
the tests or the demo run::

    python -m lookout_xero.testing.fake_xero --port 8765 --client-id demo-client \
        --client-secret demo-secret --name "Demo Company"

and, against a running one, ``python -m lookout_xero.testing.fake_xero bookkeeper merge A B``.

Modules: ``server`` (HTTP, routing, identity, faults, request log), ``contacts`` (the
contacts store and its validation), ``org`` (an organisation and its bookkeeper),
``contacts_api`` (the Contacts endpoints), ``where`` (the ``where`` filter), ``limits``
(rate limits), ``webhooks`` (signed deliveries), ``control`` (the bookkeeper's endpoint for
people), ``wire`` (requests and replies), ``__main__`` (the command line).
"""

from .org import FakeOrg
from .server import FakeXero
from .wire import RecordedRequest

__all__ = ["FakeOrg", "FakeXero", "RecordedRequest"]
