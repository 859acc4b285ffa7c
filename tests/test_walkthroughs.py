"""The docs' walk-throughs, run as written against the demo's own seed.

The steps are read from the pages themselves (README.md's "Try it", docs/development.md's
bookkeeper walk, docs/operations.md's credentials link), so a renamed contact, a reordered step
or a value that no longer matches the demo (`scripts/demo.py`, `manage.py seed_demo`, the fake
Xero's `--seed-demo`) fails here. The Xero stand-in is the fake over real HTTP with the demo's
contacts, the worker is a real `celery -A project worker -B`, and Lookout's webhook endpoint is
Django's live server, as in the demo.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import json
import re
import shlex

import pytest
from django.core.management import call_command
from django.urls import reverse

from lookout_xero import wording
from lookout_xero.models import (
    SyncLog,
    SyncRun,
    XeroConnection,
    XeroContactLink,
    XeroWebhookEvent,
)
from lookout_xero.testing.fake_xero.__main__ import bookkeeper
from lookout_xero.testing.fake_xero.demo import seed_demo_contacts
from tests.conftest import ROOT
from tests.helpers import wait_until
from tests.markdown import section

README = (ROOT / "README.md").read_text()
DEVELOPMENT = (ROOT / "docs" / "development.md").read_text()
OPERATIONS = (ROOT / "docs" / "operations.md").read_text()
BOOKKEEPER_WALK = "Play the bookkeeper in the demo"
WEBHOOK_PLACEHOLDER = "<the connection page's Webhook URL>"


def _demo_script():
    spec = importlib.util.spec_from_file_location("demo_script", ROOT / "scripts" / "demo.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def bash_blocks(text: str) -> list[str]:
    return re.findall(r"```bash\n(.*?)```", text, flags=re.S)


def bk_commands(block: str) -> list[list[str]]:
    """Each `bk …` line of a block as its arguments (no comments; quotes as bash reads them)."""
    commands = []
    for line in block.splitlines():
        if not line.startswith("bk "):
            continue
        line = line.replace(WEBHOOK_PLACEHOLDER, "WEBHOOK_URL")
        commands.append(shlex.split(line, comments=True)[1:])
    return commands


def run_bk(xero_url: str, args: list[str]) -> dict:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = bookkeeper(["--xero", xero_url, *args])
    answer = json.loads(out.getvalue())
    assert code == 0, (args, answer)
    return answer


def test_the_docs_name_what_the_demo_uses():
    demo = _demo_script()
    try_it = section(README, "Try it")
    assert "make demo" in bash_blocks(try_it)[0]
    words = " ".join(try_it.split())
    assert f"Client ID `{demo.CLIENT_ID}` and Client Secret `{demo.CLIENT_SECRET}`" in words
    assert "--seed-demo" in (ROOT / "scripts" / "demo.py").read_text()
    # The bookkeeper function is the one a newcomer pastes: the fake's own command line.
    [first, _] = bash_blocks(section(DEVELOPMENT, BOOKKEEPER_WALK))
    assert first.startswith(
        'bk() { .venv/bin/python -m lookout_xero.testing.fake_xero bookkeeper "$@"; }'
    )


def test_the_seed_says_how_many_funders_are_in_scope(db):
    out = io.StringIO()
    call_command("seed_demo", stdout=out)
    from project.funders.models import Funder

    in_scope = Funder.objects.filter(funder_type="membership", archived=False).count()
    assert f"{in_scope} unarchived membership funders are in scope" in out.getvalue()
    again = io.StringIO()
    call_command("seed_demo", stdout=again)
    assert f"{in_scope} unarchived membership funders are in scope" in again.getvalue()


@pytest.mark.worker
def test_the_admin_flow_and_the_bookkeeper_walk_through_work_as_written(
    worker, xero, client, live_server, settings
):
    demo = _demo_script()
    settings.LOOKOUT_XERO = {**settings.LOOKOUT_XERO, "SITE_URL": live_server.url}
    call_command("seed_demo", stdout=io.StringIO())
    from project.funders.models import Funder, Organisation

    org = xero.add_organisation(demo.CLIENT_ID, demo.CLIENT_SECRET, name="Harbour Trust (demo)")
    seed_demo_contacts(org)
    harbour = Organisation.objects.get(name="Harbour Trust")

    # "Add a Xero connection for Harbour Trust with Client ID … and Client Secret …, tick
    # Enabled, save": the admin's own add form, with what it offers by default.
    assert client.login(username="admin", password="admin")
    add = reverse("admin:lookout_xero_xeroconnection_add")
    form = client.get(add).context["adminform"].form
    data = {name: form[name].value() for name in form.fields if form[name].value() is not None}
    data = {key: value for key, value in data.items() if value is not False}
    data.update(
        organisation=harbour.pk,
        client_id=demo.CLIENT_ID,
        client_secret=demo.CLIENT_SECRET,
        enabled="on",
    )
    assert client.post(add, data).status_code == 302
    connection = XeroConnection.objects.get(organisation=harbour)
    run = wait_until(lambda: SyncRun.objects.filter(status="completed").first(), timeout=60)
    in_scope = Funder.objects.filter(
        organisation=harbour, funder_type="membership", archived=False
    ).count()
    assert run.in_scope == in_scope and run.conflicts == 1
    assert SyncLog.objects.exists()
    # The demo shows a conflict: two Xero contacts share Kowhai Music Trust's e-mail.
    [conflict] = XeroContactLink.objects.filter(state="conflict")
    assert conflict.funder.name == "Kowhai Music Trust"

    # "bk webhook <the connection page's Webhook URL>": the URL as the page shows it.
    page = client.get(
        reverse("admin:lookout_xero_xeroconnection_change", args=[connection.pk])
    ).content.decode()
    webhook_url = re.search(r"<code data-lx-webhook-url>([^<]+)</code>", page)[1]
    first, then = bash_blocks(section(DEVELOPMENT, BOOKKEEPER_WALK))
    key = None
    for args in bk_commands(first):
        args = [webhook_url if arg == "WEBHOOK_URL" else arg for arg in args]
        answer = run_bk(xero.url, args)
        if args[0] == "webhook":
            key = answer["key"]
        if args[0] == "contacts":
            names = {c["Name"] for c in answer["contacts"]}
            assert {"Existing Member 1", "Existing Member 2", "Existing Contact 3"} <= names
    assert key

    # "Paste the key that bk webhook prints into the connection's Webhook key and save."
    change = reverse("admin:lookout_xero_xeroconnection_change", args=[connection.pk])
    form = client.get(change).context["adminform"].form
    data = {name: form[name].value() for name in form.fields if form[name].value() is not None}
    data = {k: ("on" if v is True else v) for k, v in data.items() if v is not False}
    data["webhook_key"] = key
    assert client.post(change, data).status_code == 302

    def pushed(funder_id, message):
        return SyncLog.objects.filter(
            funder_id=funder_id, outcome="updated", message=message
        ).exists()

    def link_to(contact_id):
        return XeroContactLink.objects.filter(xero_contact_id=contact_id).first()

    for args in bk_commands(then):
        action = args[0]
        refs = [org.resolve(ref) for ref in args[1:] if "=" not in ref]
        before = link_to(refs[0]) if refs else None
        answer = run_bk(xero.url, args)
        if action == "intent-to-receive":
            assert answer["passed"], answer
            continue
        assert answer["webhook"]["status"] == 200, answer
        wait_until(lambda: not XeroWebhookEvent.objects.exists(), timeout=30)
        if action == "edit":  # "shows what differs under Changed in Xero"
            assert wait_until(lambda: link_to(refs[0]).drift, timeout=30)
        elif action == "archive":  # "shows Archived in Xero"
            assert link_to(refs[0]).state == "xarchived"
        elif action == "restore":
            assert wait_until(lambda: link_to(refs[0]).state == "synced", timeout=30)
            # The log says what happened: a push after the restore, not "Linked to existing".
            assert wait_until(lambda: pushed(before.funder_id, wording.PUSHED_WHOLE_PROFILE))
        elif action == "merge":  # "moves the funder's link to the surviving contact"
            moved = wait_until(lambda: link_to(refs[1]), timeout=30)
            assert moved.funder_id == before.funder_id
            assert wait_until(lambda: pushed(before.funder_id, wording.PUSHED_AFTER_MERGE))
            assert SyncLog.objects.filter(
                outcome="followed_merge", message__contains=f"from {refs[0]} to {refs[1]}"
            ).exists()
        elif action == "gdpr":  # "holds it for good"
            assert wait_until(lambda: link_to(refs[0]).state == "gdpr", timeout=30)
        else:
            raise AssertionError(f"The walk runs an action this test does not check: {action}")

    # The worker's output is not buried under the beat's idle housekeeping.
    lines = worker.log_path.read_text(errors="replace").splitlines()
    housekeeping = [line for line in lines if re.search(r"sweep_outbox[\[ ]", line)]
    idle = [
        line
        for line in housekeeping
        if " succeeded " not in line or not re.search(r"[1-9]", line.rsplit(": ", 1)[-1])
    ]
    assert idle == []


def test_the_credentials_link_command_prints_a_link_that_opens(db, client):
    call_command("seed_demo", stdout=io.StringIO())
    from project.funders.models import Organisation

    harbour = Organisation.objects.get(name="Harbour Trust")
    [command] = bash_blocks(section(OPERATIONS, "Credentials from the customer"))
    assert command.split() == (
        "python manage.py xero_credentials_link --organisation <pk> [--hours N]".split()
    )
    out = io.StringIO()
    call_command("xero_credentials_link", organisation=harbour.pk, hours=1, stdout=out)
    url = out.getvalue().strip().splitlines()[-1]
    path = re.sub(r"^https?://[^/]+", "", url)
    opened = client.get(path, follow=True)
    assert opened.status_code == 200
    assert "Harbour Trust" in opened.content.decode()
