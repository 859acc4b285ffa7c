"""The webhook endpoint's body limit holds when the request carries no Content-Length.

A chunked request reaches Django through an ASGI server as a whole body with no Content-Length
header, so a limit that trusts the header alone reads (and HMACs) whatever is sent. Driven here
through Django's own ASGI handler, as uvicorn or daphne would call it, the body arriving in
chunks.
"""

from __future__ import annotations

import asyncio
import json
from contextlib import contextmanager

import pytest
from asgiref.sync import async_to_sync
from django.core.handlers.asgi import ASGIHandler
from django.core.signals import request_finished, request_started
from django.db import close_old_connections

from lookout_xero.models import XeroConnection
from lookout_xero.webhook_views import MAX_BODY_BYTES, signature_of
from tests.helpers import make_connection

WEBHOOK_KEY = "Vq3+endpoint/webhook-signing-key=="
CHUNK = 64 * 1024


@contextmanager
def database_kept_open():
    """As Django's test client does: the request's end must not close the test's database."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        yield
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


def post_chunked(path: str, body: bytes, signature: str) -> int:
    """POST `body` in chunks, with no Content-Length, through Django's ASGI handler."""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "headers": [
            (b"host", b"testserver"),
            (b"content-type", b"application/json"),
            (b"transfer-encoding", b"chunked"),
            (b"x-xero-signature", signature.encode()),
        ],
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
    }
    pieces = [body[i : i + CHUNK] for i in range(0, len(body), CHUNK)] or [b""]
    messages = [
        {"type": "http.request", "body": piece, "more_body": n < len(pieces) - 1}
        for n, piece in enumerate(pieces)
    ]
    sent = []

    async def receive():
        if messages:
            return messages.pop(0)
        await asyncio.Event().wait()  # the client stays connected until answered

    async def send(message):
        sent.append(message)

    with database_kept_open():
        async_to_sync(ASGIHandler())(scope, receive, send)
    [start] = [m for m in sent if m["type"] == "http.response.start"]
    return start["status"]


@pytest.mark.django_db
def test_the_body_limit_holds_without_content_length(organisation):
    connection = make_connection(organisation)
    connection.webhook_key = WEBHOOK_KEY
    connection.save()
    intent = json.dumps({"events": [], "firstEventSequence": 0, "lastEventSequence": 0})
    padding = "x" * (MAX_BODY_BYTES - len(intent))
    oversized = json.dumps(
        {"events": [], "firstEventSequence": 0, "lastEventSequence": 0, "padding": padding}
    ).encode()
    assert len(oversized) > MAX_BODY_BYTES

    # Correctly signed, so only the size can refuse it.
    status = post_chunked(connection.webhook_path, oversized, signature_of(WEBHOOK_KEY, oversized))
    assert status == 401
    assert XeroConnection.objects.get().last_webhook_at is None  # refused, nothing recorded

    # A delivery of Xero's size, chunked the same way, still goes through.
    body = intent.encode()
    assert post_chunked(connection.webhook_path, body, signature_of(WEBHOOK_KEY, body)) == 200
    assert XeroConnection.objects.get().last_webhook_at is not None
    # And one exactly at the limit is not cut off by a byte.
    exact = oversized[: MAX_BODY_BYTES - 2] + b'"}'
    assert len(exact) == MAX_BODY_BYTES
    assert post_chunked(connection.webhook_path, exact, signature_of(WEBHOOK_KEY, exact)) == 200
