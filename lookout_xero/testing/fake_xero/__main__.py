"""Run a fake Xero for the demo: ``python -m lookout_xero.testing.fake_xero --port 8765``."""

from __future__ import annotations

import argparse
import time

from .server import FakeXero


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
    parser.add_argument("--minute-limit", type=int, default=60)
    parser.add_argument("--day-limit", type=int, default=5000)
    args = parser.parse_args(argv)

    fake = FakeXero(args.host, args.port, minute_limit=args.minute_limit, day_limit=args.day_limit)
    org = fake.add_organisation(
        args.client_id,
        args.client_secret,
        args.name,
        scopes=args.scopes.split(),
        reject_explicit_scope=args.reject_explicit_scope,
    )
    for number in range(1, args.seed_contacts + 1):
        org.add_contact(
            Name=f"Existing Contact {number}",
            EmailAddress=f"existing{number}@example.org",
            ContactNumber=f"EXISTING-{number:04d}",
        )
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


if __name__ == "__main__":
    serve()
