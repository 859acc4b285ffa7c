#!/usr/bin/env bash
# The built wheel installs into a CRM that is not the demo, on Django 5.2 LTS and on 6.1: for
# each, a clean virtualenv gets the wheel, that Django and the other runtime dependencies only
# (no django-environ, no Redis client, no test tools), then runs `django-admin check`, `migrate`
# and `makemigrations --check` for the second host project
# (tests/hosts/crm, imported as plain `crm`), from a folder outside the repository so that only
# the installed lookout_xero can be imported.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
PY=${PY:-.venv/bin/python}
required=${CI:-false}

python_for() {  # 3.X: a python3.X that runs (on PATH, else pyenv's newest 3.X.*), or nothing
  local candidate
  for candidate in "$(command -v "python$1" || true)" \
    $(ls -d "${PYENV_ROOT:-$HOME/.pyenv}/versions/$1".*/bin/python 2>/dev/null | sort -rV); do
    if [ -n "$candidate" ] && "$candidate" -c "" 2>/dev/null; then
      echo "$candidate"
      return
    fi
  done
}

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
rm -rf dist build
"$PY" -m pip wheel . --no-deps --quiet --wheel-dir dist
rm -rf build

check_on() {  # release python
  local release=$1 python=$2 venv="$tmp/venv-$1"
  local major=${release%%.*} minor=${release#*.}
  echo "=== the wheel beside Django $release ($("$python" --version)) ==="
  "$python" -m venv "$venv"
  "$venv/bin/pip" install --quiet "$root"/dist/lookout_xero-*.whl \
    "Django>=$release,<$major.$((minor + 1))"
  (
    cd "$tmp"
    export PYTHONPATH="$root/tests/hosts" DJANGO_SETTINGS_MODULE=crm.minimal_settings
    RELEASE=$release "$venv/bin/python" - <<'PY'
import importlib.util
import os
import sys

import django
import lookout_xero

assert "site-packages" in lookout_xero.__file__, lookout_xero.__file__
assert django.get_version().startswith(os.environ["RELEASE"] + "."), django.get_version()
for absent in ("environ", "redis", "pytest"):
    assert importlib.util.find_spec(absent) is None, f"{absent} is installed, but not required"
print(
    f"lookout_xero {lookout_xero.__version__} from {lookout_xero.__file__}, "
    f"Django {django.get_version()}",
    file=sys.stderr,
)
PY
    "$venv/bin/django-admin" check --fail-level WARNING
    "$venv/bin/django-admin" migrate --verbosity 0
    "$venv/bin/django-admin" makemigrations --check --dry-run
  )
}

check_on 5.2 "$PY"  # the Python of .venv, 3.11: the oldest this supports

# Django 6 needs Python 3.12 or later.
python6=$(python_for 3.13)
[ -n "$python6" ] || python6=$(python_for 3.12)
if [ -n "$python6" ]; then
  check_on 6.1 "$python6"
elif [ "$required" = "true" ]; then
  echo "Python 3.12 or 3.13 is required in CI for Django 6.1 but none was found" >&2
  exit 1
else
  echo "No Python 3.12 or 3.13 found: skipped the wheel on Django 6.1."
fi
echo "The wheel installs and checks clean in a host that is not the demo, on each release."
