"""The admin in headless Chromium, against the live server, a real Celery worker and fake Xero."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from django.db import connections

from lookout_xero.models import OutboxEntry, SyncLog, XeroContactLink
from tests.helpers import CLIENT_ID, CLIENT_SECRET, make_funder, wait_until

pytestmark = [pytest.mark.browser, pytest.mark.worker]

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
# The docs' screenshots are refreshed with SAVE_SCREENSHOTS=1; other runs keep theirs in var/.
SCREENSHOTS = Path(__file__).resolve().parents[1] / (
    "docs/screenshots" if os.environ.get("SAVE_SCREENSHOTS") == "1" else "var/screenshots"
)
# Three batches of up to 50, so the progress bar has steps to show.
FUNDERS = 120
PASSWORD = "browser-test-password"
WRONG_SECRET = "not-the-right-secret-either"


@pytest.fixture
def page(transactional_db, live_server, monkeypatch):
    """A Chromium page on the live server; started after, and closed before, the test database."""
    if not CHROMIUM.exists():
        if os.environ.get("CI") == "true":
            pytest.fail(f"{CHROMIUM} is required in CI and is missing")
        pytest.skip(f"{CHROMIUM} is not installed")
    from playwright.sync_api import sync_playwright

    # Playwright's sync API keeps an event loop in this thread; the test's own ORM calls are
    # still plain synchronous code, so Django's guard against async contexts does not apply.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        context = browser.new_context(
            viewport={"width": 1280, "height": 900}, base_url=live_server.url
        )
        context.set_default_timeout(15_000)
        yield context.new_page()
        browser.close()
        # While Playwright's event loop runs, Django keeps the test's ORM connections apart from
        # the thread's own; close them, or PostgreSQL cannot drop the test database at the end.
        connections.close_all()


class Visited:
    """Every page's HTML (and JSON answer) the test saw, to check no secret is in any."""

    def __init__(self, page) -> None:
        self.page = page
        self.bodies: dict[str, str] = {}

    def keep(self, label: str) -> None:
        self.bodies[label] = self.page.content()

    def keep_json(self, path: str) -> None:
        response = self.page.request.get(path)
        assert response.ok, path
        self.bodies[path] = response.text()


def test_connect_preview_enable_watch_and_resolve_a_conflict(
    page, worker, xero, organisation, django_user_model
):
    from playwright.sync_api import expect

    org = xero.add_organisation(CLIENT_ID, CLIENT_SECRET, name="Harbour Trust Ltd")
    for i in range(FUNDERS):
        make_funder(organisation, f"Member {i:03}", email=f"member{i:03}@example.org")
    django_user_model.objects.create_superuser("admin", "admin@example.org", PASSWORD)
    seen = Visited(page)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    page.goto("/admin/login/?next=/admin/")
    page.fill("#id_username", "admin")
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    expect(page.locator("#site-name")).to_contain_text("Lookout admin")

    # A new connection: Test connection says why a wrong secret fails, then names the org.
    page.goto("/admin/lookout_xero/xeroconnection/add/")
    page.select_option("#id_organisation", str(organisation.pk))
    page.fill("#id_client_id", CLIENT_ID)
    page.fill("#id_client_secret", WRONG_SECRET)
    result = page.locator("[data-lx-test-result]")
    page.click("text=Test connection")
    expect(result).to_contain_text("did not accept this Client ID and Client Secret")
    page.fill("#id_client_secret", CLIENT_SECRET)
    page.click("text=Test connection")
    expect(result).to_contain_text("Connected to the Xero organisation “Harbour Trust Ltd”")
    seen.keep("add page after Test connection")
    page.click("input[name=_continue]")
    expect(page.locator(".messagelist")).to_contain_text("was added successfully")
    seen.keep("change page, disabled")
    connection_url = page.url

    # Preview before enabling: the worker reads Xero and the page shows the report.
    page.click("button[data-lx-preview]")
    report = page.locator("[data-lx-preview-result]")
    expect(report.locator('[data-lx-count="create"]')).to_have_text(str(FUNDERS))
    expect(report.locator('[data-lx-count="conflict"]')).to_have_text("0")
    seen.keep("preview report")

    # Enable and save: the page stays, and the bar fills without a reload. Xero answers the
    # first of the three writes and holds the other two until the bar has been seen part-way.
    xero.delay_next(0, method="POST")
    held = xero.delay_next(60, times=2, method="POST")
    page.check("#id_enabled")
    page.click("input[name=_save]")
    expect(page.locator(".messagelist")).to_contain_text("a full sync of all unarchived")
    assert page.url == connection_url
    page.evaluate("window.lxSamePage = true")
    percent = page.locator('[data-lx-field="run.percent"]')
    page.wait_for_function(
        "() => { const p = +document.querySelector('[data-lx-field=\"run.percent\"]')"
        ".textContent; return p > 0 && p < 100; }",
        timeout=15_000,
    )
    page.wait_for_timeout(500)  # let the bar's width transition finish
    page.screenshot(path=str(SCREENSHOTS / "connection.png"), full_page=True)
    held.release()
    expect(percent).to_have_text("100", timeout=30_000)
    expect(page.locator('[data-lx-field="run.status_label"]')).to_have_text("Completed")
    expect(page.locator('[data-lx-field="run.created"]')).to_have_text(str(FUNDERS))
    assert page.evaluate("window.lxSamePage") is True
    seen.keep("change page, synced")
    seen.keep_json(connection_url.replace("/change/", "/status/"))

    # The log lists every funder, linked to its page and to Xero.
    page.goto("/admin/lookout_xero/synclog/?outcome__exact=created")
    expect(page.locator("#changelist")).to_contain_text(f"{FUNDERS} results")
    expect(page.locator("#result_list")).to_contain_text("member119@example.org")
    page.click("#toggle-nav-sidebar")  # room for every column in the screenshots
    page.goto("/admin/lookout_xero/synclog/")
    page.screenshot(path=str(SCREENSHOTS / "sync-log.png"))
    seen.keep("sync log")

    # A funder whose name two Xero contacts already have becomes a conflict for a person.
    org.add_contact(Name="Kauri Arts Trust", EmailAddress="office@kauri.example.org")
    org.add_contact(Name="Kauri Arts Trust", EmailAddress="accounts@kauri.example.org")
    org.add_contact(Name="Tui Books", EmailAddress="hello@tui.example.org")
    org.add_contact(Name="Tui Books Ltd", EmailAddress="hello@tui.example.org")
    make_funder(organisation, "Tui Bookshop", email="hello@tui.example.org")
    page.goto("/admin/funders/funder/add/")
    page.fill("#id_name", "Kauri Arts Trust")
    page.select_option("#id_organisation", str(organisation.pk))
    page.click("input[name=_save]")
    expect(page.locator(".messagelist")).to_contain_text("was added successfully")
    wait_until(lambda: XeroContactLink.objects.filter(state="conflict").count() == 2)

    page.goto("/admin/lookout_xero/xerocontactlink/conflicts/")
    kauri = page.locator("article.lx-conflict", has_text="Kauri Arts Trust")
    expect(kauri.locator("tbody tr")).to_have_count(2)
    expect(kauri).to_contain_text("accounts@kauri.example.org")
    page.screenshot(path=str(SCREENSHOTS / "conflicts.png"), full_page=True)
    seen.keep("conflicts queue")
    kauri.locator("tr", has_text="office@kauri.example.org").get_by_role(
        "button", name="Link to this contact"
    ).click()
    expect(page.locator(".messagelist")).to_contain_text("linked to the Xero contact")
    expect(page.locator("article.lx-conflict", has_text="Kauri Arts Trust")).to_have_count(0)
    link = wait_until(
        lambda: XeroContactLink.objects.filter(
            funder__name="Kauri Arts Trust", state="synced"
        ).first()
    )
    chosen = org.find(email="office@kauri.example.org")[0]
    assert link.xero_contact_id == chosen["ContactID"]
    seen.keep("conflicts queue after resolving")

    # The funder's own page shows the link, and Push now queues it again.
    page.goto(f"/admin/funders/funder/{link.funder_id}/change/")
    panel = page.locator("#xero_links-group")
    expect(panel).to_contain_text("Synced")
    expect(panel).to_contain_text(chosen["ContactID"])
    page.click("button[data-lx-push]")
    expect(page.locator(".messagelist")).to_contain_text("Queued 1 funder(s) for pushing")
    seen.keep("funder page")
    wait_until(lambda: not OutboxEntry.objects.exists())

    # Disabling stops everything (and leaves the worker idle for the next test).
    page.goto(connection_url)
    page.uncheck("#id_enabled")
    page.click("input[name=_save]")
    expect(page.locator(".messagelist")).to_contain_text("Disabled: nothing more is sent")
    seen.keep("connection list after disabling")

    for secret in (CLIENT_SECRET, WRONG_SECRET):
        leaked = [label for label, body in seen.bodies.items() if secret in body]
        assert leaked == [], f"a Client Secret appeared in: {leaked}"
        assert not SyncLog.objects.filter(message__contains=secret).exists()
    assert len(seen.bodies) == 10


# --- every list reads well at 1280 px (issue 20) -----------------------------------------------

LONG_NAME = ("The " + "Very " * 60 + "Long Name Society")[:300]
LISTS = [
    "/admin/lookout_xero/xeroconnection/",
    "/admin/lookout_xero/syncrun/",
    "/admin/lookout_xero/synclog/",
    "/admin/lookout_xero/xeroalert/",
    "/admin/lookout_xero/xerocontactlink/",
    "/admin/lookout_xero/xerocontactlink/conflicts/",
]


@pytest.mark.parametrize("path", LISTS)
def test_every_list_fits_1280_pixels_with_a_300_character_funder_name(
    page, organisation, django_user_model, path
):
    from lookout_xero.models import SyncRun, XeroAlert
    from tests.helpers import make_connection

    assert len(LONG_NAME) == 300
    connection = make_connection(organisation, enabled=True)
    long_one = make_funder(organisation, LONG_NAME, email="long.name.society@example.org")
    contact_id = "0f0e6d5c-1111-2222-3333-444455556666"
    run = SyncRun.objects.create(connection=connection, status="completed", in_scope=1)
    XeroContactLink.objects.create(
        connection=connection,
        funder=long_one,
        xero_contact_id=contact_id,
        state="synced",
        last_error=f"Xero refused {LONG_NAME}: the name is longer than Xero allows.",
    )
    conflicted = make_funder(organisation, LONG_NAME[:-1] + "!")
    XeroContactLink.objects.create(
        connection=connection,
        funder=conflicted,
        state="conflict",
        last_error="2 Xero contacts have this name",
        conflict_candidates=[
            {"contact_id": cid, "name": LONG_NAME, "email": "x@example.org", "status": "ACTIVE"}
            for cid in (contact_id, contact_id.replace("0f", "1f"))
        ],
    )
    SyncLog.objects.create(
        connection=connection,
        run=run,
        funder=long_one,
        funder_name=LONG_NAME,
        funder_email="long.name.society@example.org",
        xero_contact_id=contact_id,
        outcome="created",
        http_status=200,
        message=f"Created {LONG_NAME} in Xero.",
    )
    XeroAlert.objects.create(connection=connection, kind="conflicts", detail=LONG_NAME)
    django_user_model.objects.create_superuser("admin", "admin@example.org", PASSWORD)
    page.goto("/admin/login/?next=/admin/")
    page.fill("#id_username", "admin")
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")

    for sidebar_open in ("true", "false"):
        page.goto(path)
        page.evaluate(f"localStorage.setItem('django.admin.navSidebarIsOpen', '{sidebar_open}')")
        page.goto(path)
        sizes = page.evaluate(
            """() => ({
                viewport: window.innerWidth,
                page: document.documentElement.scrollWidth,
                tables: [...document.querySelectorAll('#content table')].map(t => t.scrollWidth),
                // A table wider than its box hides its right-hand columns behind a scroll bar.
                hidden: [...document.querySelectorAll('#content table')]
                    .filter(t => t.scrollWidth > t.parentElement.clientWidth + 1)
                    .map(t => [t.scrollWidth, t.parentElement.clientWidth]),
            })"""
        )
        assert sizes["tables"], "no table on the page"
        assert max(sizes["tables"]) <= sizes["viewport"], (sidebar_open, sizes)
        assert sizes["page"] <= sizes["viewport"], (sidebar_open, sizes)
        assert sizes["hidden"] == [], (sidebar_open, sizes)  # every column shows
    if path.endswith(("/synclog/", "/xerocontactlink/")):
        # The funder's name is cut to its column, and the whole name is one hover away.
        cut = page.locator(f'.lx-cut[title="{LONG_NAME}"]').first
        assert cut.text_content() == LONG_NAME  # the text is whole: copying it copies all
        assert cut.evaluate("e => e.scrollWidth > e.clientWidth")


def test_the_panel_buttons_and_the_copy_button_work_in_a_browser(
    page, organisation, django_user_model
):
    """admin.js: Stop syncing on the funder's panel posts; Copy copies a new link's URL."""
    from playwright.sync_api import expect

    from tests.helpers import make_connection

    connection = make_connection(organisation, enabled=True)
    held = XeroContactLink.objects.create(
        connection=connection,
        funder=make_funder(organisation, "Held Funder"),
        xero_contact_id="0f0e6d5c-1111-2222-3333-444455556666",
        state="gdpr",
        last_error="Xero holds this contact under a GDPR erasure request.",
    )
    django_user_model.objects.create_superuser("admin", "admin@example.org", PASSWORD)
    page.goto("/admin/login/?next=/admin/")
    page.fill("#id_username", "admin")
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")

    page.goto(f"/admin/funders/funder/{held.funder_id}/change/")
    expect(page.locator("#xero_links-group")).to_contain_text("Held: Xero holds this contact")
    page.get_by_role("button", name="Stop syncing").click()
    expect(page.locator(".messagelist")).to_contain_text("will no longer be synced to Xero")
    held.refresh_from_db()
    assert held.state == "ignored"

    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    page.goto(f"/admin/lookout_xero/xeroconnection/{connection.pk}/change/")
    page.get_by_role("button", name="Create credentials link").click()
    url = page.locator("[data-lx-copy-source]").text_content()
    assert "/xero/credentials/" in url
    page.locator("[data-lx-copy]").click()
    expect(page.locator("[data-lx-copy]")).to_have_text("Copied")
    assert page.evaluate("navigator.clipboard.readText()") == url


def test_choose_who_wins_and_take_a_correction_made_in_xero(
    page, worker, xero, organisation, django_user_model, live_server
):
    """The connection's directions, a bookkeeper's edit told by webhook, and the funder's panel
    showing both values with Take Xero's value / Keep Lookout's."""
    from playwright.sync_api import expect

    from tests.helpers import make_connection

    org = xero.add_organisation(CLIENT_ID, CLIENT_SECRET, name="Harbour Trust Ltd")
    funder = make_funder(
        organisation, "Kowhai Music Trust", email="kowhai@example.org", mobile="021 400 100"
    )
    connection = make_connection(organisation)
    connection.webhook_key = "browser-webhook-key"
    connection.enabled = True
    connection.save()
    wait_until(lambda: XeroContactLink.objects.filter(funder=funder, state="synced").exists())
    org.set_webhook(live_server.url + connection.webhook_path, "browser-webhook-key")
    django_user_model.objects.create_superuser("admin", "admin@example.org", PASSWORD)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.goto("/admin/login/?next=/admin/")
    page.fill("#id_username", "admin")
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")

    page.goto(f"/admin/lookout_xero/xeroconnection/{connection.pk}/change/")
    panel = page.locator("[data-lx-directions]")
    panel.locator("#lx-direction-EmailAddress").select_option("ask")
    panel.locator("#lx-direction-Phones").select_option("xero")
    panel.get_by_role("button", name="Save directions").click()
    expect(page.locator(".messagelist")).to_contain_text("EmailAddress: ask, Phones: xero")
    page.locator("[data-lx-directions]").screenshot(path=str(SCREENSHOTS / "directions.png"))

    contact_id = XeroContactLink.objects.get(funder=funder).xero_contact_id
    org.edit(
        contact_id,
        EmailAddress="office@kowhaimusic.org.nz",
        Phones=[{"PhoneType": "MOBILE", "PhoneNumber": "027 555 0199"}],
    )
    wait_until(lambda: XeroContactLink.objects.get(funder=funder).decision_since is not None)
    funder.refresh_from_db()
    assert funder.mobile == "027 555 0199"  # Xero wins the phones: taken at once

    page.goto(f"/admin/funders/funder/{funder.pk}/change/")
    differences = page.locator("[data-lx-differences]")
    expect(differences).to_contain_text("kowhai@example.org")
    expect(differences).to_contain_text("office@kowhaimusic.org.nz")
    expect(differences).to_contain_text("Waiting for a decision")
    top = page.locator("#xero_links-group").bounding_box()
    bottom = differences.bounding_box()
    height = bottom["y"] + bottom["height"] - top["y"] + 8
    page.screenshot(
        path=str(SCREENSHOTS / "changed-in-xero.png"),
        full_page=True,
        clip={"x": top["x"], "y": top["y"], "width": top["width"], "height": height},
    )
    writes = len([r for r in xero.requests_for(CLIENT_ID) if r.is_write])
    differences.get_by_role("button", name="Take Xero's value").click()
    expect(page.locator(".messagelist")).to_contain_text("took Xero's EmailAddress")
    expect(page.locator("[data-lx-differences]")).to_have_count(0)
    funder.refresh_from_db()
    assert funder.email == "office@kowhaimusic.org.nz"
    log = SyncLog.objects.filter(outcome="taken").values_list("message", flat=True)
    assert any("(chosen by admin)" in message for message in log)
    assert any("(the field's setting)" in message for message in log)
    wait_until(lambda: not OutboxEntry.objects.exists())
    assert len([r for r in xero.requests_for(CLIENT_ID) if r.is_write]) == writes
