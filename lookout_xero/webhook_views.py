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
import logging

from django.db import transaction
from django.http import HttpResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from . import services
from .fields import UndecryptableError
from .models import XeroConnection

logger = logging.getLogger(__name__)

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
    connection = (
        XeroConnection.objects.filter(webhook_id=webhook_id)
        .only("pk", "enabled", "webhook_key", "xero_tenant_id")
        .first()
    )
    if connection is None:
        return _answer(401)
    try:
        key = connection.webhook_key
    except UndecryptableError:
        logger.error("Xero connection %s: the webhook key cannot be decrypted", connection.pk)
        return _answer(401)
    body = request.body
    if not is_signed(key, body, request.META.get(SIGNATURE_HEADER, "")):
        return _answer(401)
    try:
        payload = json.loads(body)
    except ValueError:
        payload = None  # signed, so Xero's; nothing in it we can use
    services.receive_webhook(connection, payload)
    return _answer(200)
