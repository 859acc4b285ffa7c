"""The Xero client over real HTTP against the fake Xero: tokens, calls, and error classification."""

import threading
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote

import pytest
import requests

from lookout_xero.client import MAX_URL_LENGTH, Credentials, Token, XeroClient, classify_response
from lookout_xero.exceptions import (
    XeroAuthError,
    XeroError,
    XeroForbiddenError,
    XeroNotFoundError,
    XeroRateLimitError,
    XeroScopeError,
    XeroServerError,
    XeroTransportError,
    XeroValidationError,
)
from tests.helpers import CLIENT_ID, CLIENT_SECRET

NOT_FOUND_HTML = "The resource you're looking for cannot be found"


@pytest.fixture
def client(xero):
    xero.add_organisation(CLIENT_ID, CLIENT_SECRET, name="Harbour Trust Ltd")
    return XeroClient(
        Credentials(CLIENT_ID, CLIENT_SECRET, "accounting.contacts"),
        token_url=xero.token_url,
        api_url=xero.api_url,
        timeout=2,
    )


def test_token_is_fetched_once_and_shared_through_the_callback(xero, client):
    seen = []
    client.on_new_token = seen.append
    assert client.get_tenants()[0].name == "Harbour Trust Ltd"
    client.list_contacts(page=1, page_size=10)
    token_calls = [r for r in xero.requests if r.path == "/connect/token"]
    assert len(token_calls) == 1 and len(seen) == 1
    assert seen[0].expires_at > datetime.now(UTC) + timedelta(minutes=25)
    assert "access_token" not in repr(seen[0]) and seen[0].access_token not in repr(seen[0])


def test_empty_scope_sends_no_scope_parameter(xero):
    xero.add_organisation(CLIENT_ID, CLIENT_SECRET, reject_explicit_scope=True)
    client = XeroClient(
        Credentials(CLIENT_ID, CLIENT_SECRET, ""), token_url=xero.token_url, api_url=xero.api_url
    )
    client.fetch_token()
    assert b"scope" not in xero.requests[-1].body
    with pytest.raises(XeroScopeError):
        XeroClient(
            Credentials(CLIENT_ID, CLIENT_SECRET, "accounting.contacts"),
            token_url=xero.token_url,
            api_url=xero.api_url,
        ).fetch_token()


def test_wrong_secret_is_an_auth_error_without_the_secret_in_it(xero, client):
    bad = XeroClient(
        Credentials(CLIENT_ID, "wrong-secret"), token_url=xero.token_url, api_url=xero.api_url
    )
    with pytest.raises(XeroAuthError) as caught:
        bad.get_tenants()
    assert "invalid_client" in str(caught.value)
    assert "wrong-secret" not in str(caught.value) and "wrong-secret" not in repr(caught.value)
    assert not caught.value.retryable


def test_401_fetches_a_new_token_once_and_retries(xero, client):
    client.list_contacts(page=1, page_size=10)
    xero.expire_tokens()
    client.list_contacts(page=1, page_size=10)
    assert len([r for r in xero.requests if r.path == "/connect/token"]) == 2


def test_stale_cached_token_is_not_used(xero, client):
    client.token = Token("old", datetime.now(UTC) + timedelta(seconds=30))  # inside the margin
    client.list_contacts(page=1, page_size=10)
    assert xero.requests[0].path == "/connect/token"


def test_save_contacts_returns_per_item_results(xero, client):
    results = client.save_contacts(
        [{"Name": "Good"}, {"Name": "Bad", "EmailAddress": "nope"}], idempotency_key="k-1"
    )
    assert [r.ok for r in results] == [True, False]
    assert results[0].contact_id and results[1].messages == ["Email address must be valid."]
    sent = xero.requests[-1]
    assert sent.query["summarizeErrors"] == ["false"] and sent.header("Idempotency-Key") == "k-1"
    assert sent.header("User-Agent").startswith("lookout-xero/")


def test_replayed_idempotency_key_does_not_duplicate(xero, client):
    first = client.save_contacts([{"Name": "Once"}], idempotency_key="same")
    second = client.save_contacts([{"Name": "Once"}], idempotency_key="same")
    assert first[0].contact_id == second[0].contact_id
    assert len(xero.org(CLIENT_ID).contacts) == 1


def test_rate_limits_are_read_and_429_is_classified(xero, client):
    client.list_contacts(page=1, page_size=10)
    assert client.limits.minute_remaining == 59 and client.limits.day_remaining == 4999
    xero.org(CLIENT_ID).set_limits(minute_remaining=0)
    with pytest.raises(XeroRateLimitError) as caught:
        client.list_contacts(page=1, page_size=10)
    assert (
        caught.value.limit == "minute" and caught.value.retry_after >= 1 and caught.value.retryable
    )
    xero.org(CLIENT_ID).set_limits(minute_remaining=50, day_remaining=0)
    with pytest.raises(XeroRateLimitError) as caught:
        client.list_contacts(page=1, page_size=10)
    assert caught.value.limit == "day"


def test_outages_timeouts_and_drops_are_retryable(xero, client):
    client.fetch_token()
    xero.fail_next(503, times=2)  # a read is tried twice
    with pytest.raises(XeroServerError) as caught:
        client.list_contacts(page=1, page_size=10)
    assert caught.value.retryable and "offline" in caught.value.body_excerpt
    xero.drop_next(times=2)
    with pytest.raises(XeroTransportError):
        client.list_contacts(page=1, page_size=10)
    xero.delay_next(3)
    with pytest.raises(XeroTransportError) as caught:
        client.list_contacts(page=1, page_size=10)
    assert "timed out" in str(caught.value)


def test_a_read_xero_failed_once_is_tried_again_and_a_write_is_left_to_the_sync(xero, client):
    client.fetch_token()
    xero.fail_next(500)
    assert client.list_contacts(page=1, page_size=10) == []
    xero.drop_next()
    assert client.list_contacts(page=1, page_size=10) == []
    gets = [r for r in xero.requests if r.method == "GET" and "/Contacts" in r.path]
    assert len(gets) == 4
    xero.fail_next(500)
    with pytest.raises(XeroServerError):
        client.save_contacts([{"Name": "Once"}], idempotency_key="once-1")
    assert len([r for r in xero.requests if r.method == "POST" and "/Contacts" in r.path]) == 1


def test_iter_contacts_pages_through_everything_including_archived(xero, client):
    org = xero.org(CLIENT_ID)
    for i in range(25):
        org.add_contact(Name=f"C{i}", ContactStatus="ARCHIVED" if i % 5 == 0 else "ACTIVE")
    contacts = list(client.iter_contacts(page_size=10))
    assert len(contacts) == 25
    assert len([r for r in xero.requests if r.path.endswith("/Contacts")]) == 3


def test_find_contacts_builds_a_where_filter(xero, client):
    org = xero.org(CLIENT_ID)
    org.add_contact(Name="Plain Ltd", EmailAddress="q@example.org")
    org.add_contact(Name="Other", ContactNumber="LKT-9")
    found = client.find_contacts(numbers=["LKT-9"], emails=["Q@example.org"], names=["nobody"])
    assert sorted(c.name for c in found.contacts) == ["Other", "Plain Ltd"]
    assert found.refused == {}
    [get] = [r for r in xero.requests if r.kind == "get_contacts"]
    assert get.query["where"] == [
        'ContactNumber=="LKT-9" || EmailAddress=="Q@example.org" || Name=="nobody"'
    ]


def test_values_where_cannot_hold_are_searched_never_put_in_where(xero, client):
    """Xero's `where` has no escape for a quote (Xero-Java #347): such values go by searchTerm."""
    org = xero.org(CLIENT_ID)
    org.add_contact(Name='The "Friends" of Kauri', EmailAddress="friends@example.org")
    org.add_contact(Name="The Friends of Kauri Trust")  # found by the search, matched by no one
    org.add_contact(Name="Plain Ltd")
    found = client.find_contacts(
        numbers=["LKT-1"],
        emails=["back\\slash@example.org"],
        names=['The "Friends" of Kauri', "Plain Ltd", "Tab\tName"],
    )
    assert found.refused == {}
    assert {c.name for c in found.contacts} >= {'The "Friends" of Kauri', "Plain Ltd"}
    gets = [r for r in xero.requests if r.kind == "get_contacts"]
    wheres = [r.query["where"][0] for r in gets if "where" in r.query]
    assert wheres == ['ContactNumber=="LKT-1" || Name=="Plain Ltd"']
    searched = sorted(r.query["searchTerm"][0] for r in gets if "searchTerm" in r.query)
    assert searched == sorted(['The "Friends" of Kauri', "back\\slash@example.org", "Tab\tName"])
    assert all(r.status == 200 for r in gets)


def test_a_400_on_a_look_up_is_narrowed_to_the_values_that_caused_it(xero, client):
    """Xero's QueryParseException for one value costs that value, not the other look-ups."""
    org = xero.org(CLIENT_ID)
    for name in ("Alpha", "Beta", "Gamma", "Odd Name"):
        org.add_contact(Name=name)
    refusal = {"ErrorNumber": 16, "Type": "QueryParseException", "Message": "Syntax error"}
    # Xero refuses anything that contains "Odd Name", in `where` and in `searchTerm` alike.
    xero.fail_next(400, body=refusal, times=20, query_contains="Odd Name")
    found = client.find_contacts(names=["Alpha", "Beta", "Gamma", "Odd Name"])
    assert sorted(c.name for c in found.contacts) == ["Alpha", "Beta", "Gamma"]
    assert list(found.refused) == ["Odd Name"]
    assert found.refused["Odd Name"].message == "Syntax error"
    searched = [r for r in xero.requests if "searchTerm" in r.query]
    assert [r.query["searchTerm"] for r in searched] == [["Odd Name"]]


def _response(status, body=b"", headers=None):
    response = requests.Response()
    response.status_code = status
    response._content = body
    response.headers.update(headers or {})
    return response


@pytest.mark.parametrize(
    ("status", "body", "headers", "kind", "retryable"),
    [
        (200, b"{}", {}, None, None),
        (
            400,
            b'{"error":"invalid_client"}',
            {"Content-Type": "application/json"},
            XeroAuthError,
            False,
        ),
        (
            400,
            b'{"error":"invalid_scope"}',
            {"Content-Type": "application/json"},
            XeroScopeError,
            False,
        ),
        (
            400,
            b'{"Type":"ValidationException","Elements":[{"ValidationErrors":[{"Message":"m"}]}]}',
            {"Content-Type": "application/json"},
            XeroValidationError,
            False,
        ),
        (
            401,
            b'{"Detail":"TokenExpired: x"}',
            {"Content-Type": "application/json"},
            XeroAuthError,
            False,
        ),
        (403, b"{}", {"Content-Type": "application/json"}, XeroForbiddenError, False),
        (
            429,
            b"",
            {"X-Rate-Limit-Problem": "Minute", "Retry-After": "7"},
            XeroRateLimitError,
            True,
        ),
        (
            503,
            b"oauth_problem=rate%20limit%20exceeded",
            {"Content-Type": "application/x-www-form-urlencoded"},
            XeroRateLimitError,
            True,
        ),
        (
            503,
            b"The Xero API is currently offline for maintenance",
            {"Content-Type": "text/plain"},
            XeroServerError,
            True,
        ),
        (500, b"<html>oops</html>", {"Content-Type": "text/html"}, XeroServerError, True),
        (418, b"", {}, XeroError, False),
    ],
)
def test_classification(status, body, headers, kind, retryable):
    headers = {"Xero-Correlation-Id": "corr-1", **headers}
    error = classify_response(_response(status, body, headers))
    if kind is None:
        assert error is None
        return
    assert type(error) is kind and error.retryable is retryable
    assert error.status_code == status and error.correlation_id == "corr-1"
    if kind is XeroRateLimitError and status == 429:
        assert error.limit == "minute" and error.retry_after == 7


def test_find_contacts_keeps_each_url_within_xeros_length(xero, client):
    org = xero.org(CLIENT_ID)
    for i in range(60):
        org.add_contact(
            Name=f"Long Funder Name Number {i:03} Incorporated", EmailAddress=f"f{i}@example.org"
        )
    found = client.find_contacts(
        numbers=[f"LKT-{i}" for i in range(60)],
        emails=[f"f{i}@example.org" for i in range(60)],
        names=[f"Long Funder Name {i:03} Incorporated" for i in range(60)],
    )
    assert len(found.contacts) == 60  # each contact once, though it matched in several requests
    gets = [r for r in xero.requests if r.kind == "get_contacts"]
    assert len(gets) > 1 and all(r.status == 200 for r in gets)
    assert all(len("https://api.xero.com" + r.target) <= MAX_URL_LENGTH for r in gets)


def test_reads_by_ids_are_cut_by_url_length_not_by_a_count(xero, settings):
    """50 ids fit Xero's URL today; behind a longer base URL fewer do, and none crosses it."""
    xero.add_organisation(CLIENT_ID, CLIENT_SECRET)
    org = xero.org(CLIENT_ID)
    ids = [org.add_contact(Name=f"C{i}")["ContactID"] for i in range(120)]
    short = XeroClient(
        Credentials(CLIENT_ID, CLIENT_SECRET), token_url=xero.token_url, api_url=xero.api_url
    )
    assert len(short.get_contacts_by_ids(ids)) == 120
    reads = [r for r in xero.requests if "IDs" in r.query]
    assert [len(r.query["IDs"][0].split(",")) for r in reads] == [50, 50, 20]
    assert all(r.status == 200 for r in reads)
    # The same reads behind a longer base URL (a proxy's path): fewer ids a read, none lost.
    with _RecordingServer() as server:
        proxied = XeroClient(
            Credentials(CLIENT_ID, CLIENT_SECRET),
            token=Token("t", datetime.now(UTC) + timedelta(hours=1)),
            api_url=server.url + "/" + "p" * 300,
        )
        proxied.get_contacts_by_ids(ids)
    counts = [unquote(target).count(",") + 1 for target in server.targets]
    assert sum(counts) == 120 and max(counts) < 50
    assert all(len(server.url + target) <= MAX_URL_LENGTH for target in server.targets)


class _RecordingServer:
    """A loopback server that answers every GET with no contacts and records its targets."""

    def __init__(self):
        targets = self.targets = []

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                targets.append(self.path)
                body = b'{"Contacts": []}'
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self):
        # (A short poll: shutdown() waits for one, half a second by default.)
        threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


def test_a_404_on_a_read_by_ids_reads_them_again_in_halves(xero, client):
    """Xero's answer to a URL it finds too long is its HTML 404: halve, never lose the ids."""
    org = xero.org(CLIENT_ID)
    ids = [org.add_contact(Name=f"C{i}")["ContactID"] for i in range(4)]
    xero.fail_next(404, body=NOT_FOUND_HTML, content_type="text/html", query_contains=ids[0])
    assert sorted(c.name for c in client.get_contacts_by_ids(ids)) == ["C0", "C1", "C2", "C3"]
    reads = [len(r.query["IDs"][0].split(",")) for r in xero.requests if "IDs" in r.query]
    assert reads == [4, 2, 2]
    xero.fail_next(404, body=NOT_FOUND_HTML, content_type="text/html")
    with pytest.raises(XeroNotFoundError) as caught:
        client.get_contacts_by_ids(ids[:1])
    assert "The resource you're looking for cannot be found" in str(caught.value)
