"""The fake's command line.

``python -m lookout_xero.testing.fake_xero --port 8765 …`` serves a fake Xero until Ctrl-C;
``python -m lookout_xero.testing.fake_xero bookkeeper <action> …`` acts on a running one as a
bookkeeper would in Xero's screens (through the control endpoint, see ``control``).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import urllib.error
import urllib.request

from .demo import seed_demo_contacts
from .server import FakeXero
from .webhooks import new_key

DEFAULT_XERO = f"http://127.0.0.1:{os.environ.get('DEMO_XERO_PORT', '8765')}"


def serve(argv: list[str] | None = None) -> None:
    """Run a fake Xero until Ctrl-C."""
    parser = argparse.ArgumentParser(
        prog="python -m lookout_xero.testing.fake_xero",
        description="Serve a fake Xero API on loopback.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--client-id", default="demo-client")
    parser.add_argument("--client-secret", default="demo-secret")
    parser.add_argument("--name", default="Demo Company")
    parser.add_argument("--scopes", default="accounting.contacts", help="space separated")
    parser.add_argument("--reject-explicit-scope", action="store_true")
    parser.add_argument("--seed-contacts", type=int, default=0, metavar="N")
    parser.add_argument(
        "--seed-demo", action="store_true", help="the contacts the demo's Xero starts with"
    )
    parser.add_argument("--minute-limit", type=int, default=60)
    parser.add_argument("--day-limit", type=int, default=5000)
    parser.add_argument("--webhook-url", help="where to send the bookkeeper's changes")
    parser.add_argument("--webhook-key", help="the webhook signing key (made up if not given)")
    args = parser.parse_args(argv)

    fake = FakeXero(args.host, args.port, minute_limit=args.minute_limit, day_limit=args.day_limit)
    org = fake.add_organisation(
        args.client_id,
        args.client_secret,
        args.name,
        scopes=args.scopes.split(),
        reject_explicit_scope=args.reject_explicit_scope,
    )
    if args.webhook_url:
        org.set_webhook(args.webhook_url, args.webhook_key or new_key())
    for number in range(1, args.seed_contacts + 1):
        org.add_contact(
            Name=f"Existing Contact {number}",
            EmailAddress=f"existing{number}@example.org",
            ContactNumber=f"EXISTING-{number:04d}",
        )
    if args.seed_demo:
        seed_demo_contacts(org)
    fake.start()
    print(
        f"Fake Xero at {fake.url} (token URL {fake.token_url}) client_id={args.client_id} "
        f"client_secret={args.client_secret} tenant_id={org.tenant_id} org={args.name!r}",
        flush=True,
    )
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        fake.stop()


def bookkeeper(argv: list[str]) -> int:
    """Ask a running fake to do what a bookkeeper does in Xero; print its JSON answer."""
    parser = argparse.ArgumentParser(
        prog="python -m lookout_xero.testing.fake_xero bookkeeper",
        description="Act on a running fake Xero as its bookkeeper would. Contacts are named "
        "by ContactID, ContactNumber or name.",
    )
    parser.add_argument("--xero", default=DEFAULT_XERO, help=f"default {DEFAULT_XERO}")
    parser.add_argument("--client-id", help="the organisation, when the fake has several")
    actions = parser.add_subparsers(dest="action", required=True)
    actions.add_parser("contacts", help="list the contacts")
    for name in ("archive", "restore", "gdpr"):
        actions.add_parser(name, help=f"{name} a contact").add_argument("contact")
    merge = actions.add_parser("merge", help="merge a contact into another (the survivor)")
    merge.add_argument("from_contact", metavar="from")
    merge.add_argument("into")
    edit = actions.add_parser("edit", help="change fields, e.g. EmailAddress=a@b.org")
    edit.add_argument("contact")
    edit.add_argument("fields", nargs="+", metavar="Field=value")
    create = actions.add_parser("create", help="add a contact, e.g. Name='New Trust'")
    create.add_argument("fields", nargs="+", metavar="Field=value")
    webhook = actions.add_parser("webhook", help="send CONTACT webhooks to this URL")
    webhook.add_argument("url")
    webhook.add_argument("--key", help="signing key (a new one is made and printed if not)")
    actions.add_parser("intent-to-receive", help="check the webhook URL as Xero does")
    args = parser.parse_args(argv)

    body: dict = {"client_id": args.client_id} if args.client_id else {}
    if args.action == "merge":
        body.update({"from": args.from_contact, "into": args.into})
    elif args.action == "webhook":
        body.update({"url": args.url, "key": args.key})
    if getattr(args, "contact", None):
        body["contact"] = args.contact
    if getattr(args, "fields", None):
        body["fields"] = dict(_field(text) for text in args.fields)
    return _post(f"{args.xero}/_bookkeeper/{args.action}", body)


def _field(text: str) -> tuple[str, object]:
    name, sep, value = text.partition("=")
    if not sep:
        raise SystemExit(f"Expected Field=value, got {text!r}")
    # Lists and objects (Phones, Addresses) are given as JSON; anything else is a string.
    return name, json.loads(value) if value[:1] in "[{" else value


def _post(url: str, body: dict) -> int:
    if not url.startswith(("http://", "https://")):
        raise SystemExit(f"--xero must be an http(s) URL, not {url!r}")
    request = urllib.request.Request(  # noqa: S310 (http(s) only, checked above)
        url,
        data=json.dumps(body).encode("utf-8"),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
            answer, failed = response.read(), False
    except urllib.error.HTTPError as exc:
        answer, failed = exc.read(), True
    except urllib.error.URLError as exc:
        print(f"No fake Xero at {url}: {exc.reason}", file=sys.stderr)
        return 2
    print(json.dumps(json.loads(answer), indent=2))
    return 1 if failed else 0


if __name__ == "__main__":
    if sys.argv[1:2] == ["bookkeeper"]:
        sys.exit(bookkeeper(sys.argv[2:]))
    serve()
