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


# Fields whose change is said in words of its own (never with the value).
WRITE_ONLY = {"client_secret": "the Client Secret", "webhook_key": "the webhook key"}


def connection_saved(user, connection, changed: list[str], *, adding: bool) -> None:
    """The admin saved a connection: one row saying what changed, in words.

    The connection form notes which write-only fields held a value before the save
    (`lx_had_values`): typing one is "Replaced" only when there was one to replace. The admin
    logs nothing else for the save (`XeroConnectionAdmin.log_change`), so each save is one line.
    """
    had = getattr(connection, "lx_had_values", frozenset())
    words = change_words(connection, changed, adding=adding, had=had)
    if words:
        record(user, connection, " ".join(words))


def change_words(connection, changed, *, adding: bool, had=frozenset()) -> list[str]:
    words = []
    for name, label in WRITE_ONLY.items():
        if name in changed:
            verb = "Replaced" if name in had and not adding else "Set"
            words.append(f"{verb} {label}.")
    if "client_id" in changed and not adding:
        words.append("Changed the Client ID.")
    if "enabled" in changed or (adding and connection.enabled):
        words.append("Enabled the sync." if connection.enabled else "Disabled the sync.")
    for name in changed:
        if name not in {*WRITE_ONLY, "client_id", "enabled"} and not adding:
            field = connection._meta.get_field(name)
            words.append(f"Changed {field.verbose_name}.")
    return words


def customer_link_used(link, connection, changed: list[str], had: frozenset) -> None:
    """Credentials given through a customer's link: the row is the link maker's, and says so."""
    words = change_words(connection, changed, adding=False, had=had)
    if not words:
        return
    record(
        link.created_by,
        connection,
        f"Through credentials link #{link.pk}, the customer: "
        + " ".join(word[0].lower() + word[1:] for word in words),
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
