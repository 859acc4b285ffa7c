"""Production settings: with production values from the environment, `check --deploy` is clean."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.conftest import ROOT

PRODUCTION = {
    "DEBUG": "false",
    "SECRET_KEY": "k3#r9!x2@v8&q5^m1*z7(w4)t6_y0+u-i=o[p]a{s}d;f:g'h,j.l<b>n?c",
    "FERNET_KEYS": "production-fernet-key-7f3a9c2e,previous-fernet-key-1b4d",
    "ALLOWED_HOSTS": "lookout.example.com",
    "CSRF_TRUSTED_ORIGINS": "https://lookout.example.com",
    "SECURE_HSTS_SECONDS": "31536000",
    "SECURE_HSTS_INCLUDE_SUBDOMAINS": "true",
    "SECURE_HSTS_PRELOAD": "true",
    "SECURE_PROXY_SSL_HEADER": "HTTP_X_FORWARDED_PROTO,https",
    "SITE_URL": "https://lookout.example.com",
    "XERO_TOKEN_URL": "https://identity.xero.com/connect/token",
    "XERO_API_URL": "https://api.xero.com",
    # Alerts must reach the team: an SMTP server, not the demo's console.
    "EMAIL_BACKEND": "django.core.mail.backends.smtp.EmailBackend",
    "EMAIL_HOST": "smtp.lookout.example.com",
    "EMAIL_PORT": "587",
    "EMAIL_USE_TLS": "true",
}


def manage(*args, tmp_path, drop=(), **env) -> subprocess.CompletedProcess:
    environment = {
        **{name: value for name, value in os.environ.items() if name not in drop},
        "DATABASE_URL": f"sqlite:///{tmp_path / 'deploy.sqlite3'}",
        "CELERY_BROKER_URL": "redis://127.0.0.1:6379/0",
        **env,
    }
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_check_deploy_reports_nothing_with_production_values(tmp_path):
    result = manage("check", "--deploy", "--fail-level", "DEBUG", tmp_path=tmp_path, **PRODUCTION)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout


def test_check_deploy_names_what_is_missing(tmp_path):
    lax = {**PRODUCTION, "SECURE_HSTS_SECONDS": "0", "SESSION_COOKIE_SECURE": "false"}
    result = manage("check", "--deploy", "--fail-level", "WARNING", tmp_path=tmp_path, **lax)
    assert result.returncode != 0
    assert "security.W004" in result.stderr and "security.W012" in result.stderr


def test_production_refuses_the_development_keys(tmp_path):
    keys = ("SECRET_KEY", "FERNET_KEYS")
    without_keys = {name: value for name, value in PRODUCTION.items() if name not in keys}
    result = manage("check", tmp_path=tmp_path, drop=keys, **without_keys)
    assert result.returncode != 0
    assert "SECRET_KEY or FERNET_KEYS is the development default" in result.stderr
