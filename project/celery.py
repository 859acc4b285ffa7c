"""Celery app for the demo project: `celery -A project worker` / `celery -A project beat`."""

import logging
import os

from celery import Celery
from celery.signals import after_setup_logger

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")

app = Celery("project")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


# Beat's housekeeping runs every few seconds; three lines a run would bury what matters in the
# worker's output (the alert e-mails, the sync). Its runs are logged only when they did something.
QUIET_TASKS = ("lookout_xero.sweep_outbox", "lookout_xero.check_alerts")


def _did_something(return_value) -> bool:
    # Both tasks return counts, logged as a repr such as "{'runs': 0, 'webhooks': 0}".
    return any(ch in "123456789" for ch in str(return_value))


class QuietHousekeeping(logging.Filter):
    """Drops the received/sending/succeeded lines of housekeeping runs that did nothing."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args if isinstance(record.args, dict) else {}
        name = args.get("name") or ""
        if name not in QUIET_TASKS:
            text = record.getMessage() if "due task" in str(record.msg) else ""
            return not any(task in text for task in QUIET_TASKS)
        if "return_value" in args:
            return _did_something(args["return_value"])
        return False  # "Task … received": the "succeeded" line says what it did, if anything


@after_setup_logger.connect
def _quiet_housekeeping(logger, **kwargs) -> None:
    for handler in logger.handlers:
        handler.addFilter(QuietHousekeeping())
