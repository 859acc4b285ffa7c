"""The suite on each maintained Django release, each in its own virtualenv: `make test-releases`.

    .venv/bin/nox -s tests-6.1             # one release
    .venv/bin/nox -s tests-6.1 -- -x -k admin   # pytest arguments after --
    NOX_FULL=1 .venv/bin/nox -s tests-6.0  # the whole suite, slow tests included

Each session runs the fast suite on SQLite and the embedded filesystem broker unless
DATABASE_URL / CELERY_BROKER_URL say otherwise. "Fast" is what `make test` runs: the suite,
real Celery workers and the headless browser included, less the tests marked `slow` (workers
killed and a lease waited out); `make test-all` runs those too, on the release constraints.txt
pins (5.2).

A release's Python is found on PATH (python3.12), else under pyenv; a session whose Python is
missing is skipped with a message, and is an error when CI=true (nox's default there).
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
from pathlib import Path

import nox

ROOT = Path(__file__).resolve().parent
VAR = ROOT / "var"

# Release -> the Python it runs on here: each the newest of 3.11/3.12/3.13 that the release
# supports and that keeps the runs spread over all three (Django 6 needs Python >= 3.12).
RELEASES = {"5.2": "3.11", "6.0": "3.12", "6.1": "3.13"}
# The suite less the tests marked slow (they SIGKILL a worker and wait out the lease: about
# 50 s each); `make test-all` runs them on 5.2.
FAST = ["-m", "not slow"]

nox.options.default_venv_backend = "venv"
nox.options.reuse_existing_virtualenvs = True
nox.options.sessions = [f"tests-{release}" for release in RELEASES]


def interpreter(version: str) -> str:
    """A python3.X that runs: on PATH, else pyenv's newest 3.X.*; else the bare version.

    A pyenv shim on PATH answers to python3.X even when that version is not selected, and then
    fails: each candidate is tried. nox reports a bare version it cannot find.
    """
    pyenv = os.environ.get("PYENV_ROOT", os.path.expanduser("~/.pyenv"))
    installed = glob.glob(f"{pyenv}/versions/{version}.*/bin/python")
    installed.sort(key=lambda path: [int(p) for p in Path(path).parts[-3].split(".")])
    for candidate in [shutil.which(f"python{version}"), *reversed(installed)]:
        if candidate and subprocess.run([candidate, "-c", ""], capture_output=True).returncode == 0:
            return candidate
    return version


def constraints_without_django(session: nox.Session) -> str:
    """constraints.txt less its Django pin: the pins the suite passed with, the release apart."""
    lines = (ROOT / "constraints.txt").read_text().splitlines()
    kept = [line for line in lines if not line.lower().startswith("django==")]
    path = Path(session.create_tmp()) / "constraints.txt"
    path.write_text("\n".join(kept) + "\n")
    return str(path)


def make_session(release: str, python: str) -> None:
    @nox.session(name=f"tests-{release}", python=interpreter(python))
    def tests(session: nox.Session) -> None:
        major, minor = release.split(".")
        session.install(
            "-c",
            constraints_without_django(session),
            "-e",
            ".[demo,test]",
            f"Django>={release},<{major}.{int(minor) + 1}",
        )
        session.run("python", "-m", "django", "--version")
        VAR.mkdir(exist_ok=True)
        tag = release.replace(".", "")
        env = {
            "DATABASE_URL": os.environ.get("DATABASE_URL", f"sqlite:///{VAR}/nox-{tag}.sqlite3"),
            "TEST_SQLITE_PATH": str(VAR / f"test-nox-{tag}.sqlite3"),
            "CELERY_BROKER_URL": os.environ.get("CELERY_BROKER_URL", "filesystem://"),
            "BROKER_DIR": str(VAR / f"broker-nox-{tag}"),
        }
        # Messages a previous run left in the filesystem broker would greet this run's workers.
        shutil.rmtree(env["BROKER_DIR"], ignore_errors=True)
        selection = [] if os.environ.get("NOX_FULL") else FAST
        session.run("python", "manage.py", "check", "--fail-level", "WARNING", env=env)
        session.run("python", "manage.py", "makemigrations", "--check", "--dry-run", env=env)
        session.run("python", "-m", "pytest", "-q", *selection, *session.posargs, env=env)
        if any(Path(arg.split("::")[0]).exists() for arg in session.posargs):
            return  # arguments naming test files are for the main suite (as in scripts/test.sh)
        session.run(
            "python",
            "-m",
            "pytest",
            "-q",
            "--ds=tests.hosts.crm.settings",
            "tests/hosts/crm",
            *selection,
            *session.posargs,
            env=env,
            success_codes=[0, 5],  # 5: the selection left none of the host's tests
        )


for _release, _python in RELEASES.items():
    make_session(_release, _python)
