"""Run the demo: migrate, seed, a local Xero stand-in, a Celery worker with beat, the admin.

No services needed: SQLite and Celery's filesystem broker, both under var/. Ctrl-C stops all.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable
XERO_PORT = int(os.environ.get("DEMO_XERO_PORT", "8765"))
WEB_PORT = int(os.environ.get("DEMO_WEB_PORT", "8000"))
CLIENT_ID, CLIENT_SECRET = "demo-client", "demo-secret"


def _stop(signum, frame) -> None:
    raise KeyboardInterrupt  # a SIGTERM stops the demo's processes as Ctrl-C does


def main() -> None:
    signal.signal(signal.SIGTERM, _stop)
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "project.settings",
        "XERO_TOKEN_URL": f"http://127.0.0.1:{XERO_PORT}/connect/token",
        "XERO_API_URL": f"http://127.0.0.1:{XERO_PORT}",
        "LOOKOUT_XERO_SWEEP_SECONDS": "10",
    }
    run = lambda *args: subprocess.run([PY, *args], cwd=ROOT, env=env, check=True)  # noqa: E731
    run("manage.py", "migrate", "--noinput", "-v0")
    run("manage.py", "seed_demo")
    children = [
        subprocess.Popen(
            [
                PY,
                "-m",
                "lookout_xero.testing.fake_xero",
                "--port",
                str(XERO_PORT),
                "--client-id",
                CLIENT_ID,
                "--client-secret",
                CLIENT_SECRET,
                "--name",
                "Harbour Trust (demo Xero)",
                "--seed-demo",
            ],
            cwd=ROOT,
            env=env,
        ),
        subprocess.Popen(
            [
                PY,
                "-m",
                "celery",
                "-A",
                "project",
                "worker",
                "-B",
                "--loglevel=INFO",
                "--concurrency=2",
                "-s",
                str(ROOT / "var" / "celerybeat-schedule"),
            ],
            cwd=ROOT,
            env=env,
        ),
        subprocess.Popen(
            [PY, "manage.py", "runserver", f"127.0.0.1:{WEB_PORT}", "--noreload"], cwd=ROOT, env=env
        ),
    ]
    time.sleep(2)
    print(
        f"""
==========================================================================
 lookout-xero demo is running
   Admin:           http://127.0.0.1:{WEB_PORT}/admin/   (login admin / admin)
   Xero stand-in:   http://127.0.0.1:{XERO_PORT}
                    Client ID {CLIENT_ID}   Client Secret {CLIENT_SECRET}
 Add a Xero connection for "Harbour Trust" with those credentials, tick Enabled,
 save, then watch Xero sync > Sync log fill. Ctrl-C stops everything.
==========================================================================
""",
        flush=True,
    )
    try:
        while all(child.poll() is None for child in children):
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        for child in children:
            if child.poll() is None:
                # SIGTERM, not SIGINT: a demo started in the background (a script, a container)
                # gives its children SIGINT ignored, and they would wait out the timeout below.
                child.terminate()
        for child in children:
            try:
                child.wait(timeout=10)
            except subprocess.TimeoutExpired:
                child.kill()


if __name__ == "__main__":
    main()
