"""Who did what to a connection, and when: Django's admin log, with messages that say so.

Never a secret: messages name what changed, not the value it changed to.
"""

from __future__ import annotations

from django.contrib.admin.models import CHANGE, LogEntry
from django.contrib.contenttypes.models import ContentType
from django.db.models import Q

# A credentials link can be made before the organisation has a connection, so those entries
# are kept against the organisation and start with this.
LINK_PREFIX = "Created a credentials link"


def record(user, obj, message: str) -> None:
    """One admin-log row on `obj` (a connection or an organisation) by `user`."""
    if user is None or not getattr(user, "pk", None):
        return
    LogEntry.objects.create(
        user_id=user.pk,
        content_type=ContentType.objects.get_for_model(obj),
        object_id=str(obj.pk),
        object_repr=str(obj)[:200],
        action_flag=CHANGE,
        change_message=message,
    )


def connection_saved(user, connection, changed: list[str], *, adding: bool) -> None:
    """The admin saved a connection: record the changes that matter, in words."""
    if "client_secret" in changed:
        record(
            user, connection, "Set the Client Secret." if adding else "Replaced the Client Secret."
        )
    if "client_id" in changed and not adding:
        record(user, connection, "Changed the Client ID.")
    if "webhook_key" in changed:
        record(user, connection, "Set the webhook key." if adding else "Replaced the webhook key.")
    if "enabled" in changed or (adding and connection.enabled):
        record(
            user, connection, "Enabled the sync." if connection.enabled else "Disabled the sync."
        )


def history(connection, limit: int = 50) -> list[LogEntry]:
    """The connection's admin-log rows, with the links made for its organisation, newest first."""
    get_type = ContentType.objects.get_for_model
    return list(
        LogEntry.objects.filter(
            Q(content_type=get_type(connection), object_id=str(connection.pk))
            | Q(
                content_type=get_type(connection.organisation),
                object_id=str(connection.organisation_id),
                change_message__startswith=LINK_PREFIX,
            )
        )
        .select_related("user")
        .order_by("-action_time", "-pk")[:limit]
    )
