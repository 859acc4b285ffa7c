"""Real Xero answers, replayed to the client over HTTP: what it raises, what the policy does about
it, and the words the team reads.

Each body in tests/fixtures/xero_real/ (sources in its SOURCES.md) is served by the fake Xero's
``fail_next`` with the status and Content-Type it came with, so it goes through the client's own
response handling exactly as Xero's answer would. docs/xero.md has the table of these cases.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from lookout_xero import wording
from lookout_xero.client import Credentials, XeroClient
from lookout_xero.exceptions import (
    XeroAuthError,
    XeroForbiddenError,
    XeroNotFoundError,
    XeroRateLimitError,
    XeroScopeError,
    XeroServerError,
    XeroValidationError,
)
from lookout_xero.models import XeroWebhookEvent
from lookout_xero.services.policy import Reaction, react_to
from lookout_xero.webhook_views import signature_of
from tests.helpers import CLIENT_ID, CLIENT_SECRET, make_connection

REAL = Path(__file__).parent / "fixtures" / "xero_real"
JSON = "application/json; charset=utf-8"


def real(name: str) -> str:
    return (REAL / name).read_text(encoding="utf-8")


def real_json(name: str):
    return json.loads(real(name))


def as_contacts(elements: list) -> dict:
    """Xero's per-element answer under the key a Contacts answer uses (see SOURCES.md)."""
    return {"Id": "replay", "Status": "OK", "Contacts": elements}


@pytest.fixture
def client(xero):
    xero.add_organisation(CLIENT_ID, CLIENT_SECRET, name="Harbour Trust Ltd")
    return XeroClient(
        Credentials(CLIENT_ID, CLIENT_SECRET),
        token_url=xero.token_url,
        api_url=xero.api_url,
        timeout=5,
    )


def reaction(exc) -> Reaction:
    return react_to(exc, attempt=1).reaction


# --- whole-request errors: exception, reaction, words -----------------------------------------

ERRORS = [
    # (file, status, content type, call, exception, reaction, Xero's words in str(exc))
    (
        "contacts_get_400_query_parse_exception.xerojava347.json",
        400,
        JSON,
        "where",
        XeroValidationError,
        Reaction.GIVE_UP,
        "Syntax error",
    ),
    (
        "contacts_put_400_no_data_processed.xerophp48.json",
        400,
        JSON,
        "save",
        XeroValidationError,
        Reaction.GIVE_UP,
        "No data has been processed for this endpoint",
    ),
    (
        "contacts_post_400_summarized_name_taken.openapi.json",
        400,
        JSON,
        "save",
        XeroValidationError,
        Reaction.GIVE_UP,
        "The contact name Buzz Lightyear is already assigned to another contact. "
        "The contact name must be unique across all active contacts.",
    ),
    (
        "api_403_authentication_unsuccessful.laravelxero40.json",
        403,
        JSON,
        "list",
        XeroForbiddenError,
        Reaction.STOP,
        "(AuthenticationUnsuccessful)",
    ),
    (
        "api_403_authentication_unsuccessful.xerodocs.json",
        403,
        JSON,
        "list",
        XeroForbiddenError,
        Reaction.STOP,
        "(AuthenticationUnsuccessful)",
    ),
    (
        "api_404_not_found.pyxero_live.txt",
        404,
        "text/html",
        "ids",
        XeroNotFoundError,
        Reaction.GIVE_UP,  # as a reaction of its own; webhook events are kept (test_sync)
        "“The resource you're looking for cannot be found”",
    ),
    (
        "api_503_maintenance.xerodocs.txt",
        503,
        "text/plain",
        "save",
        XeroServerError,
        Reaction.RETRY,
        "(503): “The Xero API is currently offline for maintenance”",
    ),
    (
        "api_503_organisation_offline.xerocommunity.txt",
        503,
        "text/plain",
        "list",
        XeroServerError,
        Reaction.RETRY,
        "(503): “The Organisation is Offline”",
    ),
]


def _call(client, kind: str):
    if kind == "where":
        return client.list_contacts(page=1, page_size=10, where='Name=="x"')
    if kind == "save":
        return client.save_contacts([{"Name": "Replay"}], idempotency_key="replay-1")
    if kind == "ids":
        return client.get_contacts_by_ids(["717f2bfc-c6d4-41fd-b238-3f2f0c0cf777"])
    return client.list_contacts(page=1, page_size=10)


@pytest.mark.parametrize(
    ("name", "status", "content_type", "call", "kind", "reacts", "words"),
    ERRORS,
    ids=[case[0].split(".")[0] for case in ERRORS],
)
def test_real_error_answers(xero, client, name, status, content_type, call, kind, reacts, words):
    # Twice: a read that failed with a 5xx or a dropped connection is tried once more.
    xero.fail_next(status, body=real(name), content_type=content_type, times=2)
    with pytest.raises(kind) as caught:
        _call(client, call)
    assert type(caught.value) is kind
    assert reaction(caught.value) is reacts
    assert words in str(caught.value)
    assert caught.value.status_code == status


def test_a_query_parse_exception_on_a_look_up_refuses_that_value_only(xero, client):
    org = xero.org(CLIENT_ID)
    org.add_contact(Name="Kept Ltd")
    body = real("contacts_get_400_query_parse_exception.xerojava347.json")
    xero.fail_next(400, body=body, content_type=JSON, times=10, query_contains="asd")
    found = client.find_contacts(names=["Kept Ltd", "asd'asd"])
    assert [c.name for c in found.contacts] == ["Kept Ltd"]
    assert found.refused["asd'asd"].message == "Syntax error"
    assert "Xero said: Syntax error" in wording.could_not_look_up(found.refused["asd'asd"])


def test_expired_token_401_gets_one_new_token_then_stops(xero, client):
    body = real("api_401_token_expired.pyxero.json")
    xero.fail_next(401, body=body, content_type=JSON)
    assert client.list_contacts(page=1, page_size=10) == []  # a new token, and Xero answers
    assert xero.count("token") == 2
    xero.fail_next(401, body=body, content_type=JSON, times=2)
    with pytest.raises(XeroAuthError) as caught:
        client.list_contacts(page=1, page_size=10)
    assert type(caught.value) is XeroAuthError and reaction(caught.value) is Reaction.STOP
    assert "TokenExpired: token expired at 01/01/2001 00:00:00" in str(caught.value)
    assert xero.count("token") == 3


def test_authorization_unsuccessful_401_is_a_missing_scope_without_a_new_token(xero, client):
    body = real("api_401_authorization_unsuccessful_missing_scope.netstandard298.json")
    client.fetch_token()
    xero.fail_next(401, body=body, content_type=JSON)
    with pytest.raises(XeroScopeError) as caught:
        client.save_contacts([{"Name": "Replay"}], idempotency_key="replay-2")
    assert caught.value.code == "missing_scope" and reaction(caught.value) is Reaction.STOP
    assert "AuthorizationUnsuccessful" in str(caught.value)
    assert "accounting.contacts" in wording.CONNECTION_ERROR_REASONS["missing_scope"]
    assert xero.count("token") == 1


# --- per-item answers (summarizeErrors=false) ---------------------------------------------------


def test_a_per_element_error_keeps_xeros_message(xero, client):
    elements = real_json("banktransactions_put_200_summarize_false_item_error.openapi.json")
    xero.fail_next(200, body=as_contacts(elements["BankTransactions"]), content_type=JSON)
    [result] = client.save_contacts([{"Name": "Replay"}], idempotency_key="replay-3")
    assert not result.ok
    assert result.messages == [
        "The Contact must contain at least 1 of the following elements to identify the "
        "contact: Name, ContactID, ContactNumber"
    ]


def test_ok_warning_and_description_errors_as_xeros_docs_show_them(xero, client):
    text = re.sub(
        r"^\s*\.\.\.\n", "", real("receipts_summarize_false_mixed.xerodocs.txt"), flags=re.M
    )
    elements = json.loads(text)["Receipts"]
    xero.fail_next(200, body=as_contacts(elements), content_type=JSON)
    results = client.save_contacts([{"Name": f"R{i}"} for i in range(4)], idempotency_key="r-4")
    assert [r.ok for r in results] == [True, True, True, False]
    assert results[2].warnings == ["Error message"]  # WARNING: saved, with Xero's warning
    assert results[3].messages == ["Error message"]  # ValidationErrors[].Description


def test_an_ok_with_an_all_zero_contact_id_names_no_contact(xero, client):
    xero.fail_next(200, body=real("contacts_post_200.openapi.json"), content_type=JSON)
    [result] = client.save_contacts([{"Name": "Bruce Banner"}], idempotency_key="replay-5")
    assert result.ok and result.contact_id == "" and result.status == "ACTIVE"
    assert "gave no ContactID" in wording.NO_CONTACT_ID


# --- successful reads ------------------------------------------------------------------------


def test_a_paged_read_as_xero_sends_it(xero, client):
    xero.fail_next(200, body=real("contacts_get_paged_200.openapi.json"), content_type=JSON)
    # Xero's pagination says one page: no second request, though the page was "full".
    contacts = list(client.iter_contacts(page_size=2))
    assert [(c.name, c.email, c.status) for c in contacts] == [
        ("Katherine Warren", "kat.warren@clampett.com", "ACTIVE"),
        ("Lisa Parker", "lparker@parkerandco.com", "ACTIVE"),
    ]
    assert contacts[0].profile["Phones"][1]["PhoneNumber"] == "847-1294"
    assert xero.count("get_contacts") == 1


@pytest.mark.parametrize(
    ("name", "tenant"),
    [
        (
            "connections_200.openapi.json",
            ("fe79f7dd-b6d4-4a92-ba7b-538af6289c58", "Demo Company (NZ)"),
        ),
        (
            "connections_200_no_tenantName.xeropython_cassette.json",
            ("a46fcb6f-2773-40c4-a119-8aa08bca1e8e", ""),
        ),
    ],
)
def test_connections_with_and_without_a_tenant_name(xero, client, name, tenant):
    xero.fail_next(200, body=real(name), content_type=JSON, path_contains="/connections")
    [found] = client.get_tenants()
    assert (found.tenant_id, found.name) == tenant


# --- the token endpoint ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "code"),
    [
        ("token_400_invalid_client.xerodocs.json", "invalid_client"),
        ("token_400_unauthorized_client.xoauth9.json", "unauthorized_client"),
    ],
)
def test_token_refusals_stop_with_xeros_code(xero, client, name, code):
    xero.fail_next(400, body=real(name), content_type=JSON, path_contains="/connect/token")
    with pytest.raises(XeroAuthError) as caught:
        client.fetch_token()
    assert caught.value.code == code and reaction(caught.value) is Reaction.STOP
    assert code in str(caught.value)


def test_a_token_answer_with_more_than_asked_for(xero, client):
    body = real("token_200_refresh_grant.xeropython_cassette.json")
    xero.fail_next(200, body=body, content_type=JSON, path_contains="/connect/token")
    token = client.fetch_token()
    assert token.access_token == "xero-access-token"
    assert timedelta(minutes=28) < token.expires_at - datetime.now(UTC) <= timedelta(minutes=30)
    assert "accounting.contacts" in token.scope.split()


# --- 429: no real body is public; Xero's documented headers only ------------------------------


@pytest.mark.parametrize(
    ("headers", "limit", "reacts", "seconds"),
    [
        (
            {"X-DayLimit-Remaining": "0", "X-MinLimit-Remaining": "12", "Retry-After": "5400"},
            "day",
            Reaction.PAUSE,
            5400,
        ),
        ({"X-Rate-Limit-Problem": "Daily", "Retry-After": "600"}, "day", Reaction.PAUSE, 600),
        (
            {
                "X-Rate-Limit-Problem": "something-new",
                "X-MinLimit-Remaining": "0",
                "Retry-After": "20",
            },
            "minute",
            Reaction.WAIT,
            20,
        ),
        (
            {"X-AppMinLimit-Remaining": "0", "X-DayLimit-Remaining": "4000"},
            "appminute",
            Reaction.WAIT,
            60,
        ),
        ({}, "unknown", Reaction.WAIT, 60),
    ],
)
def test_a_429_is_classified_from_its_headers(xero, client, headers, limit, reacts, seconds):
    xero.fail_next(429, body="", headers=headers)
    with pytest.raises(XeroRateLimitError) as caught:
        client.list_contacts(page=1, page_size=10)
    decision = react_to(caught.value, attempt=1)
    assert (caught.value.limit, decision.reaction, decision.seconds) == (limit, reacts, seconds)


# --- webhook deliveries: Xero's bodies to Lookout's endpoint ----------------------------------


@pytest.mark.django_db
def test_xeros_webhook_bodies_at_lookouts_endpoint(client_factory, organisation):
    connection = make_connection(organisation, enabled=True)
    connection.webhook_key = "replay-key"
    connection.save()
    url = connection.webhook_path

    def deliver(name: str, key: str = "replay-key"):
        body = real(name).encode()
        return client_factory.post(
            url,
            data=body,
            content_type="application/json",
            HTTP_X_XERO_SIGNATURE=signature_of(key, body),
        )

    assert deliver("webhook_intent_to_receive.xerodocs.json").status_code == 200
    assert deliver("webhook_intent_to_receive.xerodocs.json", key="other").status_code == 401
    assert deliver("webhook_creditnote_create.openapi.json").status_code == 200
    assert not XeroWebhookEvent.objects.exists()  # another category: ignored
    assert deliver("webhook_contact_update.openapi.json").status_code == 200
    [event] = XeroWebhookEvent.objects.all()
    assert (event.xero_contact_id, event.event_type) == (
        "717f2bfc-c6d4-41fd-b238-3f2f0c0cf777",
        "UPDATE",
    )


@pytest.fixture
def client_factory():
    from django.test import Client

    return Client()
