"""Tests of the fake Xero itself, over real HTTP with plain ``requests``."""

from __future__ import annotations

import ast
import base64
import hashlib
import hmac
import json
import re
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import requests

from lookout_xero.testing.fake_xero import FakeOrg, FakeXero

CLIENT_ID = "client-a"
CLIENT_SECRET = "secret-a"
NAME_TAKEN = (
    "The contact name {} is already assigned to another contact. "
    "The contact name must be unique across all active contacts."
)


@pytest.fixture
def fake() -> Iterator[FakeXero]:
    """A started fake with one organisation."""
    server = FakeXero().start()
    server.add_organisation(CLIENT_ID, CLIENT_SECRET, "Org A")
    yield server
    server.stop()


@pytest.fixture
def org(fake: FakeXero) -> FakeOrg:
    """The fake's organisation."""
    return fake.org(CLIENT_ID)


@pytest.fixture
def api(fake: FakeXero) -> Iterator[requests.Session]:
    """A session carrying a valid bearer token for the organisation."""
    token = requests.post(
        fake.token_url,
        data={"grant_type": "client_credentials"},
        auth=(CLIENT_ID, CLIENT_SECRET),
        timeout=5,
    ).json()["access_token"]
    session = requests.Session()
    session.headers.update({"Authorization": f"Bearer {token}", "Accept": "application/json"})
    yield session
    session.close()


def contacts_url(fake: FakeXero, suffix: str = "") -> str:
    """The Contacts endpoint URL, optionally with a path suffix."""
    return f"{fake.api_url}/api.xro/2.0/Contacts{suffix}"


# ----------------------------------------------------------------------------- identity


def test_token_with_basic_auth_and_with_form_fields(fake: FakeXero) -> None:
    """Both client-authentication styles get a Bearer token with the org's scopes."""
    basic = requests.post(
        fake.token_url, data={"grant_type": "client_credentials"}, auth=(CLIENT_ID, CLIENT_SECRET)
    )
    form = requests.post(
        fake.token_url,
        data={
            "grant_type": "client_credentials",
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
        },
    )
    for response in (basic, form):
        assert response.status_code == 200
        body = response.json()
        assert body["token_type"] == "Bearer"
        assert body["expires_in"] == 1800
        assert body["scope"] == "accounting.contacts"
        assert body["access_token"]
    assert basic.json()["access_token"] != form.json()["access_token"]
    assert [r.status for r in fake.requests_for(CLIENT_ID)] == [200, 200]


def test_token_errors(fake: FakeXero) -> None:
    """Wrong secret, unknown client and wrong grant type give OAuth error JSON."""
    wrong = requests.post(
        fake.token_url, data={"grant_type": "client_credentials"}, auth=(CLIENT_ID, "nope")
    )
    unknown = requests.post(
        fake.token_url,
        data={"grant_type": "client_credentials", "client_id": "x", "client_secret": "y"},
    )
    grant = requests.post(
        fake.token_url, data={"grant_type": "password"}, auth=(CLIENT_ID, CLIENT_SECRET)
    )
    assert (wrong.status_code, wrong.json()) == (400, {"error": "invalid_client"})
    assert (unknown.status_code, unknown.json()) == (400, {"error": "invalid_client"})
    assert (grant.status_code, grant.json()) == (400, {"error": "unsupported_grant_type"})


def test_scope_rules(fake: FakeXero) -> None:
    """Unknown scopes are refused; reject_explicit_scope refuses any scope but not none."""
    granted = requests.post(
        fake.token_url,
        data={"grant_type": "client_credentials", "scope": "accounting.contacts"},
        auth=(CLIENT_ID, CLIENT_SECRET),
    )
    assert granted.status_code == 200
    extra = requests.post(
        fake.token_url,
        data={"grant_type": "client_credentials", "scope": "accounting.contacts openid"},
        auth=(CLIENT_ID, CLIENT_SECRET),
    )
    assert (extra.status_code, extra.json()) == (400, {"error": "invalid_scope"})

    fake.add_organisation("strict", "s3cret", scopes=("accounting.contacts", "accounting.settings"))
    fake.org("strict").reject_explicit_scope = True
    explicit = requests.post(
        fake.token_url,
        data={"grant_type": "client_credentials", "scope": "accounting.contacts"},
        auth=("strict", "s3cret"),
    )
    assert (explicit.status_code, explicit.json()) == (400, {"error": "invalid_scope"})
    implicit = requests.post(
        fake.token_url, data={"grant_type": "client_credentials"}, auth=("strict", "s3cret")
    )
    assert implicit.status_code == 200
    assert implicit.json()["scope"] == "accounting.contacts accounting.settings"


def test_expired_and_unknown_tokens_get_401(fake: FakeXero, api: requests.Session) -> None:
    """Expired tokens say TokenExpired; unknown or missing ones AuthenticationUnsuccessful."""
    assert api.get(contacts_url(fake)).status_code == 200
    fake.expire_tokens()
    expired = api.get(contacts_url(fake))
    assert expired.status_code == 401
    assert expired.json()["Title"] == "Unauthorized"
    assert expired.json()["Detail"].startswith("TokenExpired: token expired at ")
    unknown = requests.get(contacts_url(fake), headers={"Authorization": "Bearer bogus"})
    missing = requests.get(contacts_url(fake))
    for response in (unknown, missing):
        assert response.status_code == 401
        assert response.json()["Detail"] == "AuthenticationUnsuccessful"


def test_a_token_without_the_scope_gets_401_authorization_unsuccessful(fake: FakeXero) -> None:
    """As real Xero answers (Xero-NetStandard #298): 401, not 403, and the token is fine."""
    fake.add_organisation("no-contacts", "s3cret", scopes=("accounting.settings",))
    token = requests.post(
        fake.token_url, data={"grant_type": "client_credentials"}, auth=("no-contacts", "s3cret")
    ).json()["access_token"]
    answer = requests.get(contacts_url(fake), headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code == 401
    assert answer.json()["Detail"] == "AuthorizationUnsuccessful"


def test_tenant_header_and_connections(fake: FakeXero, org: FakeOrg, api: requests.Session) -> None:
    """/connections names the tenant; a wrong xero-tenant-id is 403, none or empty is fine."""
    connections = api.get(f"{fake.api_url}/connections")
    assert connections.status_code == 200
    [connection] = connections.json()
    assert connection["tenantId"] == org.tenant_id
    assert connection["tenantType"] == "ORGANISATION"
    assert connection["tenantName"] == "Org A"
    assert "X-MinLimit-Remaining" not in connections.headers
    assert org.calls_today == 0

    assert api.get(contacts_url(fake), headers={"xero-tenant-id": org.tenant_id}).ok
    assert api.get(contacts_url(fake), headers={"xero-tenant-id": ""}).ok
    wrong = api.get(contacts_url(fake), headers={"xero-tenant-id": "not-this-tenant"})
    assert wrong.status_code == 403
    assert wrong.json()["detail"] == "AuthenticationUnsuccessful"


# ----------------------------------------------------------------------------- contacts


def test_create_with_put_and_post_then_fetch(
    fake: FakeXero, org: FakeOrg, api: requests.Session
) -> None:
    """PUT and POST without ContactID both create; GET returns the standard phone types."""
    put = api.put(contacts_url(fake), json={"Contacts": [{"Name": "Alpha", "Website": "x.org"}]})
    post = api.post(contacts_url(fake), json={"Contacts": [{"Name": "Beta"}]})
    assert put.status_code == 200 and post.status_code == 200
    alpha = put.json()["Contacts"][0]
    assert alpha["ContactStatus"] == "ACTIVE"
    assert alpha["UpdatedDateUTC"].startswith("/Date(") and alpha["UpdatedDateUTC"].endswith(
        "+0000)/"
    )
    assert "Website" not in alpha
    fetched = api.get(contacts_url(fake, "/" + alpha["ContactID"])).json()["Contacts"][0]
    assert [p["PhoneType"] for p in fetched["Phones"]] == ["DEFAULT", "DDI", "FAX", "MOBILE"]
    assert {c["Name"] for c in org.contacts.values()} == {"Alpha", "Beta"}
    missing = api.get(contacts_url(fake, "/3f2a1d1e-0000-4000-8000-000000000000"))
    assert missing.status_code == 404
    assert "cannot be found" in missing.text


def test_put_with_contact_id_and_post_unknown_id_are_element_errors(
    fake: FakeXero, org: FakeOrg, api: requests.Session
) -> None:
    """PUT cannot update, and POST with an unknown ContactID does not create."""
    existing = org.add_contact(Name="Gamma")
    put = api.put(
        contacts_url(fake), json={"Contacts": [{"ContactID": existing["ContactID"], "Name": "G"}]}
    )
    unknown = api.post(
        contacts_url(fake),
        json={"Contacts": [{"ContactID": "3f2a1d1e-0000-4000-8000-000000000000", "Name": "D"}]},
    )
    assert put.status_code == 400 and unknown.status_code == 400
    assert "could not be found" in unknown.json()["Elements"][0]["ValidationErrors"][0]["Message"]
    assert [c["Name"] for c in org.contacts.values()] == ["Gamma"]


def test_update_keeps_omitted_fields_and_clears_empty_ones(
    fake: FakeXero, org: FakeOrg, api: requests.Session
) -> None:
    """Partial updates keep omitted fields, clear "" fields and merge phones by type."""
    created = org.add_contact(
        Name="Delta",
        EmailAddress="d@example.org",
        FirstName="Dee",
        ContactNumber="D-1",
        Phones=[{"PhoneType": "DEFAULT", "PhoneNumber": "111"}],
    )
    contact_id = created["ContactID"]
    response = api.post(
        contacts_url(fake, "/" + contact_id),
        json={
            "Contacts": [
                {"FirstName": "", "Phones": [{"PhoneType": "MOBILE", "PhoneNumber": "222"}]}
            ]
        },
    )
    assert response.status_code == 200
    stored = org.contacts[contact_id]
    assert stored["EmailAddress"] == "d@example.org"
    assert stored["ContactNumber"] == "D-1"
    assert "FirstName" not in stored
    numbers = {p["PhoneType"]: p["PhoneNumber"] for p in stored["Phones"]}
    assert numbers == {"DEFAULT": "111", "DDI": "", "FAX": "", "MOBILE": "222"}


def test_name_unique_among_active_contacts(
    fake: FakeXero, org: FakeOrg, api: requests.Session
) -> None:
    """A duplicate active name is refused; an archived contact's name may be reused."""
    archived = org.add_contact(Name="Echo Trust", ContactStatus="ARCHIVED")
    reused = api.put(contacts_url(fake), json={"Contacts": [{"Name": "Echo Trust"}]})
    assert reused.status_code == 200
    clash = api.put(contacts_url(fake), json={"Contacts": [{"Name": "ECHO trust"}]})
    assert clash.status_code == 400
    message = clash.json()["Elements"][0]["ValidationErrors"][0]["Message"]
    assert message == NAME_TAKEN.format("ECHO trust")
    restore = api.post(
        contacts_url(fake, "/" + archived["ContactID"]),
        json={"Contacts": [{"ContactStatus": "ACTIVE"}]},
    )
    assert restore.status_code == 400
    assert org.contacts[archived["ContactID"]]["ContactStatus"] == "ARCHIVED"
    assert len(org.find(name="echo trust")) == 2


def test_summarize_errors_false_gives_200_with_per_element_status(
    fake: FakeXero, org: FakeOrg, api: requests.Session
) -> None:
    """summarizeErrors=false answers 200 and marks each element OK or ERROR."""
    response = api.put(
        contacts_url(fake),
        params={"SummarizeErrors": "False"},
        json={"Contacts": [{"Name": "Fox"}, {"Name": "Golf", "EmailAddress": "not-an-email"}]},
    )
    assert response.status_code == 200
    ok, bad = response.json()["Contacts"]
    assert ok["StatusAttributeString"] == "OK" and ok["ContactID"] in org.contacts
    assert bad["StatusAttributeString"] == "ERROR"
    assert bad["HasValidationErrors"] is True
    assert bad["ValidationErrors"] == [{"Message": "Email address must be valid."}]
    assert [c["Name"] for c in org.contacts.values()] == ["Fox"]


def test_summarised_errors_give_400_but_save_valid_elements(
    fake: FakeXero, org: FakeOrg, api: requests.Session
) -> None:
    """By default a bad element makes the batch 400, yet the valid elements are saved."""
    response = api.post(
        contacts_url(fake),
        json={"Contacts": [{"Name": "Hotel"}, {"ContactNumber": "X" * 51}]},
    )
    assert response.status_code == 400
    body = response.json()
    assert (body["ErrorNumber"], body["Type"]) == (10, "ValidationException")
    [failed] = body["Elements"]
    messages = [e["Message"] for e in failed["ValidationErrors"]]
    assert "Contact Name cannot be empty." in messages
    assert any("ContactNumber must not be more than 50" in m for m in messages)
    assert [c["Name"] for c in org.contacts.values()] == ["Hotel"]

    empty = api.post(contacts_url(fake), json={"Contacts": []})
    assert empty.status_code == 400 and empty.json()["ErrorNumber"] == 17
    malformed = api.post(contacts_url(fake), data=b"{not json")
    assert malformed.status_code == 400
    assert malformed.headers["Content-Type"].startswith("text/plain")


def test_paging_include_archived_and_where(
    fake: FakeXero, org: FakeOrg, api: requests.Session
) -> None:
    """Paging reports pagination; archived are hidden by default; where supports ||."""
    for number in range(1, 6):
        org.add_contact(Name=f"Contact {number}", EmailAddress=f"c{number}@Example.org")
    org.add_contact(Name="Old One", ContactStatus="ARCHIVED")

    everything = api.get(contacts_url(fake)).json()
    assert "pagination" not in everything and len(everything["Contacts"]) == 5
    page = api.get(contacts_url(fake), params={"page": 2, "pageSize": 2}).json()
    assert page["pagination"] == {"page": 2, "pageSize": 2, "pageCount": 3, "itemCount": 5}
    assert [c["Name"] for c in page["Contacts"]] == ["Contact 3", "Contact 4"]
    archived = api.get(contacts_url(fake), params={"includeArchived": "true"}).json()
    assert len(archived["Contacts"]) == 6

    where = 'Name=="contact 1" || EmailAddress=="C4@EXAMPLE.ORG"'
    matched = api.get(contacts_url(fake), params={"where": where}).json()["Contacts"]
    assert [c["Name"] for c in matched] == ["Contact 1", "Contact 4"]
    both = 'Name=="Contact 2" && EmailAddress!=null'
    assert len(api.get(contacts_url(fake), params={"where": both}).json()["Contacts"]) == 1
    bad = api.get(contacts_url(fake), params={"where": 'Nope=="x"'})
    assert bad.status_code == 400 and bad.json()["Type"] == "QueryParseException"


def test_where_has_no_escape_for_a_quote_as_in_xero(
    fake: FakeXero, org: FakeOrg, api: requests.Session
) -> None:
    """A backslash-escaped quote is Xero's 400 "Syntax error" (Xero-Java #347); a backslash
    is an ordinary character; searchTerm finds the name instead, case-insensitively."""
    org.add_contact(Name='The "Friends" of Kauri', EmailAddress="friends@example.org")
    org.add_contact(Name="Back\\slash Ltd")
    escaped = api.get(contacts_url(fake), params={"where": 'Name=="The \\"Friends\\" of Kauri"'})
    assert escaped.status_code == 400
    assert escaped.json() == {
        "ErrorNumber": 16,
        "Type": "QueryParseException",
        "Message": "Syntax error",
    }
    backslash = api.get(contacts_url(fake), params={"where": 'Name=="back\\slash ltd"'})
    assert [c["Name"] for c in backslash.json()["Contacts"]] == ["Back\\slash Ltd"]
    for term in ('the "friends" OF kauri', "FRIENDS@example"):
        found = api.get(contacts_url(fake), params={"searchTerm": term}).json()["Contacts"]
        assert [c["Name"] for c in found] == ['The "Friends" of Kauri']


def test_urls_past_xeros_length_get_its_404_and_page_size_stops_at_1000(
    fake: FakeXero, org: FakeOrg, api: requests.Session
) -> None:
    """Xero answers 404 (its HTML text) above 2,091 characters of URL at api.xero.com."""
    base = "https://api.xero.com/api.xro/2.0/Contacts?IDs="
    longest = "a" * (2091 - len(base))
    assert api.get(contacts_url(fake), params={"IDs": longest}).status_code == 200
    too_long = api.get(contacts_url(fake), params={"IDs": longest + "b"})
    assert too_long.status_code == 404
    assert too_long.headers["Content-Type"].startswith("text/html")
    assert too_long.text == "The resource you're looking for cannot be found"
    for number in range(1002):
        org.add_contact(Name=f"Contact {number}")
    page = api.get(contacts_url(fake), params={"page": 1, "pageSize": 5000}).json()
    assert len(page["Contacts"]) == 1000
    assert page["pagination"] == {"page": 1, "pageSize": 1000, "pageCount": 2, "itemCount": 1002}


def test_idempotency_replay_and_mismatch(
    fake: FakeXero, org: FakeOrg, api: requests.Session
) -> None:
    """A repeated key replays the first response; the same key on another body is 400."""
    headers = {"Idempotency-Key": "key-1"}
    payload = {"Contacts": [{"Name": "India"}]}
    first = api.put(contacts_url(fake), json=payload, headers=headers)
    again = api.put(contacts_url(fake), json=payload, headers=headers)
    assert first.status_code == again.status_code == 200
    assert again.json() == first.json()
    assert len(org.contacts) == 1
    other = api.put(contacts_url(fake), json={"Contacts": [{"Name": "Juliet"}]}, headers=headers)
    assert other.status_code == 400
    assert "Idempotency Key: key-1 is used with a different request." in other.text
    too_long = api.put(contacts_url(fake), json=payload, headers={"Idempotency-Key": "k" * 129})
    assert too_long.status_code == 400
    assert len(org.contacts) == 1


# ----------------------------------------------------------------------------- limits and faults


def test_limit_headers_decrease(fake: FakeXero, api: requests.Session) -> None:
    """Each tenant call carries the remaining-limit headers, counting down."""
    first = api.get(contacts_url(fake))
    second = api.get(contacts_url(fake))
    assert first.headers["X-MinLimit-Remaining"] == "59"
    assert second.headers["X-MinLimit-Remaining"] == "58"
    assert second.headers["X-DayLimit-Remaining"] == "4998"
    assert int(second.headers["X-AppMinLimit-Remaining"]) < 10000


def test_minute_and_day_limits_give_429(
    fake: FakeXero, org: FakeOrg, api: requests.Session
) -> None:
    """Exhausted windows give 429 with the problem and Retry-After, and are not counted."""
    org.set_limits(minute_remaining=0)
    minute = api.get(contacts_url(fake))
    assert minute.status_code == 429
    assert minute.headers["X-Rate-Limit-Problem"] == "minute"
    assert 1 <= int(minute.headers["Retry-After"]) <= 60
    assert org.calls_this_minute == fake.minute_limit

    org.set_limits(minute_remaining=10, day_remaining=0)
    day = api.get(contacts_url(fake))
    assert day.status_code == 429
    assert day.headers["X-Rate-Limit-Problem"] == "day"
    assert int(day.headers["Retry-After"]) > 60

    org.set_limits(day_remaining=1)
    assert api.get(contacts_url(fake)).headers["X-DayLimit-Remaining"] == "0"


def test_fail_next_returns_plain_text_outage(fake: FakeXero, api: requests.Session) -> None:
    """fail_next answers the next matching request with the injected response only once."""
    fake.fail_next(503)
    outage = api.get(contacts_url(fake))
    assert outage.status_code == 503
    assert outage.headers["Content-Type"].startswith("text/plain")
    assert "offline" in outage.text
    assert api.get(contacts_url(fake)).status_code == 200


def test_drop_next_closes_the_connection(
    fake: FakeXero, org: FakeOrg, api: requests.Session
) -> None:
    """drop_next closes the socket; after_processing still saves the contact."""
    fake.drop_next()
    with pytest.raises(requests.ConnectionError):
        api.put(contacts_url(fake), json={"Contacts": [{"Name": "Kilo"}]})
    assert org.contacts == {}
    fake.drop_next(after_processing=True)
    with pytest.raises(requests.ConnectionError):
        api.put(contacts_url(fake), json={"Contacts": [{"Name": "Lima"}]})
    assert [c["Name"] for c in org.contacts.values()] == ["Lima"]
    assert api.get(contacts_url(fake)).status_code == 200


def test_concurrent_limit_gives_429_without_retry_after() -> None:
    """More calls in flight than concurrent_limit are refused with problem 'concurrent'."""
    with FakeXero(concurrent_limit=2) as fake:
        fake.add_organisation(CLIENT_ID, CLIENT_SECRET)
        token = requests.post(
            fake.token_url,
            data={"grant_type": "client_credentials"},
            auth=(CLIENT_ID, CLIENT_SECRET),
        ).json()["access_token"]
        headers = {"Authorization": f"Bearer {token}"}
        held = fake.delay_next(30, times=2)
        statuses: list[int] = []
        slow = [
            threading.Thread(
                target=lambda: statuses.append(
                    requests.get(contacts_url(fake), headers=headers).status_code
                )
            )
            for _ in range(2)
        ]
        for thread in slow:
            thread.start()
        assert fake.wait_for(lambda f: f.org(CLIENT_ID).in_flight == 2, timeout=2)
        refused = requests.get(contacts_url(fake), headers=headers)
        held.release()
        for thread in slow:
            thread.join()
    assert refused.status_code == 429
    assert refused.headers["X-Rate-Limit-Problem"] == "concurrent"
    assert "Retry-After" not in refused.headers
    assert statuses == [200, 200]


def test_a_delay_holds_the_answer_for_its_seconds_or_until_released(
    fake: FakeXero, api: requests.Session
) -> None:
    started = time.monotonic()
    fake.delay_next(0.3)
    assert api.get(contacts_url(fake), timeout=5).status_code == 200
    assert time.monotonic() - started >= 0.3

    held = fake.delay_next(30, times=2)
    answers: list[int] = []
    thread = threading.Thread(
        target=lambda: answers.append(api.get(contacts_url(fake), timeout=10).status_code)
    )
    thread.start()
    assert fake.wait_for(lambda f: f.org(CLIENT_ID).in_flight == 1, timeout=2)
    assert answers == []  # held
    held.release()
    thread.join(5)
    assert answers == [200]
    started = time.monotonic()
    api.get(contacts_url(fake), timeout=5)  # the second match: released, so not held
    assert time.monotonic() - started < 5

    fake.delay_next(30)
    thread = threading.Thread(target=lambda: api.get(contacts_url(fake), timeout=10))
    thread.start()
    assert fake.wait_for(lambda f: f.org(CLIENT_ID).in_flight == 1, timeout=2)
    fake.reset()  # a request still held is answered, not left for the next test
    thread.join(5)
    assert not thread.is_alive()


def test_request_log_and_reset(fake: FakeXero, api: requests.Session) -> None:
    """Requests are recorded with parsed JSON and status; reset clears everything."""
    api.put(contacts_url(fake), json={"Contacts": [{"Name": "Mike"}]}, params={"a": "1"})
    last = fake.requests[-1]
    assert (last.method, last.path, last.status) == ("PUT", "/api.xro/2.0/Contacts", 200)
    assert last.query == {"a": ["1"]}
    assert last.json == {"Contacts": [{"Name": "Mike"}]}
    assert last.client_id == CLIENT_ID
    assert last.header("Authorization").startswith("Bearer ")
    unknown = requests.get(f"{fake.url}/nowhere")
    assert unknown.status_code == 404
    fake.reset()
    assert fake.requests == []
    with pytest.raises(KeyError):
        fake.org(CLIENT_ID)


# ----------------------------------------------------------------------------- package shape


def test_the_fake_uses_only_the_standard_library_and_itself() -> None:
    """The fake runs anywhere: no third-party imports and none of lookout_xero's other code."""
    package = Path(__file__).resolve().parents[1] / "lookout_xero" / "testing" / "fake_xero"
    modules = sorted(package.glob("*.py"))
    assert len(modules) >= 6
    for module in modules:
        for node in ast.walk(ast.parse(module.read_text(), str(module))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                names = [node.module or ""]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                assert top in sys.stdlib_module_names or top == "__future__", (module.name, name)


# ----------------------------------------------------------------------------- merged contacts


def test_ids_lookup_finds_archived_and_only_paged_reads_show_merges(
    fake: FakeXero, org: FakeOrg, api: requests.Session
) -> None:
    """IDs finds archived contacts; MergedToContactID shows on paged reads and GET by id only."""
    loser = org.add_contact(Name="Old Trust")
    survivor = org.add_contact(Name="New Trust")
    org.merge(loser["ContactID"], survivor["ContactID"])
    ids = f"{loser['ContactID']},{survivor['ContactID']}"

    paged = api.get(contacts_url(fake), params={"IDs": ids, "page": 1}).json()["Contacts"]
    by_id = {c["ContactID"]: c for c in paged}
    assert by_id[loser["ContactID"]]["ContactStatus"] == "ARCHIVED"
    assert by_id[loser["ContactID"]]["MergedToContactID"] == survivor["ContactID"]
    assert "MergedToContactID" not in by_id[survivor["ContactID"]]

    unpaged = api.get(contacts_url(fake), params={"IDs": ids}).json()["Contacts"]
    assert len(unpaged) == 2
    assert all("MergedToContactID" not in c for c in unpaged)
    archived = api.get(contacts_url(fake), params={"includeArchived": "true"}).json()
    assert all("MergedToContactID" not in c for c in archived["Contacts"])
    assert [c["Name"] for c in api.get(contacts_url(fake)).json()["Contacts"]] == ["New Trust"]

    one = api.get(contacts_url(fake, "/" + loser["ContactID"])).json()["Contacts"][0]
    assert one["MergedToContactID"] == survivor["ContactID"]
    written = api.post(
        contacts_url(fake, "/" + loser["ContactID"]), json={"Contacts": [{"FirstName": "X"}]}
    )
    assert written.status_code == 200
    assert "MergedToContactID" not in written.json()["Contacts"][0]
    assert org.contacts[loser["ContactID"]]["MergedToContactID"] == survivor["ContactID"]


def test_merge_rules_and_chains(org: FakeOrg) -> None:
    """Merges chain X→Y→Z; merging into itself, an archived or an unknown contact is refused."""
    x, y, z = (org.add_contact(Name=name)["ContactID"] for name in ("X", "Y", "Z"))
    change = org.merge(x, y)
    assert change.delivery is None  # no webhook configured: the change still happens
    assert change.contact["MergedToContactID"] == y
    org.merge(y, z)
    assert org.contacts[x]["MergedToContactID"] == y
    assert org.contacts[y]["MergedToContactID"] == z
    assert org.contacts[y]["ContactStatus"] == "ARCHIVED"

    spare = org.add_contact(Name="Spare")["ContactID"]
    for into, message in ((spare, "itself"), (x, "ACTIVE"), ("no-such-id", "No contact")):
        with pytest.raises(ValueError, match=message):
            org.merge(spare, into)
    with pytest.raises(ValueError, match="merged into another cannot be restored"):
        org.restore(x)
    assert org.contacts[spare]["ContactStatus"] == "ACTIVE"
    assert "MergedToContactID" not in org.contacts[spare]


# ----------------------------------------------------------------------------- bookkeeper


def test_bookkeeper_archive_restore_gdpr_and_edit(org: FakeOrg) -> None:
    """Each action changes the stored contact as Xero's screens would, or refuses clearly."""
    contact_id = org.add_contact(Name="Kite Trust", EmailAddress="k@example.org")["ContactID"]
    before = org.contacts[contact_id]["UpdatedDateUTC"]
    time.sleep(0.01)

    assert org.archive(contact_id).contact["ContactStatus"] == "ARCHIVED"
    assert org.contacts[contact_id]["UpdatedDateUTC"] != before
    with pytest.raises(ValueError, match="Only an ACTIVE contact can be archived"):
        org.archive(contact_id)
    clash = org.add_contact(Name="KITE TRUST")["ContactID"]
    with pytest.raises(ValueError, match="must be unique across all active contacts"):
        org.restore(contact_id)
    org.archive(clash)
    assert org.restore(contact_id).contact["ContactStatus"] == "ACTIVE"

    edited = org.edit(contact_id, EmailAddress="", Phones=[{"PhoneNumber": "555"}])
    assert "EmailAddress" not in edited.contact
    assert org.contacts[contact_id]["Phones"][0]["PhoneNumber"] == "555"
    with pytest.raises(ValueError, match="ContactStatus cannot be edited"):
        org.edit(contact_id, ContactStatus="ACTIVE")
    with pytest.raises(ValueError, match="Email address must be valid"):
        org.edit(contact_id, EmailAddress="nope")
    org.edit(clash, Name="kite trust")  # an archived contact may share an active name...
    with pytest.raises(ValueError, match="already assigned"):
        org.restore(clash)  # ...but cannot come back under it
    third = org.add_contact(Name="Third")["ContactID"]
    with pytest.raises(ValueError, match="already assigned"):
        org.edit(third, Name="Kite Trust")

    assert org.gdpr_request(contact_id).contact["ContactStatus"] == "GDPRREQUEST"
    with pytest.raises(ValueError, match="already under a GDPR request"):
        org.gdpr_request(contact_id)
    with pytest.raises(ValueError, match="No contact"):
        org.archive("missing")
    created = org.create(Name="Brand New", EmailAddress="n@example.org").contact
    assert org.contacts[created["ContactID"]]["Name"] == "Brand New"
    with pytest.raises(ValueError, match="already assigned"):
        org.create(Name="brand new")


# ----------------------------------------------------------------------------- webhooks

WEBHOOK_KEY = "rK9+webhook/signing==key"
EVENT_KEYS = {
    "resourceUrl",
    "resourceId",
    "eventDateUtc",
    "eventType",
    "eventCategory",
    "tenantId",
    "tenantType",
}


def xero_signature(key: str, body: bytes) -> str:
    """Xero's documented signature, computed here independently of the fake."""
    return base64.b64encode(hmac.new(key.encode(), body, hashlib.sha256).digest()).decode()


class Receiver:
    """A tiny webhook endpoint over real HTTP that checks signatures as the app must."""

    def __init__(self, key: str = WEBHOOK_KEY) -> None:
        self.key = key
        self.received: list[tuple[dict[str, str], bytes]] = []
        self.before_answer: Callable[[bytes], None] | None = None
        self.answer: Callable[[bool], tuple[int, bytes, dict[str, str]]] = self.as_xero_asks
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                headers = {k.lower(): v for k, v in self.headers.items()}
                receiver.received.append((headers, body))
                valid = hmac.compare_digest(
                    headers.get("x-xero-signature", ""), xero_signature(receiver.key, body)
                )
                if receiver.before_answer:
                    receiver.before_answer(body)
                status, content, extra = receiver.answer(valid)
                self.send_response(status)
                for name, value in extra.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(content)))
                self.end_headers()
                self.wfile.write(content)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/xero/webhooks/abc123/"
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()

    @staticmethod
    def as_xero_asks(valid: bool) -> tuple[int, bytes, dict[str, str]]:
        return (200, b"", {}) if valid else (401, b"", {})

    def payloads(self) -> list[dict]:
        return [json.loads(body) for _, body in self.received]

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """A webhook receiver that answers 200 to correct signatures and 401 to others."""
    endpoint = Receiver()
    yield endpoint
    endpoint.stop()


def test_bookkeeper_changes_fire_signed_webhooks_as_xero_documents(
    org: FakeOrg, receiver: Receiver
) -> None:
    """Every action sends one correctly signed CONTACT event, numbered in sequence."""
    org.set_webhook(receiver.url, WEBHOOK_KEY)
    wren = org.add_contact(Name="Wren")["ContactID"]
    finch = org.add_contact(Name="Finch")["ContactID"]
    assert receiver.received == []  # seeding is not a bookkeeper action

    archived = org.archive(wren)
    assert archived.delivery is not None and archived.delivery.status == 200
    assert archived.delivery.as_xero_expects
    [(headers, body)] = receiver.received
    assert headers["x-xero-signature"] == xero_signature(WEBHOOK_KEY, body)
    assert headers["content-type"].startswith("application/json")
    payload = json.loads(body)
    assert set(payload) == {"events", "firstEventSequence", "lastEventSequence", "entropy"}
    assert (payload["firstEventSequence"], payload["lastEventSequence"]) == (1, 1)
    assert re.fullmatch(r"[A-Z]{20}", payload["entropy"])
    [event] = payload["events"]
    assert set(event) == EVENT_KEYS
    assert event["resourceUrl"] == f"https://api.xero.com/api.xro/2.0/Contacts/{wren}"
    assert event["resourceId"] == wren
    assert (event["eventType"], event["eventCategory"]) == ("UPDATE", "CONTACT")
    assert (event["tenantId"], event["tenantType"]) == (org.tenant_id, "ORGANISATION")
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}", event["eventDateUtc"])

    created = org.create(Name="Heron").contact["ContactID"]
    org.restore(wren)
    org.edit(finch, FirstName="Fin")
    org.gdpr_request(finch)
    org.merge(wren, created)
    events = [
        (p["events"][0]["eventType"], p["events"][0]["resourceId"]) for p in receiver.payloads()
    ]
    assert events == [
        ("UPDATE", wren),
        ("CREATE", created),
        ("UPDATE", wren),
        ("UPDATE", finch),
        ("UPDATE", finch),
        ("UPDATE", wren),
    ]
    assert [p["lastEventSequence"] for p in receiver.payloads()] == [1, 2, 3, 4, 5, 6]
    assert len({p["entropy"] for p in receiver.payloads()}) == 6
    assert all(
        headers["x-xero-signature"] == xero_signature(WEBHOOK_KEY, body)
        for headers, body in receiver.received
    )
    assert [d.status for d in org.webhook_deliveries] == [200] * 6
    org.set_webhook(None)
    assert org.edit(finch, LastName="Bird").delivery is None
    assert len(receiver.received) == 6


def test_a_wrong_key_gets_401_and_the_change_still_happens(
    fake: FakeXero, receiver: Receiver
) -> None:
    """Configured at add_organisation; a receiver with another key refuses the delivery."""
    org = fake.add_organisation("client-b", "secret-b", webhook_url=receiver.url, webhook_key="k2")
    contact_id = org.add_contact(Name="Stork")["ContactID"]
    change = org.archive(contact_id)
    assert change.delivery is not None
    assert (change.delivery.status, change.delivery.as_xero_expects) == (401, False)
    assert org.contacts[contact_id]["ContactStatus"] == "ARCHIVED"
    with pytest.raises(ValueError, match="signing key"):
        org.set_webhook(receiver.url)


def test_intent_to_receive_checks_both_answers(org: FakeOrg, receiver: Receiver) -> None:
    """Xero's check: the signed empty payload needs 200 (empty, no cookie), the other 401."""
    org.set_webhook(receiver.url, WEBHOOK_KEY)
    deliveries = org.send_intent_to_receive()
    assert [(d.correctly_signed, d.status) for d in deliveries] == [(True, 200), (False, 401)]
    assert all(d.as_xero_expects for d in deliveries)
    assert all(0 <= d.seconds < 5 and d.sent_at for d in deliveries)
    for payload in receiver.payloads():
        assert payload["events"] == []
        assert (payload["firstEventSequence"], payload["lastEventSequence"]) == (0, 0)
    (good_headers, good_body), (bad_headers, bad_body) = receiver.received
    assert good_headers["x-xero-signature"] == xero_signature(WEBHOOK_KEY, good_body)
    assert bad_headers["x-xero-signature"] != xero_signature(WEBHOOK_KEY, bad_body)

    receiver.answer = lambda valid: (200, b"", {})  # accepts anything
    assert [d.as_xero_expects for d in org.send_intent_to_receive()] == [True, False]
    receiver.answer = lambda valid: (200, b"thanks", {}) if valid else (401, b"", {})
    assert not org.send_intent_to_receive()[0].as_xero_expects
    receiver.answer = lambda valid: (200, b"", {"Set-Cookie": "s=1"}) if valid else (401, b"", {})
    assert not org.send_intent_to_receive()[0].as_xero_expects
    assert len(org.webhook_deliveries) == 8


def test_deliveries_record_time_failures_and_timeouts(receiver: Receiver) -> None:
    """A slow answer is timed; no listener or a timeout leaves no status and an error."""
    with FakeXero(webhook_timeout=0.3) as fake:
        org = fake.add_organisation(
            CLIENT_ID, CLIENT_SECRET, webhook_url=receiver.url, webhook_key=WEBHOOK_KEY
        )
        ids = [org.add_contact(Name=f"Bird {n}")["ContactID"] for n in range(3)]
        receiver.before_answer = lambda body: time.sleep(0.1)
        slow = org.archive(ids[0]).delivery
        assert slow is not None and slow.status == 200 and slow.seconds >= 0.1

        receiver.before_answer = lambda body: time.sleep(0.6)
        timed_out = org.archive(ids[1]).delivery
        assert timed_out is not None and timed_out.status is None
        assert "timed out" in (timed_out.error or "")

        closed = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
        port = closed.server_address[1]
        closed.server_close()
        org.set_webhook(f"http://127.0.0.1:{port}/hook/", WEBHOOK_KEY)
        refused = org.archive(ids[2]).delivery
        assert refused is not None and refused.status is None and refused.error
        assert not refused.as_xero_expects
        assert org.contacts[ids[2]]["ContactStatus"] == "ARCHIVED"


def test_the_fake_answers_the_api_while_a_receiver_thinks(
    fake: FakeXero, org: FakeOrg, api: requests.Session, receiver: Receiver
) -> None:
    """A receiver may read the contact back from the fake before it answers the webhook."""
    org.set_webhook(receiver.url, WEBHOOK_KEY)
    contact_id = org.add_contact(Name="Swift")["ContactID"]
    seen: list[tuple[int, str]] = []

    def read_back(body: bytes) -> None:
        response = requests.get(
            contacts_url(fake, "/" + contact_id), headers=dict(api.headers), timeout=5
        )
        seen.append((response.status_code, response.json()["Contacts"][0]["ContactStatus"]))

    receiver.before_answer = read_back
    assert org.archive(contact_id).delivery.status == 200
    assert seen == [(200, "ARCHIVED")]


def test_a_batch_is_one_delivery_and_resend_replays_it(org: FakeOrg, receiver: Receiver) -> None:
    """webhook_batch() sends several events at once; resend() sends the same bytes again."""
    org.set_webhook(receiver.url, WEBHOOK_KEY)
    first, second = (org.add_contact(Name=n)["ContactID"] for n in ("Owl", "Rook"))
    with org.webhook_batch() as batch:
        assert org.archive(first).delivery is None
        org.edit(second, FirstName="R")
        assert receiver.received == []
    assert batch.delivery is not None and batch.delivery.status == 200
    [payload] = receiver.payloads()
    assert [e["resourceId"] for e in payload["events"]] == [first, second]
    assert (payload["firstEventSequence"], payload["lastEventSequence"]) == (1, 2)

    again = org.resend(batch.delivery)
    assert again.status == 200
    assert receiver.received[1][1] == receiver.received[0][1]
    assert (
        receiver.received[1][0]["x-xero-signature"] == receiver.received[0][0]["x-xero-signature"]
    )
    assert org.restore(first).delivery.payload["firstEventSequence"] == 3


# ----------------------------------------------------------------------------- counting calls


def test_calls_can_be_counted_by_kind(fake: FakeXero, org: FakeOrg, api: requests.Session) -> None:
    """Each request is named after Xero's operation, so tests can count them."""
    contact_id = org.add_contact(Name="Tern")["ContactID"]
    api.get(contacts_url(fake), params={"IDs": contact_id, "page": 1})
    api.get(contacts_url(fake, "/" + contact_id))
    api.put(contacts_url(fake), json={"Contacts": [{"Name": "Gull"}]})
    api.post(contacts_url(fake), json={"Contacts": [{"ContactID": contact_id, "FirstName": "T"}]})
    api.post(contacts_url(fake, "/" + contact_id), json={"Contacts": [{"LastName": "N"}]})
    api.get(f"{fake.api_url}/connections")
    api.get(contacts_url(fake, "/" + contact_id + "/History"))

    assert fake.call_counts(CLIENT_ID) == Counter(
        {
            "token": 1,
            "get_contacts": 1,
            "get_contact": 1,
            "create_contacts": 1,
            "update_or_create_contacts": 1,
            "update_contact": 1,
            "connections": 1,
            "other": 1,
        }
    )
    assert fake.count("update_contact", "update_or_create_contacts") == 2
    assert fake.count() == len(fake.requests) == 8
    assert fake.count("get_contacts", client_id="someone-else") == 0
    writes = fake.writes_to(contact_id.upper())
    assert [r.kind for r in writes] == ["update_or_create_contacts", "update_contact"]
    assert fake.requests[1].contact_ids == {contact_id}
    assert [r.is_write for r in fake.requests[1:6]] == [False, False, True, True, True]


# ----------------------------------------------------------------------------- for people


def test_control_endpoint_lets_a_person_act_as_the_bookkeeper(
    fake: FakeXero, org: FakeOrg, receiver: Receiver
) -> None:
    """/_bookkeeper/<action> takes JSON, names contacts by name or number, and is not logged."""

    def act(action: str, **body: object) -> requests.Response:
        return requests.post(f"{fake.url}/_bookkeeper/{action}", json=body, timeout=10)

    hook = act("webhook", url=receiver.url, key=WEBHOOK_KEY)
    assert hook.json() == {"url": receiver.url, "key": WEBHOOK_KEY}
    check = act("intent-to-receive").json()
    assert check["passed"] is True
    assert [d["status"] for d in check["deliveries"]] == [200, 401]

    loser = org.add_contact(Name="Lark Trust")["ContactID"]
    survivor = org.add_contact(Name="Lark Trust Ltd", ContactNumber="L-2")["ContactID"]
    merged = act("merge", **{"from": "lark trust", "into": "L-2"})
    assert merged.status_code == 200
    assert merged.json()["contact"]["MergedToContactID"] == survivor
    assert merged.json()["webhook"]["status"] == 200
    assert receiver.payloads()[-1]["events"][0]["resourceId"] == loser

    refused = act("archive", contact=loser)
    assert refused.status_code == 400
    assert "Only an ACTIVE contact can be archived" in refused.json()["error"]
    assert act("archive").json() == {"error": "Missing 'contact' in the request."}
    edited = act("edit", contact="L-2", fields={"EmailAddress": "lark@example.org"})
    assert edited.json()["contact"]["EmailAddress"] == "lark@example.org"
    assert act("gdpr", contact=survivor).json()["contact"]["ContactStatus"] == "GDPRREQUEST"
    created = act("create", fields={"Name": "Plover"}).json()
    assert created["webhook"]["as_xero_expects"] is True
    listed = requests.get(f"{fake.url}/_bookkeeper/contacts", timeout=5).json()["contacts"]
    assert {c["Name"]: c["MergedToContactID"] for c in listed} == {
        "Lark Trust": survivor,
        "Lark Trust Ltd": None,
        "Plover": None,
    }
    assert act("teleport").status_code == 404
    made_up = act("webhook", url=receiver.url).json()["key"]
    assert len(base64.b64decode(made_up)) == 64

    fake.add_organisation("client-b", "secret-b")
    assert "client_id is needed" in act("contacts").json()["error"]
    assert act("contacts", client_id="client-b").json() == {"contacts": []}
    assert fake.requests == [] and org.calls_today == 0


def test_command_line_serves_and_acts_as_the_bookkeeper(receiver: Receiver) -> None:
    """`python -m …fake_xero` serves the demo; its `bookkeeper` command acts on it."""
    root = Path(__file__).resolve().parents[1]
    module = [sys.executable, "-m", "lookout_xero.testing.fake_xero"]
    server = subprocess.Popen(
        [
            *module,
            "--port",
            "0",
            "--seed-contacts",
            "2",
            "--webhook-url",
            receiver.url,
            "--webhook-key",
            WEBHOOK_KEY,
        ],
        cwd=root,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        url = re.search(r"Fake Xero at (\S+)", server.stdout.readline())[1]

        def bookkeeper(*args: str) -> subprocess.CompletedProcess:
            return subprocess.run(
                [*module, "bookkeeper", "--xero", url, *args],
                cwd=root,
                capture_output=True,
                text=True,
                timeout=30,
            )

        archived = bookkeeper("archive", "Existing Contact 1")
        assert archived.returncode == 0, archived.stderr
        answer = json.loads(archived.stdout)
        assert answer["contact"]["ContactStatus"] == "ARCHIVED"
        assert answer["webhook"]["status"] == 200
        [(headers, body)] = receiver.received
        assert headers["x-xero-signature"] == xero_signature(WEBHOOK_KEY, body)

        again = bookkeeper("archive", "Existing Contact 1")
        assert again.returncode == 1 and "Only an ACTIVE" in again.stdout
        edited = bookkeeper(
            "edit",
            "EXISTING-0002",
            "FirstName=Ada",
            'Phones=[{"PhoneType": "MOBILE", "PhoneNumber": "021"}]',
        )
        assert json.loads(edited.stdout)["contact"]["ContactStatus"] == "ACTIVE"
        listed = json.loads(bookkeeper("contacts").stdout)["contacts"]
        assert [c["ContactStatus"] for c in listed] == ["ARCHIVED", "ACTIVE"]
    finally:
        server.terminate()
        server.wait(timeout=10)


def test_deliver_webhook_sends_any_body_signed_or_not(org: FakeOrg, receiver: Receiver) -> None:
    """Own payloads for receiver tests: signed by default, tampered, or with no signature."""
    org.set_webhook(receiver.url, WEBHOOK_KEY)
    invoice = json.dumps(
        {
            "events": [{"resourceId": "x", "eventCategory": "INVOICE", "tenantId": "other"}],
            "firstEventSequence": 7,
            "lastEventSequence": 7,
            "entropy": "ABC",
        }
    ).encode()
    signed = org.deliver_webhook(invoice)
    assert (signed.correctly_signed, signed.status, signed.events[0]["eventCategory"]) == (
        True,
        200,
        "INVOICE",
    )
    tampered = org.deliver_webhook(invoice.replace(b"7", b"8"), signature=signed.signature)
    assert (tampered.correctly_signed, tampered.status, tampered.as_xero_expects) == (
        False,
        401,
        True,
    )
    unsigned = org.deliver_webhook(b"not json", signature="")
    assert (unsigned.status, unsigned.events) == (401, [])
    assert "x-xero-signature" not in receiver.received[-1][0]
    assert receiver.received[0][1] == invoice


def test_requests_say_when_they_were_answered_and_the_peak_in_flight_is_counted(
    fake: FakeXero, api: requests.Session
) -> None:
    """Benchmarks read how many calls of one organisation Xero had in hand at once."""
    fake.delay_next(0.5, times=3, method="GET")
    threads = [
        threading.Thread(target=api.get, args=(contacts_url(fake),), kwargs={"timeout": 5})
        for _ in range(3)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    api.get(contacts_url(fake), timeout=5)  # a fourth, alone
    gets = [r for r in fake.requests_for(CLIENT_ID) if r.method == "GET"]
    assert len(gets) == 4 and all(r.answered_at >= r.received_at for r in gets)
    assert fake.peak_in_flight(CLIENT_ID) == 3
    fake.fail_next(429, headers={"X-Rate-Limit-Problem": "minute", "Retry-After": "5"})
    api.get(contacts_url(fake), timeout=5)
    assert fake.requests_for(CLIENT_ID)[-1].rate_limit_problem == "minute"
