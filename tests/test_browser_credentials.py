"""The customer's credentials page in headless Chromium, as a customer would use it."""

from __future__ import annotations

import pytest

from lookout_xero import credentials
from lookout_xero.models import XeroConnection
from tests.helpers import CLIENT_ID, CLIENT_SECRET
from tests.test_browser import SCREENSHOTS, page  # noqa: F401 - the Chromium page fixture

pytestmark = [pytest.mark.browser]


@pytest.fixture
def behind_tls_proxy(settings, live_server):
    """The live server speaks plain http; the pages insist on https when DEBUG is off.

    As in production behind a TLS-terminating proxy, the proxy's header says the request came
    over https, and the site's own address is a trusted origin for CSRF.
    """
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    settings.CSRF_TRUSTED_ORIGINS = [live_server.url]


def test_customer_opens_the_link_is_refused_then_accepted_and_the_link_dies(
    page,  # noqa: F811
    behind_tls_proxy,
    xero,
    organisation,
):
    from playwright.sync_api import expect

    xero.add_organisation(
        CLIENT_ID,
        CLIENT_SECRET,
        name="Harbour Trust Ltd",
        scopes=("accounting.contacts", "accounting.transactions"),
    )
    _, path = credentials.create_link(organisation)
    page.context.set_extra_http_headers({"X-Forwarded-Proto": "https"})
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    response = page.goto(path)
    assert response.status == 200
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["referrer-policy"] == "same-origin"  # see customer_views
    # The token left the address bar; the page's policy lets its own stylesheet (by nonce)
    # apply, and nothing may frame it.
    token = path.rstrip("/").rsplit("/", 1)[1]
    assert token not in page.url and "/credentials/page/" in page.url
    assert response.headers["x-frame-options"] == "DENY"
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
    background = page.evaluate("getComputedStyle(document.body).backgroundColor")
    assert background == "rgb(245, 247, 250)"
    expect(page.locator("h1")).to_contain_text("Connect Harbour Trust's Xero to Lookout")
    page.screenshot(path=str(SCREENSHOTS / "customer-credentials-form.png"), full_page=True)

    page.fill("#id_client_id", CLIENT_ID)
    page.fill("#id_client_secret", "not-the-secret-at-all")
    page.click("button[type=submit]")
    expect(page.locator("[data-lx-reason]")).to_contain_text(
        "did not accept this Client ID and Client Secret"
    )
    assert "not-the-secret-at-all" not in page.content()
    # The Client ID is kept; the secret, never echoed, is typed again.
    assert page.input_value("#id_client_id") == CLIENT_ID
    assert page.input_value("#id_client_secret") == ""
    page.screenshot(path=str(SCREENSHOTS / "customer-credentials-refused.png"), full_page=True)

    page.fill("#id_client_secret", CLIENT_SECRET)
    page.click("button[type=submit]")
    expect(page.locator("[data-lx-tenant]")).to_have_text("Harbour Trust Ltd")
    expect(page.locator("[data-lx-scope-warning]")).to_contain_text("accounting.transactions")
    assert CLIENT_SECRET not in page.content()
    page.screenshot(path=str(SCREENSHOTS / "customer-credentials-accepted.png"), full_page=True)

    connection = XeroConnection.objects.get(organisation=organisation)
    assert connection.enabled is False and connection.client_secret == CLIENT_SECRET

    response = page.goto(path)
    assert response.status == 404
    assert response.headers["referrer-policy"] == "no-referrer"
    expect(page.locator("h1")).to_have_text("This link does not work")
    assert "Harbour" not in page.content()
