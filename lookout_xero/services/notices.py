"""What PostgreSQL's queue trigger (`trigger`) said on each database connection.

The trigger raises a NOTICE for each change it queues; psycopg 3 hands it to a handler on
the driver connection, with the statement's own result. Kept here until a receiver or
`outbox.queue_changed_funders` reads it. No query.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass, field

from django.db import connections

PREFIX = "lookout_xero"  # a notice: "lookout_xero <trigger> <funder> <connection> drain|-"
DRAIN = "drain"
# Notices kept per database connection for saves whose receiver has not run yet: only a
# QuerySet.update() or raw SQL, which send no post_save, can pile them up.
MAX_UNREAD = 1000


@dataclass
class Notices:
    """What the trigger said on one database connection, until the receiver reads it."""

    queued: dict = field(default_factory=dict)  # funder pk as text -> the trigger's name
    drains: set = field(default_factory=set)  # connections that need a drain asked for

    def __call__(self, diagnostic) -> None:  # a psycopg notice handler
        words = (diagnostic.message_primary or "").split(" ")
        if len(words) != 5 or words[0] != PREFIX:
            return  # someone else's notice
        _, trigger, funder, connection, drain = words
        if len(self.queued) >= MAX_UNREAD:
            self.queued.clear()  # their saves' receivers queue them again: slower, not lost
        self.queued[funder] = trigger
        if drain == DRAIN:
            self.drains.add(int(connection))


# One per driver connection. Keyed by it, not by Django's wrapper: with a connection pool,
# Django announces the same driver connection again at each checkout.
_notices: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def listen(sender, connection, **kwargs) -> None:
    """connection_created: hear the trigger's notices on this database connection."""
    driver_connection = connection.connection
    if hasattr(driver_connection, "add_notice_handler") and driver_connection not in _notices:
        notices = _notices[driver_connection] = Notices()
        driver_connection.add_notice_handler(notices)


def _notices_of(using: str) -> Notices | None:
    db = connections[using]
    if db.vendor != "postgresql" or db.connection is None:
        return None
    return _notices.get(db.connection)


def queued_by(using: str, funder_pk) -> str | None:
    """The name of the trigger that said it queued this funder here, once; None if none did."""
    notices = _notices_of(using)
    return None if notices is None else notices.queued.pop(str(funder_pk), None)


def drains_heard(using: str) -> list[int]:
    """The drains the trigger asked for on this database connection since last read."""
    notices = _notices_of(using)
    if notices is None:
        return []
    drains, notices.drains = sorted(notices.drains), set()
    return drains
