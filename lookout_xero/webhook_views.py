"""The endpoint Xero posts a connection's webhook events to (docs/xero.md, "Webhooks").

Xero's rules: the signature is the base64 HMAC-SHA256 of the raw body keyed with the
connection's webhook key, compared in constant time; a correctly signed delivery gets 200 with
an empty body and no cookies, anything else 401 (which is also how Xero's "intent to receive"
check is passed); the answer comes within 5 seconds, so events are only stored here and a
worker reads the contacts.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json

from django.db import transaction
from django.http import HttpResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from . import services
from .fields import UndecryptableError
from .models import XeroConnection
from .services.calls import record_undecryptable

SIGNATURE_HEADER = "HTTP_X_XERO_SIGNATURE"
# Xero's deliveries are a few kilobytes; anything much larger is not Xero.
MAX_BODY_BYTES = 256 * 1024


def signature_of(key: str, body: bytes) -> str:
    """Xero's signature of a body: base64(HMAC-SHA256(key, raw body))."""
    digest = hmac.new(key.encode("utf-8"), body, hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


def is_signed(key: str, body: bytes, signature: str) -> bool:
    return bool(key and signature) and hmac.compare_digest(
        signature_of(key, body).encode("ascii"), signature.encode("ascii", "replace")
    )


def _answer(status: int) -> HttpResponse:
    """Empty, uncached, with nothing for Xero to store."""
    response = HttpResponse(status=status)
    response["Cache-Control"] = "no-store"
    return response


def _read_at_most(request, limit: int) -> bytes | None:
    """The body, or None when it is longer than `limit`, reading at most `limit` + 1 bytes.

    Content-Length may be absent (a chunked request: an ASGI server hands Django the whole body
    without one) or understated, so the check above cannot be the only one.
    """
    chunks: list[bytes] = []
    size = 0
    while size <= limit:
        chunk = request.read(limit + 1 - size)
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks) if size <= limit else None


@csrf_exempt
@require_POST
@transaction.non_atomic_requests  # events are stored for good before Xero hears 200
def receive(request, webhook_id: str):
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    if length > MAX_BODY_BYTES:
        return _answer(401)  # not a delivery of Xero's, so, by Xero's rule, 401 (unread)
    # The key is left out of the query and decrypted on first use, below: decrypted while the
    # row loads, a key FERNET_KEYS lacks would raise before the `except` and answer 500.
    connection = (
        XeroConnection.objects.filter(webhook_id=webhook_id)
        .only("pk", "enabled", "xero_tenant_id")
        .first()
    )
    if connection is None:
        return _answer(401)
    try:
        key = connection.webhook_key
    except UndecryptableError as exc:
        record_undecryptable(connection.pk, exc)  # the team sees it on the connection
        return _answer(401)  # the signature cannot be checked, so this is not Xero's (for us)
    body = _read_at_most(request, MAX_BODY_BYTES)
    if body is None:
        return _answer(401)  # correctly signed or not, not a size Xero sends
    if not is_signed(key, body, request.META.get(SIGNATURE_HEADER, "")):
        return _answer(401)
    try:
        payload = json.loads(body)
    except ValueError:
        payload = None  # signed, so Xero's; nothing in it we can use
    services.receive_webhook(connection, payload)
    return _answer(200)
