"""The second host inside the tests: the demo project's environment, the CRM's apps and names.

Database, broker, Xero's URLs and the retry pace come from the environment through the demo's
settings (so scripts/test.sh and the worker fixture drive it the same way); everything about the
host is `minimal_settings`.
"""

from project.settings import *  # noqa: F403
from project.settings import LOOKOUT_XERO as DEMO_LOOKOUT_XERO

from . import minimal_settings as host

INSTALLED_APPS = host.INSTALLED_APPS
ROOT_URLCONF = host.ROOT_URLCONF
LOOKOUT_XERO_ORGANISATION_MODEL = host.LOOKOUT_XERO_ORGANISATION_MODEL
LOOKOUT_XERO_FUNDER_MODEL = host.LOOKOUT_XERO_FUNDER_MODEL
LOOKOUT_XERO = {**host.LOOKOUT_XERO, **DEMO_LOOKOUT_XERO}
CELERY_BEAT_SCHEDULE = host.CELERY_BEAT_SCHEDULE
