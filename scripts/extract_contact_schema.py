"""Extract Xero's Contact schema from the official OpenAPI file into a fixture the tests read.

    python scripts/extract_contact_schema.py [path/to/xero_accounting.yaml]

The OpenAPI file (about 1 MB, MIT licensed by Xero) lives outside the repository, and nothing at
test time may read outside it: a plain clone has nothing beside it. So the `Contact` schema and
every schema it references are copied into tests/fixtures/xero_contact_schema.json, with the
source's version and sha256 (to tell which file it came from) and its licence. Run it again when
Xero publishes a new version of the file, and commit the result.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_SOURCE = ROOT.parent / "shared" / "xero" / "xero_accounting.yaml"
DEFAULT_OUTPUT = ROOT / "tests" / "fixtures" / "xero_contact_schema.json"
ROOT_SCHEMA = "Contact"
REF_PREFIX = "#/components/schemas/"


def referenced(schema) -> set[str]:
    """Names of the component schemas a schema refers to directly."""
    names: set[str] = set()
    if isinstance(schema, dict):
        ref = schema.get("$ref")
        if isinstance(ref, str) and ref.startswith(REF_PREFIX):
            names.add(ref.removeprefix(REF_PREFIX))
        for value in schema.values():
            names |= referenced(value)
    elif isinstance(schema, list):
        for value in schema:
            names |= referenced(value)
    return names


def closure(schemas: dict, root: str) -> dict:
    """`root` and every schema it reaches through $ref, in the file's order."""
    seen: set[str] = set()
    todo = [root]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        if name not in schemas:
            raise SystemExit(f"The OpenAPI file has no components.schemas.{name} (referenced).")
        seen.add(name)
        todo.extend(referenced(schemas[name]) - seen)
    return {name: schema for name, schema in schemas.items() if name in seen}


def extract(source: Path) -> dict:
    raw = source.read_bytes()
    # Both are safe loaders; the C one, when PyYAML has it, reads this 1 MB file many times faster.
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    spec = yaml.load(raw, Loader=loader)  # noqa: S506
    licence = source.with_name("LICENSE")
    if not licence.exists():
        raise SystemExit(f"{licence} not found: the fixture must carry the file's licence.")
    return {
        "source": {
            "file": source.name,
            "title": spec["info"]["title"],
            "info_version": str(spec["info"]["version"]),
            "sha256": hashlib.sha256(raw).hexdigest(),
            "licence": licence.read_text().strip(),
        },
        "extracted_by": "scripts/extract_contact_schema.py",
        "root": ROOT_SCHEMA,
        "schemas": closure(spec["components"]["schemas"], ROOT_SCHEMA),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("source", nargs="?", type=Path, default=DEFAULT_SOURCE)
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    args = parser.parse_args(argv)
    if not args.source.exists():
        print(f"{args.source} not found; pass the OpenAPI file's path.", file=sys.stderr)
        return 2
    fixture = extract(args.source)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(fixture, indent=1, ensure_ascii=False) + "\n")
    names = ", ".join(fixture["schemas"])
    print(f"{args.output}: {fixture['source']['info_version']}, {len(fixture['schemas'])} schemas")
    print(f"  {names}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
