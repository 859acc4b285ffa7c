"""Secrets never reach an error report, and never travel where Xero did not send them.

Django's own `SafeExceptionReporterFilter` and `ExceptionReporter` (what ADMINS e-mails and
error trackers use) are asked what they would show; the redirects are real 307s on loopback.
"""

from __future__ import annotations

import os
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.core.signals import got_request_exception
from django.db.models.signals import pre_save
from django.urls import reverse
from django.views.debug import ExceptionReporter, SafeExceptionReporterFilter

from lookout_xero import credentials
from lookout_xero.client import Credentials, XeroClient
from lookout_xero.exceptions import XeroError
from lookout_xero.models import XeroConnection
from tests.helpers import CLIENT_ID, CLIENT_SECRET, make_connection

NEW_SECRET = "n3w-secret-ALSO-DO-NOT-LEAK"
WEBHOOK_KEY = "webhook-key-DO-NOT-LEAK-0123456789"
STARS = SafeExceptionReporterFilter.cleansed_substitute

pytestmark = pytest.mark.django_db


def admin_url(name, *args):
    return reverse(f"admin:lookout_xero_{name}", args=args)


class Boom(Exception):
    """Stands for any failure deep inside a view (a database error, a bug)."""


@pytest.fixture
def failing_save():
    """Once armed, saving a connection fails, as a database error would, after the form is
    cleaned."""

    def fail(sender, instance, **kwargs):
        raise Boom("the database went away")

    def arm():
        pre_save.connect(fail, sender=XeroConnection, dispatch_uid="test-failing-save")

    yield arm
    pre_save.disconnect(sender=XeroConnection, dispatch_uid="test-failing-save")


def failed_request(client, path, data):
    """Post, let the view fail, and return the request as Django's handler saw it, and the error."""
    seen = {}

    def keep(sender, request, **kwargs):
        seen["request"] = request

    got_request_exception.connect(keep, weak=False, dispatch_uid="test-keep-request")
    try:
        with pytest.raises(Exception) as caught:
            client.post(path, data)
    finally:
        got_request_exception.disconnect(dispatch_uid="test-keep-request")
    return seen["request"], caught.value


def report_of(client, path, data) -> tuple[str, SafeExceptionReporterFilter, object]:
    """The error report Django would send the ADMINS for a failed post."""
    request, error = failed_request(client, path, data)
    reporter = ExceptionReporter(request, type(error), error, error.__traceback__)
    return reporter.get_traceback_text(), reporter.filter, request


def handler_frames(error):
    """The traceback's frames from Django's request handler down: what a report of a real
    request holds (the test client's own frames above it carry the test's post data)."""
    tb = error.__traceback__
    inside = False
    while tb is not None:
        inside = inside or tb.tb_frame.f_code.co_filename.endswith(
            os.path.join("django", "core", "handlers", "base.py")
        )
        if inside:
            yield tb.tb_frame
        tb = tb.tb_next


# --- the admin's connection form and Test connection ---------------------------------------


def test_an_error_report_from_the_connection_form_shows_stars_for_the_secrets(
    admin_client, organisation, failing_save
):
    connection = make_connection(organisation)
    failing_save()
    data = {
        "client_id": CLIENT_ID,
        "client_secret": NEW_SECRET,
        "scope": "accounting.contacts",
        "webhook_key": WEBHOOK_KEY,
    }
    text, report_filter, request = report_of(
        admin_client, admin_url("xeroconnection_change", connection.pk), data
    )
    assert "the database went away" in text  # the report is the real one
    post = report_filter.get_post_parameters(request)
    assert post["client_secret"] == STARS and post["webhook_key"] == STARS
    assert post["client_id"] == CLIENT_ID  # only what is secret is hidden
    for secret in (NEW_SECRET, WEBHOOK_KEY, CLIENT_SECRET):
        assert secret not in text


def test_an_error_report_from_adding_a_connection_shows_stars(
    admin_client, organisation, failing_save
):
    failing_save()
    data = {
        "organisation": organisation.pk,
        "client_id": CLIENT_ID,
        "client_secret": NEW_SECRET,
        "scope": "accounting.contacts",
        "webhook_key": WEBHOOK_KEY,
    }
    text, report_filter, request = report_of(admin_client, admin_url("xeroconnection_add"), data)
    post = report_filter.get_post_parameters(request)
    assert post["client_secret"] == STARS and post["webhook_key"] == STARS
    assert NEW_SECRET not in text and WEBHOOK_KEY not in text


def test_an_error_report_from_test_connection_shows_stars(admin_client, organisation, settings):
    # A token URL the settings check refuses: the check fails inside the view, secret in hand.
    settings.LOOKOUT_XERO = {**settings.LOOKOUT_XERO, "TOKEN_URL": "ftp://xero.invalid/token"}
    data = {"client_id": CLIENT_ID, "client_secret": NEW_SECRET, "scope": ""}
    text, report_filter, request = report_of(
        admin_client, admin_url("xeroconnection_test_connection"), data
    )
    assert "TOKEN_URL" in text
    assert report_filter.get_post_parameters(request)["client_secret"] == STARS
    assert NEW_SECRET not in text


def test_frame_variables_below_the_views_are_hidden_too(admin_client, organisation, failing_save):
    """Asked frame by frame, as an error tracker does: no frame shows the typed secret."""
    connection = make_connection(organisation)
    failing_save()
    request, error = failed_request(
        admin_client,
        admin_url("xeroconnection_change", connection.pk),
        {"client_id": CLIENT_ID, "client_secret": NEW_SECRET, "scope": ""},
    )
    assert isinstance(error, Boom)
    report_filter = SafeExceptionReporterFilter()
    shown = [
        (frame.f_code.co_name, name, repr(value))
        for frame in handler_frames(error)
        for name, value in report_filter.get_traceback_frame_variables(request, frame)
    ]
    assert any(name == "form" for _, name, _ in shown)  # the frames were looked at
    assert [row for row in shown if NEW_SECRET in row[2]] == []


# --- the customer's page ------------------------------------------------------------------


def test_the_customer_page_marks_the_secrets_for_error_reports(client, organisation, xero):
    xero.add_organisation(CLIENT_ID, CLIENT_SECRET, name="Harbour Trust Ltd")
    _link, path = credentials.create_link(organisation)
    page = client.get(path, secure=True, follow=True)
    form_path = page.wsgi_request.path
    response = client.post(
        form_path,
        {"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET, "webhook_key": WEBHOOK_KEY},
        secure=True,
    )
    post = SafeExceptionReporterFilter().get_post_parameters(response.wsgi_request)
    assert post["client_secret"] == STARS and post["webhook_key"] == STARS


# --- outbound calls: no redirects, no process-wide oauthlib switch --------------------------


class Recorder(BaseHTTPRequestHandler):
    """Records every request it gets; answers a 307 to `redirect_to` when one is set."""

    def _answer(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        self.server.seen.append((self.command, self.path, dict(self.headers), body))
        if self.server.redirect_to:
            self.send_response(307)
            self.send_header("Location", self.server.redirect_to + self.path)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        payload = b'{"access_token": "stolen", "expires_in": 1800}'
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_POST = _answer

    def log_message(self, *args):
        pass


@pytest.fixture
def loopback_servers():
    """A server that redirects everything to a second one, which records what reaches it."""
    servers = []
    for _ in range(2):
        server = ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
        server.seen = []
        server.redirect_to = ""
        # (A short poll: shutdown() waits for one, half a second by default.)
        threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()
        servers.append(server)
    redirecting, elsewhere = servers
    redirecting.redirect_to = f"http://127.0.0.1:{elsewhere.server_address[1]}"
    yield redirecting, elsewhere
    for server in servers:
        server.shutdown()
        server.server_close()


def base_url(server) -> str:
    return f"http://127.0.0.1:{server.server_address[1]}"


def test_a_307_from_the_token_url_does_not_post_the_secret_elsewhere(loopback_servers):
    redirecting, elsewhere = loopback_servers
    client = XeroClient(
        Credentials(CLIENT_ID, CLIENT_SECRET, ""),
        token_url=base_url(redirecting) + "/connect/token",
        api_url=base_url(elsewhere),
        timeout=5,
    )
    with pytest.raises(XeroError) as caught:
        client.fetch_token()
    assert len(redirecting.seen) == 1  # the token URL was asked, once
    assert CLIENT_SECRET.encode() in redirecting.seen[0][3]
    assert elsewhere.seen == []  # and the secret went nowhere else
    message = str(caught.value)
    assert "redirect" in message and "307" in message and CLIENT_SECRET not in message
    assert not caught.value.retryable


def test_a_307_from_the_api_does_not_carry_the_token_elsewhere(xero, loopback_servers):
    redirecting, elsewhere = loopback_servers
    xero.add_organisation(CLIENT_ID, CLIENT_SECRET, name="Harbour Trust Ltd")
    client = XeroClient(
        Credentials(CLIENT_ID, CLIENT_SECRET, ""),
        token_url=xero.token_url,
        api_url=base_url(redirecting),
        timeout=5,
    )
    with pytest.raises(XeroError, match="redirect"):
        client.get_tenants()
    assert [seen[1] for seen in redirecting.seen] == ["/connections"]
    assert elsewhere.seen == []


def test_plain_http_is_refused_off_loopback_before_anything_is_sent():
    client = XeroClient(
        Credentials(CLIENT_ID, CLIENT_SECRET, ""),
        token_url="http://xero.invalid/connect/token",
        api_url="https://api.xero.invalid",
        timeout=1,
    )
    with pytest.raises(XeroError, match="https"):
        client.fetch_token()


def test_a_sync_against_the_loopback_fake_sets_no_process_wide_oauthlib_switch(
    xero, organisation, monkeypatch
):
    from io import StringIO

    from django.core.management import call_command

    monkeypatch.delenv("OAUTHLIB_INSECURE_TRANSPORT", raising=False)
    xero.add_organisation(CLIENT_ID, CLIENT_SECRET, name="Harbour Trust Ltd")
    make_connection(organisation)
    assert xero.token_url.startswith("http://127.0.0.1")
    call_command(
        "xero_sync", organisation=str(organisation.pk), full=True, dry_run=True, stdout=StringIO()
    )
    assert credentials.check(CLIENT_ID, CLIENT_SECRET, "").ok
    assert any(r.path == "/connect/token" for r in xero.requests)
    assert "OAUTHLIB_INSECURE_TRANSPORT" not in os.environ


def test_no_code_sets_the_oauthlib_switch():
    """The switch would let every library in the process post secrets over plain http."""
    from pathlib import Path

    root = Path(__file__).resolve().parents[1] / "lookout_xero"
    offenders = [
        str(path.relative_to(root))
        for path in root.rglob("*.py")
        if "OAUTHLIB_INSECURE_TRANSPORT" in path.read_text()
    ]
    assert offenders == []
