"""The wheel a host project installs: the app with its templates, static files and migrations."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# What a checkout may hold besides the sources: none of it may change or enter the wheel.
NOT_SOURCES = shutil.ignore_patterns(
    ".git", ".venv", "var", "build", "dist", "*.egg-info", "__pycache__", ".*_cache"
)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> zipfile.ZipFile:
    """The wheel `pip wheel . --no-deps` builds, from a copy of this checkout.

    A copy, so the build's own folders (build/, *.egg-info) neither land in the checkout nor
    feed a stale file from an earlier build into this one.
    """
    tmp = tmp_path_factory.mktemp("wheel")
    source = tmp / "lookout-xero"
    shutil.copytree(ROOT, source, ignore=NOT_SOURCES)
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(source), "--no-deps", "-q", "-w", str(tmp)],
        check=True,
        capture_output=True,
    )
    (path,) = tmp.glob("lookout_xero-*.whl")
    with zipfile.ZipFile(path) as archive:
        yield archive


@pytest.fixture(scope="module")
def wheel_files(wheel) -> list[str]:
    return wheel.namelist()


def shipped(root: str) -> set[str]:
    """Files under `root` in the repository that a wheel must carry."""
    return {
        path.relative_to(ROOT).as_posix()
        for path in (ROOT / root).rglob("*")
        if path.is_file() and "__pycache__" not in path.parts
    }


def test_the_wheel_ships_templates_static_files_and_migrations(wheel_files):
    names = set(wheel_files)
    for folder in ("lookout_xero/templates", "lookout_xero/static", "lookout_xero/migrations"):
        expected = shipped(folder)
        assert expected, folder
        assert expected <= names, sorted(expected - names)
    assert "lookout_xero/migrations/0001_initial.py" in names
    assert "lookout_xero/templates/lookout_xero/admin/connection_change_form.html" in names
    assert "lookout_xero/static/lookout_xero/admin.js" in names
    assert "lookout_xero/testing/__init__.py" in names  # the fake Xero, for hosts' own tests


def test_the_wheel_holds_the_app_only(wheel_files):
    tops = {name.split("/", 1)[0] for name in wheel_files}
    (info,) = tops - {"lookout_xero"}
    assert info.startswith("lookout_xero-") and info.endswith(".dist-info")
    assert not [n for n in wheel_files if n.endswith((".pyc", ".sqlite3", ".log"))]
    for outside in ("tests/", "project/", "var/", "scripts/", "templates/", "docs/"):
        assert not [n for n in wheel_files if n.startswith(outside)], outside


def test_the_wheel_requires_only_what_the_app_imports(wheel, wheel_files):
    metadata = next(n for n in wheel_files if n.endswith(".dist-info/METADATA"))
    lines = wheel.read(metadata).decode().splitlines()
    required = sorted(
        re.split(r"[\s;<>=!~\[]", line.removeprefix("Requires-Dist:").strip(), maxsplit=1)[
            0
        ].lower()
        for line in lines
        if line.startswith("Requires-Dist:") and "extra ==" not in line
    )
    assert required == [
        "celery",
        "cryptography",
        "django",
        "django-fernet-fields-v2",
        "requests",
        "urllib3",  # the one not imported: a floor past advisories for requests' transport
    ]
    demo = [
        line for line in lines if line.startswith("Requires-Dist:") and 'extra == "demo"' in line
    ]
    assert any("django-environ" in line for line in demo)
    assert any("celery[redis]" in line for line in demo)


# Below these, a known advisory applies to how lookout_xero uses the package (CHANGELOG).
SECURITY_FLOORS = {
    "django": "5.2.13",
    "requests": "2.32.4",
    "cryptography": "46.0.5",
    "urllib3": "2.7.0",
}


def test_floors_are_past_the_advisories_and_constraints_meet_them():
    from packaging.requirements import Requirement
    from packaging.version import Version

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    requirements = {
        (req := Requirement(line)).name.lower(): req for line in project["dependencies"]
    }
    pins = dict(
        line.split("==")
        for line in (ROOT / "constraints.txt").read_text().splitlines()
        if "==" in line and not line.startswith("#")
    )
    pins = {name.lower(): version for name, version in pins.items()}
    for name, floor in SECURITY_FLOORS.items():
        specifier = requirements[name].specifier
        lowest = [Version(s.version) for s in specifier if s.operator == ">="]
        assert lowest and min(lowest) >= Version(floor), (name, str(specifier))
    for name, requirement in requirements.items():
        assert requirement.specifier.contains(pins[name]), (name, pins[name])
