"""All a host CRM needs to run lookout_xero, and nothing of the demo project.

`make wheel-check` runs `django-admin check` and `migrate` with these settings against the
installed wheel, in a clean virtualenv that has no django-environ and no Redis client.
"""

import lookout_xero.queues

CRM = __package__  # "crm" in the wheel check, "tests.hosts.crm" in the tests

SECRET_KEY = "crm-host-test-only-0123456789-abcdefghijklmnopqrstuvwxyz"
DEBUG = False
ALLOWED_HOSTS = ["localhost", "127.0.0.1"]
FERNET_KEYS = ["crm-host-test-only-fernet-key"]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    CRM,
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
ROOT_URLCONF = f"{CRM}.urls"
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
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
DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
USE_TZ = True
STATIC_URL = "static/"

# --- lookout_xero: every name it needs from the host, none of them the demo's -------------------
LOOKOUT_XERO_ORGANISATION_MODEL = "crm.Club"
LOOKOUT_XERO_FUNDER_MODEL = "crm.Member"
LOOKOUT_XERO = {
    "ORGANISATION_FIELD": "club",
    "ORGANISATION_NAME_FIELD": "title",
    "MEMBERSHIP_FIELD": "kind",
    "MEMBERSHIP_VALUE": "member",
    "ARCHIVED_FIELD": "is_archived",
    "MAPPING": f"{CRM}.mapping.map_member",
    "REVERSE_MAPPING": f"{CRM}.mapping.unmap_member",
    "CONTACT_NUMBER_PREFIX": "CLUB-M",
    "DEFAULT_SCOPE": "accounting.contacts accounting.settings.read",
    "CONFLICT_NAME_SUFFIX": " [{n}]",
    "BATCH_SIZE": 2,
    "PAGE_SIZE": 2,
}
# lookout_xero's periodic tasks, as shipped (RECONCILE_SECONDS from the dict above).
CELERY_BEAT_SCHEDULE = lookout_xero.queues.beat_schedule(LOOKOUT_XERO)
