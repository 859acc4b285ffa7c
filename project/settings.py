"""Settings for the demo project. Every value can come from the environment (django-environ).

The defaults run on one machine with no services: SQLite under var/ and Celery's filesystem
broker, also under var/.
"""

from pathlib import Path

import django
import environ
from django.core.exceptions import ImproperlyConfigured
from kombu import Queue

import lookout_xero.queues as lookout_xero_queues

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = BASE_DIR / "var"
VAR_DIR.mkdir(exist_ok=True)

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

DEBUG = env.bool("DEBUG", default=True)
DEV_SECRET_KEY = "dev-only-not-secret-change-me-in-production-0123456789"
DEV_FERNET_KEY = "dev-only-fernet-key-change-me-in-production"
SECRET_KEY = env("SECRET_KEY", default=DEV_SECRET_KEY)
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"])

# The first key encrypts; the others still decrypt (rotation).
FERNET_KEYS = env.list("FERNET_KEYS", default=[DEV_FERNET_KEY])

if not DEBUG and (SECRET_KEY == DEV_SECRET_KEY or DEV_FERNET_KEY in FERNET_KEYS):
    raise ImproperlyConfigured(
        "DEBUG is off (production) but SECRET_KEY or FERNET_KEYS is the development default: "
        "set both in the environment (see docs/operations.md, Production)."
    )

# --- production: https, cookies, HSTS. The defaults suit a laptop (DEBUG on); with DEBUG off
# cookies are https-only and plain http is redirected unless the environment says otherwise.
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])
SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=not DEBUG)
CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=not DEBUG)
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=not DEBUG)
# HSTS is remembered by browsers for its whole duration, so it is switched on explicitly.
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=False)
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=False)
# Behind a TLS-terminating proxy: e.g. "HTTP_X_FORWARDED_PROTO,https". Set it only when the
# proxy always sets (and strips any client-sent) header of that name.
_proxy_header = env.list("SECURE_PROXY_SSL_HEADER", default=[])
if _proxy_header:
    SECURE_PROXY_SSL_HEADER = tuple(_proxy_header)

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "project.funders",
    "lookout_xero",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "project.urls"
WSGI_APPLICATION = "project.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {
    "default": env.db("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'lookout.sqlite3'}"),
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # A file, not memory, so a Celery worker process can share the test database; WAL and a
    # busy timeout let the web process and the worker write without "database is locked".
    DATABASES["default"]["TEST"] = {
        "NAME": env("TEST_SQLITE_PATH", default=str(VAR_DIR / "test.sqlite3"))
    }
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 20,
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        "transaction_mode": "IMMEDIATE",
    }

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

LANGUAGE_CODE = "en-gb"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"

LOGIN_URL = "admin:login"

# --- e-mail (the Lookout team's alerts) ----------------------------------------------------
# The console by default, so the demo prints its alerts; the file backend writes to EMAIL_FILE_PATH.
_email_backend = env("EMAIL_BACKEND", default="django.core.mail.backends.console.EmailBackend")
_email_file_path = env("EMAIL_FILE_PATH", default=str(VAR_DIR / "mail"))
# Production sends through an SMTP server (EMAIL_BACKEND=...smtp.EmailBackend, EMAIL_HOST...).
_smtp = {
    "host": env("EMAIL_HOST", default="localhost"),
    "port": env.int("EMAIL_PORT", default=25),
    "username": env("EMAIL_HOST_USER", default=""),
    "password": env("EMAIL_HOST_PASSWORD", default=""),
    "use_tls": env.bool("EMAIL_USE_TLS", default=False),
}
if django.VERSION >= (6, 1):
    # Django 6.1 replaces EMAIL_BACKEND and the other EMAIL_* settings with MAILERS (and
    # refuses both at once); the demo's environment variables keep their names on every release.
    _options = {
        "django.core.mail.backends.filebased.EmailBackend": {"file_path": _email_file_path},
        "django.core.mail.backends.smtp.EmailBackend": _smtp,
    }
    MAILERS = {"default": {"BACKEND": _email_backend, "OPTIONS": _options.get(_email_backend, {})}}
else:
    EMAIL_BACKEND = _email_backend
    EMAIL_FILE_PATH = _email_file_path
    EMAIL_HOST, EMAIL_PORT = _smtp["host"], _smtp["port"]
    EMAIL_HOST_USER, EMAIL_HOST_PASSWORD = _smtp["username"], _smtp["password"]
    EMAIL_USE_TLS = _smtp["use_tls"]
DEFAULT_FROM_EMAIL = env("DEFAULT_FROM_EMAIL", default="lookout-xero@localhost")

# --- Celery -------------------------------------------------------------------------------
CELERY_BROKER_URL = env("CELERY_BROKER_URL", default="filesystem://")
if CELERY_BROKER_URL.startswith("filesystem://"):
    # An embedded broker that needs no server: messages are files in one shared folder.
    _broker_dir = Path(env("BROKER_DIR", default=str(VAR_DIR / "broker")))
    _broker_dir.mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir),
        "data_folder_out": str(_broker_dir),
        "control_folder": str(_broker_dir / "control"),
        "store_processed": False,
    }
elif CELERY_BROKER_URL.startswith(("redis://", "rediss://")):
    # A message a worker took but never acknowledged (it was killed) is handed out again after
    # this long. It must exceed the longest countdown the app schedules (25 minutes: drain
    # follow-ups are capped there), or Redis would hand a countdown task to a second worker.
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "visibility_timeout": 2 * 3600,
        **lookout_xero_queues.REDIS_TRANSPORT_OPTIONS,  # queues taken in the order listed
    }
CELERY_TASK_IGNORE_RESULT = True
# Crash safety: a task is acknowledged when it ends, not when it starts, and a worker killed
# mid-task (OOM killer, a deploy out of grace time) gives its message back to the broker
# (RabbitMQ at once; Redis after the visibility timeout). Every lookout_xero task is safe to
# run twice: the lease turns a second drain away, a run is claimed once, batches replay by
# Idempotency-Key.
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
# One message at a time per worker process: a drain waiting behind a long plan in the same
# process would otherwise be stuck there while other workers are idle.
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# Each kind of work has its own queue (lookout_xero.queues); `celery worker -Q ...` picks them.
# Listed in the order a worker without -Q takes them: a person's drain (lookout_xero.edits) first.
CELERY_TASK_ROUTES = lookout_xero_queues.TASK_ROUTES
CELERY_TASK_QUEUES = [Queue(name) for name in (*lookout_xero_queues.ALL, "celery")]
# Publishing must not hang a web request when the broker is down: the outbox sweep delivers later.
CELERY_BROKER_CONNECTION_TIMEOUT = 3
CELERY_TASK_PUBLISH_RETRY_POLICY = {"max_retries": 2, "interval_start": 0, "interval_step": 0.5}
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")

# --- lookout_xero ----------------------------------------------------------------------------
# Like AUTH_USER_MODEL: the host's models, read when lookout_xero's models load.
LOOKOUT_XERO_ORGANISATION_MODEL = "funders.Organisation"
LOOKOUT_XERO_FUNDER_MODEL = "funders.Funder"

LOOKOUT_XERO = {
    "TOKEN_URL": env("XERO_TOKEN_URL", default="https://identity.xero.com/connect/token"),
    "API_URL": env("XERO_API_URL", default="https://api.xero.com"),
    "RETRY_BASE_SECONDS": env.float("LOOKOUT_XERO_RETRY_BASE_SECONDS", default=5),
    "RETRY_MAX_SECONDS": env.float("LOOKOUT_XERO_RETRY_MAX_SECONDS", default=900),
    "ENABLED_CACHE_SECONDS": env.float("LOOKOUT_XERO_ENABLED_CACHE_SECONDS", default=2),
    "ALERT_RECIPIENTS": env.list("LOOKOUT_XERO_ALERT_RECIPIENTS", default=["team@lookout.example"]),
    "ALERT_AFTER_MINUTES": env.int("LOOKOUT_XERO_ALERT_AFTER_MINUTES", default=60),
    "SITE_URL": env("SITE_URL", default="http://127.0.0.1:8000"),
    # The demo reconciles every few minutes; the app's default is hourly.
    "RECONCILE_SECONDS": env.int("LOOKOUT_XERO_RECONCILE_SECONDS", default=300),
    # Connections without a verified webhook: how often what changed in Xero is read.
    "READ_CHANGES_SECONDS": env.int("LOOKOUT_XERO_READ_CHANGES_SECONDS", default=300),
}
# lookout_xero's periodic tasks: the sweep, alerts, the reconcile and log retention.
CELERY_BEAT_SCHEDULE = lookout_xero_queues.beat_schedule(
    LOOKOUT_XERO,
    sweep_seconds=env.int("LOOKOUT_XERO_SWEEP_SECONDS", default=30),
    alert_seconds=env.int("LOOKOUT_XERO_ALERT_SECONDS", default=60),
)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "loggers": {
        "lookout_xero": {
            "handlers": ["console"],
            "level": env("LOOKOUT_XERO_LOG_LEVEL", default="INFO"),
        },
    },
}
