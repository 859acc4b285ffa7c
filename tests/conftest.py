"""Shared fixtures: a fake Xero over real HTTP, demo data, and a real Celery worker process."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from celery.signals import before_task_publish
from django.db import connection

from lookout_xero.queues import ALL as LOOKOUT_XERO_QUEUES
from lookout_xero.testing.fake_xero import FakeXero
from tests.schema import assert_valid_contact_requests

ROOT = Path(__file__).resolve().parents[1]

# A test that asks for none of these (nor the django_db mark) cannot reach the test database:
# pytest-django refuses it any query.
DATABASE_FIXTURES = {
    "db",
    "transactional_db",
    "django_db_reset_sequences",
    "django_db_serialized_rollback",
    "django_db_setup",
    "live_server",
}


def pytest_addoption(parser):
    parser.addoption(
        "--database-tests-only",
        action="store_true",
        help="deselect the tests that use no database (a pass on a second database runs only "
        "what that database can change; scripts/test.sh runs the others once, on SQLite)",
    )


def uses_database(item) -> bool:
    return bool(
        item.get_closest_marker("django_db")
        or DATABASE_FIXTURES & set(getattr(item, "fixturenames", ()))
    )


def pytest_collection_modifyitems(config, items):
    if not config.getoption("--database-tests-only"):
        return
    deselected = [item for item in items if not uses_database(item)]
    if deselected:
        config.hook.pytest_deselected(items=deselected)
        items[:] = [item for item in items if uses_database(item)]


@pytest.fixture(scope="session")
def xero_server():
    server = FakeXero().start()
    yield server
    server.stop()


@pytest.fixture
def xero(xero_server, settings):
    """The fake Xero, empty, with lookout_xero pointed at it.

    Afterwards, every Contact the test sent must be valid against Xero's official schema.
    """
    xero_server.reset()
    settings.LOOKOUT_XERO = {
        **settings.LOOKOUT_XERO,
        "TOKEN_URL": xero_server.token_url,
        "API_URL": xero_server.api_url,
        "RETRY_BASE_SECONDS": 0.2,
        "RETRY_MAX_SECONDS": 1,
    }
    yield xero_server
    assert_valid_contact_requests(list(xero_server.requests))


@pytest.fixture
def published():
    """(task name, routing key) of every message published while the test runs (a test module
    may define its own `published` to record other parts of the message)."""
    seen = []

    def record(sender=None, routing_key=None, **kwargs):
        seen.append((sender, routing_key))

    before_task_publish.connect(record, weak=False)
    yield seen
    before_task_publish.disconnect(record)


@pytest.fixture
def organisation(db):
    # Imported here: the second host's tests (tests/hosts/) run without the demo app installed.
    from project.funders.models import Organisation

    return Organisation.objects.create(name="Harbour Trust")


# --- a real Celery worker ---------------------------------------------------------------------


def _database_url() -> str:
    """The URL of the test database pytest-django created, for the worker process."""
    db = connection.settings_dict
    if db["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{db['NAME']}"
    user = db.get("USER") or ""
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    auth = f"{user}{password}@" if user else ""
    return f"postgres://{auth}{db.get('HOST') or '127.0.0.1'}:{db.get('PORT') or 5432}/{db['NAME']}"


# Every queue a worker without -Q consumes (project/settings.py's CELERY_TASK_QUEUES).
TASK_QUEUES = (*LOOKOUT_XERO_QUEUES, "celery")

# How long processes trust a read of the Enabled switch in the tests, this one and the worker
# alike: a full sync is queued with this countdown.
ENABLED_CACHE_SECONDS = "0.5"


class Worker:
    """A `celery -A project worker -B` process on the test database and broker.

    One per test module: between two tests it is paused (it takes no message, runs no task)
    rather than killed, and started again only when it has to be (a test killed it, asked for
    other settings, or the broker cannot pause it quickly).
    """

    def __init__(self, xero_server: FakeXero) -> None:
        self.xero_server = xero_server
        self.process: subprocess.Popen | None = None
        self.environment: dict[str, str] = {}
        self.name = f"test-worker-{os.getpid()}@lookout"
        self.log_path = ROOT / "var" / f"test-worker-{os.getpid()}.log"
        # The worker's e-mail (its beat runs the alert check) goes to files a test can read.
        self.mail_dir = ROOT / "var" / f"test-mail-{os.getpid()}"

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def environment_for(self, settings: dict[str, str] | None = None) -> dict[str, str]:
        # (Less PYTEST_CURRENT_TEST, which names each test in turn: the worker serves them all.)
        inherited = {k: v for k, v in os.environ.items() if k != "PYTEST_CURRENT_TEST"}
        return {
            **inherited,
            # The worker loads the settings of this run (the demo's, or a second host's):
            # pytest-django puts them here whether they came from --ds, the environment or the ini.
            "DJANGO_SETTINGS_MODULE": os.environ["DJANGO_SETTINGS_MODULE"],
            "DATABASE_URL": _database_url(),
            "XERO_TOKEN_URL": self.xero_server.token_url,
            "XERO_API_URL": self.xero_server.api_url,
            "LOOKOUT_XERO_SWEEP_SECONDS": "2",
            "LOOKOUT_XERO_RETRY_BASE_SECONDS": "0.2",
            "LOOKOUT_XERO_RETRY_MAX_SECONDS": "1",
            "LOOKOUT_XERO_ALERT_SECONDS": "2",
            # Tests ask for a reconcile when they want one (its own test runs the beat task).
            "LOOKOUT_XERO_RECONCILE_SECONDS": "86400",
            # Likewise the read of contacts changed in Xero (tests without a webhook ask for it).
            "LOOKOUT_XERO_READ_CHANGES_SECONDS": "86400",
            "LOOKOUT_XERO_ALERT_RECIPIENTS": "team@lookout.example",
            "LOOKOUT_XERO_ENABLED_CACHE_SECONDS": ENABLED_CACHE_SECONDS,
            "EMAIL_BACKEND": "django.core.mail.backends.filebased.EmailBackend",
            "EMAIL_FILE_PATH": str(self.mail_dir),
            **(settings or {}),
        }

    def start(self, *, purge: bool = True, settings: dict[str, str] | None = None) -> None:
        """Start the worker; `purge=False` keeps what a killed worker left in the broker;
        `settings` overrides environment variables of the worker's settings."""
        self.environment = self.environment_for(settings)
        shutil.rmtree(self.mail_dir, ignore_errors=True)
        from project.celery import app

        if purge:
            app.control.purge()  # nothing left over from an earlier test's worker
        log = self.log_path.open("ab")
        started_at = log.tell()  # the log is appended to: only this start's lines count
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "project",
                "worker",
                "-B",
                "--loglevel=INFO",
                "--concurrency=2",
                "--without-gossip",
                "--without-mingle",
                "-n",
                self.name,
                "-s",
                str(ROOT / "var" / f"test-beat-{os.getpid()}"),
            ],
            cwd=ROOT,
            env=self.environment,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with self.log_path.open("rb") as lines:
                lines.seek(started_at)
                if b"ready." in lines.read():
                    return
            if self.process.poll() is not None:
                break
            time.sleep(0.05)
        raise RuntimeError(
            "Celery worker did not start:\n" + self.log_path.read_text(errors="replace")[-3000:]
        )

    def stop(self) -> None:
        """Kill the worker, its pool and its beat at once.

        A warm shutdown takes about seven seconds; what a killed task leaves behind is what the
        outbox and the sweep are there to recover, and the next test flushes it anyway.
        """
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        self.process = None

    # --- between two tests of a module

    def ready_for_test(self) -> None:
        """Before a test: the paused worker takes messages again, with nothing left over from
        the test before; a new one is started if this one cannot serve the test as it is."""
        if self.running and self.environment == self.environment_for():
            from project.celery import app

            shutil.rmtree(self.mail_dir, ignore_errors=True)
            app.control.purge()  # what was published while it was paused (the beat's too)
            for queue in TASK_QUEUES:
                app.control.add_consumer(queue, destination=[self.name], reply=False)
            if self._answers():
                return
        self.stop()
        self.start()

    def pause(self, timeout: float = 10.0) -> None:
        """After a test, before its database is flushed: no task running, none to come.

        Flushing while the worker writes can deadlock PostgreSQL's TRUNCATE, and a task of this
        test must not act in the next one: the worker stops taking messages, drops what it
        reserved or holds for later (countdowns), and the tasks it runs end. Through Celery's
        remote control; on the filesystem broker, which answers it only once a second, and when
        anything does not answer in time, the worker is killed instead.
        """
        from project.celery import app

        if not self.running or app.conf.broker_url.startswith("filesystem"):
            self.stop()
            return
        for queue in TASK_QUEUES:
            app.control.cancel_consumer(queue, destination=[self.name], reply=False)
        inspect = app.control.inspect(destination=[self.name], timeout=2, limit=1)
        revoked: set[str] = set()
        quiet = 0  # rounds in a row that found nothing running and nothing new to drop
        deadline = time.monotonic() + timeout
        while quiet < 2 and self._answers() and time.monotonic() < deadline:
            # Waiting before running: a task taken from the queue meanwhile is seen in one.
            waiting = [
                *(inspect.reserved() or {}).get(self.name, []),
                *(task["request"] for task in (inspect.scheduled() or {}).get(self.name, [])),
            ]
            running = (inspect.active() or {}).get(self.name)
            to_revoke = {task["id"] for task in waiting} - revoked
            if to_revoke:
                app.control.revoke(sorted(to_revoke), destination=[self.name])
                revoked |= to_revoke
            quiet = quiet + 1 if running == [] and not to_revoke else 0
            time.sleep(0.02)
        if quiet < 2:
            self.stop()

    def _answers(self) -> bool:
        """The worker has handled every control message sent before this one."""
        from project.celery import app

        return bool(app.control.ping(destination=[self.name], timeout=2))


@pytest.fixture(autouse=True)
def enabled_switches_forgotten(settings):
    """Each test's database is new under the same ids: what this process remembers of the
    connections' Enabled switches goes with it."""
    from lookout_xero import services

    lookout_xero = getattr(settings, "LOOKOUT_XERO", {})
    settings.LOOKOUT_XERO = {**lookout_xero, "ENABLED_CACHE_SECONDS": float(ENABLED_CACHE_SECONDS)}
    services.clear_enabled()
    yield
    services.clear_enabled()


@pytest.fixture(scope="module")
def worker_process(django_db_setup, xero_server):
    """The module's worker (started by the first test that asks for one)."""
    worker = Worker(xero_server)
    worker.log_path.unlink(missing_ok=True)
    yield worker
    worker.stop()


@pytest.fixture
def worker(worker_process, transactional_db, xero):
    """A running worker; the test's data is committed so the worker process can see it.

    Paused after each test, before the database is flushed (`Worker.pause`).
    """
    worker_process.ready_for_test()
    yield worker_process
    worker_process.pause()
