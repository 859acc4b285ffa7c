"""Corrections made in Xero, flowing back into Lookout where a connection lets them (rule 9).

Per connection and Contact field, a *direction* says who wins when the bookkeeper changes a
value Lookout sent:

- ``lookout`` (the default): the drift is shown; Lookout's next push sends Lookout's value.
- ``ask``: the drift waits for a person (*Take Xero's value* / *Keep Lookout's*); meanwhile
  every push sends Xero's own value for that field, so nothing is written to it.
- ``xero``: Xero's value is written into the funder at once, through the funder's `save()`.

Taking a value never starts a loop. The link's ``last_sent`` (what Lookout believes Xero
holds) is set to the value taken, so the push the funder's save queues finds Xero already
holding everything it would send (`drain._xero_holds`) and sends nothing. A value the funder
cannot hold (its model field refuses it, or an invalid e-mail) is refused with a log row and
waits for a person like an ``ask``.

Drift entries carry ``waiting`` (a person must decide), so the drain knows what to hold from
the link alone, and the link's ``decision_since`` says since when someone is awaited.
"""

from __future__ import annotations

import logging

from django.core.exceptions import FieldDoesNotExist, ValidationError
from django.db import transaction
from django.utils import timezone

from .. import audit, conf, dispatch, mapping, wording
from ..client import XeroContact
from ..models import SyncLog, XeroConnection, XeroContactLink
from ..signals import contact_corrected_in_xero
from .outbox import queue_funder
from .records import write_log

logger = logging.getLogger(__name__)

Outcome = SyncLog.Outcome
LOOKOUT, ASK, XERO = "lookout", "ask", "xero"
DIRECTIONS = (LOOKOUT, ASK, XERO)


# --- directions -----------------------------------------------------------------------------


def directions_of(connection: XeroConnection) -> dict[str, str]:
    """Every field's direction on this connection; a field never set is Lookout's."""
    chosen = connection.directions or {}
    return {
        field: chosen.get(field) if chosen.get(field) in DIRECTIONS else LOOKOUT
        for field in mapping.DIRECTION_FIELDS
    }


def direction_of(directions: dict[str, str], path: str) -> str:
    return directions.get(mapping.field_of(path), LOOKOUT)


def check_directions(changes: dict[str, str]) -> dict[str, str]:
    """The changes, validated; a ValueError says what is wrong in words."""
    checked = {}
    for field, direction in changes.items():
        if field == "Website":
            raise ValueError(
                "Website: Xero's API cannot write it, so Lookout never sends it and the two "
                "sides never disagree on it; it has no direction."
            )
        if field not in mapping.DIRECTION_FIELDS:
            raise ValueError(
                f"{field}: not a Contact field Lookout sends "
                f"({', '.join(mapping.DIRECTION_FIELDS)})."
            )
        direction = str(direction).strip().lower()
        if direction not in DIRECTIONS:
            raise ValueError(f"{field}={direction}: choose {', '.join(DIRECTIONS)}.")
        checked[field] = direction
    return checked


def set_directions(connection: XeroConnection, changes: dict[str, str], *, user=None) -> dict:
    """Set some fields' directions; returns every field's. Links waiting on a field that is now
    Lookout's stop waiting (its next push sends Lookout's value), and the other way round."""
    changes = check_directions(changes)
    with transaction.atomic():
        locked = XeroConnection.objects.select_for_update().only("pk", "directions")
        current = locked.get(pk=connection.pk).directions or {}
        before = directions_of(XeroConnection(directions=current))
        # Lookout's is the default: it is not stored, so the row says only what was chosen.
        stored = {**current, **changes}
        stored = {field: d for field, d in stored.items() if d != LOOKOUT}
        XeroConnection.objects.filter(pk=connection.pk).update(directions=stored)
        connection.directions = stored
        after = directions_of(connection)
        changed = [field for field in after if after[field] != before[field]]
        if changed:
            _reflag_links(connection, after)
            audit.record(
                user,
                connection,
                "Changed who wins on a difference with Xero: "
                + ", ".join(f"{field} → {after[field]}" for field in changed)
                + ".",
            )
    return after


def _reflag_links(connection: XeroConnection, directions: dict[str, str]) -> None:
    links = XeroContactLink.objects.filter(connection=connection, drift_seen_at__isnull=False)
    for link in links.only("pk", "drift", "decision_since"):
        drift = _flagged(link.drift, directions)
        if drift != link.drift:
            link.drift = drift
            link.decision_since = _decision_since(link, drift)
            link.save(update_fields=["drift", "decision_since", "updated_at"])


def _flagged(drift: dict, directions: dict[str, str]) -> dict:
    """Drift entries with `waiting` set for the fields a person must decide."""
    return {
        path: {
            "lookout": values.get("lookout", ""),
            "xero": values.get("xero", ""),
            **({"waiting": True} if direction_of(directions, path) != LOOKOUT else {}),
        }
        for path, values in drift.items()
    }


def _decision_since(link: XeroContactLink, drift: dict):
    if any(values.get("waiting") for values in drift.values()):
        return link.decision_since or timezone.now()
    return None


def held(link: XeroContactLink) -> dict[str, object]:
    """The paths a push must not change (waiting for a person), with Xero's value for each."""
    return {path: v.get("xero", "") for path, v in (link.drift or {}).items() if v.get("waiting")}


# --- what Xero shows, against what Lookout sent -------------------------------------------


def review_drift(connection: XeroConnection, link: XeroContactLink, contact: XeroContact) -> None:
    """Which fields Lookout sent differ in Xero now, and what each field's direction does."""
    if not link.last_sent or link.state in link.HELD_STATES:
        return
    directions = directions_of(connection)
    found = _flagged(mapping.drift(link.last_sent, contact.profile), directions)
    to_take = {
        path: values["xero"]
        for path, values in found.items()
        if direction_of(directions, path) == XERO
        # Already refused with this very value: not again at every read (and log row).
        and (link.drift or {}).get(path, {}).get("xero") != values["xero"]
    }
    if to_take:
        taken, _ = _take(connection, link, to_take, chosen_by="")
        found = {path: values for path, values in found.items() if path not in taken}
    _record(connection, link, found)


def _record(connection: XeroConnection, link: XeroContactLink, found: dict) -> None:
    if found == link.drift:
        return
    new = {path: v for path, v in found.items() if (link.drift or {}).get(path) != v}
    link.drift = found
    link.drift_seen_at = (link.drift_seen_at or timezone.now()) if found else None
    if new:
        link.drift_seen_at = timezone.now()
    link.decision_since = _decision_since(link, found)
    link.save(update_fields=["drift", "drift_seen_at", "decision_since", "updated_at"])
    if new:
        _log(connection, link, Outcome.DRIFT, wording.drifted(found))


# --- a person's decision ------------------------------------------------------------------


def take_xero_values(link: XeroContactLink, fields=None, *, user=None) -> tuple[list, dict]:
    """A person takes Xero's values (those shown on the link) into the funder.

    `fields`: Contact fields (all the link's drift when None). Returns the fields taken and
    {field: why} for those refused.
    """
    chosen_by = _name(user)
    values = {
        path: v.get("xero", "")
        for path, v in (link.drift or {}).items()
        if fields is None or mapping.field_of(path) in fields
    }
    if not values:
        return [], {}
    connection = link.connection
    with transaction.atomic():
        taken, refusals = _take(connection, link, values, chosen_by=chosen_by)
        found = {path: v for path, v in link.drift.items() if path not in taken}
        _record(connection, link, found)
    fields_taken = sorted({mapping.field_of(path) for path in taken})
    if fields_taken:
        audit.record(user, connection, f"Took Xero's {', '.join(fields_taken)} for {link.funder}.")
    return fields_taken, refusals


def keep_lookout_values(link: XeroContactLink, fields=None, *, user=None) -> list[str]:
    """A person keeps Lookout's values: those fields' drift is cleared and pushed now."""
    chosen_by = _name(user)
    kept = {
        path: v
        for path, v in (link.drift or {}).items()
        if fields is None or mapping.field_of(path) in fields
    }
    if not kept:
        return []
    connection = link.connection
    current = _current(link.funder)
    with transaction.atomic():
        # Seen and decided: Xero's value is known, so it is not reported again (a read before
        # the push would find it), and Lookout's, which differs, is what the push sends.
        link.last_sent = {**link.last_sent, **{p: v.get("xero", "") for p, v in kept.items()}}
        link.drift = {path: v for path, v in link.drift.items() if path not in kept}
        link.drift_seen_at = link.drift_seen_at if link.drift else None
        link.decision_since = _decision_since(link, link.drift)
        link.payload_hash = ""  # sent even if nothing changed in Lookout since the last push
        link.save(
            update_fields=[
                "last_sent",
                "drift",
                "drift_seen_at",
                "decision_since",
                "payload_hash",
                "updated_at",
            ]
        )
        if connection.enabled and not link.is_held:
            queue_funder(connection.pk, link.funder_id)
            dispatch.edit_drain_on_commit(connection.pk)
    for field in sorted({mapping.field_of(path) for path in kept}):
        changes = [
            (path, mapping.flat_text(current.get(path, v.get("lookout"))), v.get("xero", ""))
            for path, v in kept.items()
            if mapping.field_of(path) == field
        ]
        _log(connection, link, Outcome.KEPT, wording.kept_lookouts(field, changes, chosen_by))
    fields_kept = sorted({mapping.field_of(path) for path in kept})
    audit.record(user, connection, f"Kept Lookout's {', '.join(fields_kept)} for {link.funder}.")
    return fields_kept


def _name(user) -> str:
    return user.get_username() if user is not None and getattr(user, "pk", None) else ""


# --- taking values into the funder --------------------------------------------------------


def _take(
    connection: XeroConnection,
    link: XeroContactLink,
    values: dict[str, object],
    *,
    chosen_by: str,
) -> tuple[set[str], dict[str, str]]:
    """Write Xero's `values` ({path: value}) into the funder, field by field. Returns the paths
    taken, and {field: why} for the fields refused (logged, and left as they were)."""
    funder = conf.funder_model()._default_manager.get(pk=link.funder_id)
    current = _current(funder)
    by_field: dict[str, dict[str, object]] = {}
    for path, value in values.items():
        by_field.setdefault(mapping.field_of(path), {})[path] = value
    reverse = conf.reverse_mapping_function()
    changes: dict[str, object] = {}
    taken: dict[str, dict[str, object]] = {}
    refused: dict[str, str] = {}
    for field, paths in sorted(by_field.items()):
        # The field as Lookout has it, with Xero's values where they differ: a phone Lookout
        # changed meanwhile beside the one Xero changed keeps Lookout's number.
        whole = {p: v for p, v in current.items() if mapping.field_of(p) == field}
        whole.update(paths)
        contact_fields = {field: mapping.unflatten(whole)[field]}
        cleaned, reason = _funder_values(funder, field, paths, reverse, contact_fields)
        if reason:
            refused[field] = reason
            continue
        changes.update(cleaned)
        taken[field] = paths
    changed = {name: value for name, value in changes.items() if getattr(funder, name) != value}
    for name, value in changed.items():
        setattr(funder, name, value)
    if changed:
        funder.save(update_fields=list(changed))  # its post_save queues the (empty) push
    paths_taken = {path for paths in taken.values() for path in paths}
    if paths_taken:
        link.last_sent = {
            **link.last_sent,
            **{path: mapping.flat_text(values[path]) for path in paths_taken},
        }
        link.save(update_fields=["last_sent", "updated_at"])
    _log_taken(connection, link, current, taken, chosen_by)
    for field, reason in refused.items():
        shown = "; ".join(mapping.flat_text(v) for v in by_field[field].values())
        _log(connection, link, Outcome.REFUSED, wording.refused_from_xero(field, shown, reason))
    if changed:
        _announce(funder, sorted(changed), sorted(taken), chosen_by)
    return paths_taken, refused


def _log_taken(connection, link, current: dict, taken: dict, chosen_by: str) -> None:
    """One row per field taken: "took EmailAddress from Xero: a@x → b@x (who chose it)"."""
    for field, paths in taken.items():
        rows = [
            (path, mapping.flat_text(current.get(path, "")), mapping.flat_text(value))
            for path, value in paths.items()
        ]
        _log(connection, link, Outcome.TAKEN, wording.took_from_xero(field, rows, chosen_by))


def _funder_values(funder, field: str, paths: dict, reverse, contact_fields: dict):
    """The funder fields Xero's value becomes, validated by the funder model; or why not."""
    if field == "EmailAddress":
        email = mapping.flat_text(paths.get("EmailAddress", ""))
        if email and not mapping.is_valid_email(email):
            return {}, wording.not_an_email(email)
    try:
        proposed = reverse(contact_fields, funder) or {}
    except Exception as exc:  # the host's function: its failure is reported, not raised
        logger.exception("REVERSE_MAPPING failed for %s", field)
        return {}, f"REVERSE_MAPPING failed: {exc}"
    if not proposed:
        return {}, wording.cannot_take_back(field)
    cleaned = {}
    for name, value in proposed.items():
        try:
            model_field = funder._meta.get_field(name)
            cleaned[model_field.attname] = model_field.clean(value, funder)
        except FieldDoesNotExist:
            return {}, f"REVERSE_MAPPING names {name}, which the funder does not have."
        except ValidationError as exc:
            return {}, f"the funder's {name} cannot hold it: {' '.join(exc.messages)}"
    return cleaned, ""


def _current(funder) -> dict[str, object]:
    """The funder's profile as the mapping makes it, flattened, limits applied."""
    try:
        raw = conf.mapping_function()(funder)
    except Exception:
        return {}
    clean = mapping.clean_contact(raw, number="")
    return mapping.flatten(clean.payload)


def _announce(funder, fields: list[str], contact_fields: list[str], chosen_by: str) -> None:
    """Tell the host, once the funder's new values are committed."""

    def send() -> None:
        contact_corrected_in_xero.send(
            sender=type(funder),
            funder=funder,
            fields=fields,
            contact_fields=contact_fields,
            chosen_by=chosen_by,
        )

    transaction.on_commit(send, using=dispatch.database())


def _log(connection, link: XeroContactLink, outcome: str, message: str) -> None:
    write_log(
        connection, outcome, funder=link.funder, contact_id=link.xero_contact_id, message=message
    )
