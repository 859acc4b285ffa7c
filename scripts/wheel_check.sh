#!/usr/bin/env bash
# The built wheel installs into a CRM that is not the demo: a clean virtualenv gets the wheel and
# its runtime dependencies only (no django-environ, no Redis client, no test tools), then runs
# `django-admin check`, `migrate` and `makemigrations --check` for the second host project
# (tests/hosts/crm, imported as plain `crm`), from a folder outside the repository so that only
# the installed lookout_xero can be imported.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
PY=${PY:-.venv/bin/python}

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
rm -rf dist build
"$PY" -m pip wheel . --no-deps --quiet --wheel-dir dist
rm -rf build

"$PY" -m venv "$tmp/venv"
"$tmp/venv/bin/pip" install --quiet dist/lookout_xero-*.whl

cd "$tmp"
export PYTHONPATH="$root/tests/hosts" DJANGO_SETTINGS_MODULE=crm.minimal_settings
"$tmp/venv/bin/python" - <<'PY'
import importlib.util
import sys

import lookout_xero

assert "site-packages" in lookout_xero.__file__, lookout_xero.__file__
for absent in ("environ", "redis", "pytest"):
    assert importlib.util.find_spec(absent) is None, f"{absent} is installed, but not required"
print(f"lookout_xero {lookout_xero.__version__} from {lookout_xero.__file__}", file=sys.stderr)
PY
"$tmp/venv/bin/django-admin" check --fail-level WARNING
"$tmp/venv/bin/django-admin" migrate --verbosity 0
"$tmp/venv/bin/django-admin" makemigrations --check --dry-run
echo "The wheel installs and checks clean in a host that is not the demo."
