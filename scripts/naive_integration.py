"""The integration a user would write without lookout_xero: benchmark-only, never shipped.

A `post_save` receiver enqueues one Celery task per funder save; the task sends that one
contact to Xero in its own request (PUT to create, POST /Contacts/{id} to update) and remembers
the ContactID. To be fair it reuses its access token until it expires and, on a 429, retries
after Xero's Retry-After (one second when Xero gives none, as for the concurrency limit). It
does no look-up before create, no batching and no pacing: that is the point of comparison.

Workers load it with `celery -A project worker -I naive_integration` (scripts/ on PYTHONPATH);
the benchmark process connects the receiver only for the organisations it names.
"""

from __future__ import annotations

import json
import os
import time

import redis
import requests
from celery import shared_task
from django.db import transaction
from django.db.models.signals import post_save

TASK_NAME = "bench.naive_push_contact"
_tokens: dict[str, tuple[str, float]] = {}  # per worker process: client id -> (token, expiry)
_client: redis.Redis | None = None


def _redis() -> redis.Redis:
    global _client
    if _client is None:
        _client = redis.Redis.from_url(os.environ["BENCH_REDIS_URL"])
    return _client


def register(organisation_id: int, *, client_id: str, client_secret: str, api_url: str,
             token_url: str) -> None:  # fmt: skip
    """Where the naive integration keeps an organisation's Xero credentials (bench Redis)."""
    config = {
        "client_id": client_id,
        "client_secret": client_secret,
        "api_url": api_url,
        "token_url": token_url,
    }
    _redis().set(f"lxbench:naive:org:{organisation_id}", json.dumps(config))


def connect_receiver(organisation_ids: set[int]) -> None:
    """Send a task per saved membership funder of these organisations, after commit."""
    from project.funders.models import Funder

    def funder_saved(sender, instance, **kwargs) -> None:
        if instance.organisation_id in organisation_ids and instance.funder_type == "membership":
            transaction.on_commit(lambda: push_contact.delay(instance.organisation_id, instance.pk))

    post_save.connect(funder_saved, sender=Funder, weak=False, dispatch_uid="bench-naive")


def backfill(organisation_id: int) -> int:
    """The naive "first sync": one task per membership funder."""
    from project.funders.models import Funder

    ids = Funder.objects.filter(
        organisation_id=organisation_id, funder_type="membership", archived=False
    ).values_list("pk", flat=True)
    count = 0
    for funder_id in ids.iterator():
        push_contact.delay(organisation_id, funder_id)
        count += 1
    return count


def _contact(funder) -> dict:
    return {
        "Name": funder.name,
        "FirstName": funder.first_name,
        "LastName": funder.last_name,
        "EmailAddress": funder.email,
        "Phones": [{"PhoneType": "DEFAULT", "PhoneNumber": funder.phone}],
        "Addresses": [{"AddressType": "STREET", "City": funder.city}],
    }


def _token(config: dict) -> str:
    cached = _tokens.get(config["client_id"])
    if cached and cached[1] > time.time() + 60:
        return cached[0]
    response = requests.post(
        config["token_url"],
        data={"grant_type": "client_credentials"},
        auth=(config["client_id"], config["client_secret"]),
        timeout=30,
    )
    response.raise_for_status()
    body = response.json()
    _tokens[config["client_id"]] = (body["access_token"], time.time() + body["expires_in"])
    return body["access_token"]


@shared_task(name=TASK_NAME, bind=True, max_retries=None, ignore_result=True)
def push_contact(self, organisation_id: int, funder_id: int) -> None:
    """Send one funder to Xero in one request."""
    from project.funders.models import Funder

    store = _redis()
    config = json.loads(store.get(f"lxbench:naive:org:{organisation_id}"))
    funder = Funder.objects.get(pk=funder_id)
    id_key = f"lxbench:naive:contact:{organisation_id}:{funder_id}"
    contact_id = (store.get(id_key) or b"").decode()
    url = f"{config['api_url']}/api.xro/2.0/Contacts" + (f"/{contact_id}" if contact_id else "")
    response = requests.request(
        "POST" if contact_id else "PUT",
        url,
        json={"Contacts": [_contact(funder)]},
        headers={"Authorization": f"Bearer {_token(config)}", "Accept": "application/json"},
        timeout=30,
    )
    if response.status_code == 429:
        raise self.retry(countdown=float(response.headers.get("Retry-After") or 1))
    if response.status_code == 401:
        _tokens.pop(config["client_id"], None)
        raise self.retry(countdown=0)
    response.raise_for_status()
    if not contact_id:
        store.set(id_key, response.json()["Contacts"][0]["ContactID"])
