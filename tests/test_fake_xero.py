"""Tests of the fake Xero itself, over real HTTP with plain ``requests``."""

from __future__ import annotations

import threading
from collections.abc import Iterator

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
    """Expired tokens say TokenExpired; unknown or missing ones AuthorizationUnsuccessful."""
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
        assert response.json()["Detail"] == "AuthorizationUnsuccessful"


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
        fake.delay_next(0.5, times=2)
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
        for thread in slow:
            thread.join()
    assert refused.status_code == 429
    assert refused.headers["X-Rate-Limit-Problem"] == "concurrent"
    assert "Retry-After" not in refused.headers
    assert statuses == [200, 200]


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
