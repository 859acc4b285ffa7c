"""What the Lookout team reads about errors, in one place: log rows, status panels, checks.

Plain words that say what happened and what to do. Never a secret: callers pass only names,
dates and Xero's own (secret-free) messages.
"""

from __future__ import annotations

from datetime import datetime

from django.utils import formats, timezone

# Why a connection is in error, by the code `services.record_connection_error` stores.
CONNECTION_ERROR_REASONS = {
    "invalid_client": "Xero did not accept the Client ID and Client Secret. Check both (Test "
    "connection), or generate a new secret in the customer's Xero developer portal, then save.",
    "invalid_scope": "Xero refused the scope for this custom connection: it does not have "
    "accounting.contacts ticked. Tick it in the customer's Xero developer portal (they authorise "
    "the connection again), or leave the Scope empty to take what the connection has.",
    "missing_scope": "Xero accepted the token but not for contacts: the custom connection lacks "
    "the accounting.contacts scope. Add it in the customer's Xero developer portal (they "
    "authorise the connection again), then save.",
    "forbidden": "Xero refused access: the custom connection may have been revoked or the "
    "organisation disconnected.",
    "unauthorized": "Xero refused the credentials. Check them with Test connection, then save.",
    "undecryptable": "FERNET_KEYS cannot open the stored credentials: the key that encrypted "
    "them was removed or changed. Put it back (after the current key) and run xero_rotate_keys.",
}


def keys_cannot_open(labels: list[str]) -> str:
    """Why a connection is in error when no key in FERNET_KEYS opens some of its stored values."""
    return (
        f"FERNET_KEYS cannot open the stored {', '.join(labels)}: the key that encrypted them "
        "was removed or changed. Put it back (after the current key) and run xero_rotate_keys."
    )


# Test connection (and any other check of typed credentials).
CHECK_SCOPE_REFUSED = (
    "Xero refused the scope: this custom connection does not allow '{scope}'. Tick "
    "accounting.contacts on the custom connection in Xero, or leave the Scope empty to take "
    "what the connection has."
)
# The connection form's Scope help: what Xero documents for custom connections today
# (docs/xero.md, "Scopes of a custom connection"). The model's help text is older; the form's
# is the one people read.
SCOPE_HELP = (
    "Space-separated scopes asked for with each token. The sync needs only accounting.contacts, "
    "a scope custom connections have both before and after Xero's granular scopes (29 April "
    "2026); the customer ticks it, and only it, in Xero. Leave empty to take whatever scopes "
    "the connection has."
)
CHECK_CREDENTIALS_REFUSED = (
    "Xero did not accept this Client ID and Client Secret. Check both in the customer's Xero "
    "developer portal (My Apps), or generate a new secret there."
)
CHECK_FORBIDDEN = "Xero refused access: the custom connection may have been revoked."
CHECK_UNREACHABLE = "Could not reach Xero: no network, or Xero is not answering."
CHECK_XERO_DOWN = "Xero is down or failing right now ({status}). Try again soon."
CHECK_UNEXPECTED = "Xero answered unexpectedly: {error}"
CHECK_NO_ORGANISATION = (
    "The credentials work, but no Xero organisation has authorised this connection yet."
)
CHECK_CONNECTED = "Connected to the Xero organisation “{name}”."

NO_REASON_GIVEN = "Xero refused this contact without saying why."
NO_CONTACT_ID = (
    "Xero answered OK for this contact but gave no ContactID, so it could not be linked; "
    "its next push looks it up in Xero first."
)
PAUSED_HEALTH_REASON = "Xero's daily call limit is used up; it resumes then."


def paused_for_day_limit(until: datetime) -> str:
    return f"Xero's daily call limit is used up; sync resumes at {until:%Y-%m-%d %H:%M} UTC."


def gave_up(attempts: int, error: object) -> str:
    return f"Gave up after {attempts} attempts: {error}"


def could_not_look_up(error: object) -> str:
    return (
        "Xero could not look this funder up before creating it, so nothing was sent; the rest "
        f"of its batch went on. Xero said: {error}"
    )


def could_not_read_contacts(error: object) -> str:
    return f"Could not read Xero's contacts: {error}"


def could_not_read_changes(error: object) -> str:
    return f"Could not read the contacts Xero's webhook said had changed: {error}"


# What the bookkeeper did in Xero (services.bookkeeper), on links and in the sync log.
ARCHIVED_IN_XERO = (
    "Archived in Xero by someone other than Lookout: nothing is sent for this funder while it "
    "stays archived. Restoring it in Xero resumes syncing; or choose Restore in Xero or Stop "
    "syncing."
)
GDPR_REQUEST_HELD = (
    "Xero holds this contact under a GDPR erasure request: Lookout never writes to it again, "
    "never creates another contact for this funder and never matches it to one. Only a person "
    "decides what happens next (Stop syncing ends it for this funder)."
)
RESTORED_IN_XERO = "Restored in Xero: syncing of this funder resumes."
# Log messages of a push that sends the whole profile to a contact Lookout already knew: it is
# not a link (the badge said "Linked to existing"), it is the push after what happened.
PUSHED_AFTER_MERGE = (
    "Pushed Lookout's profile to the contact this funder's contact was merged into in Xero."
)
PUSHED_WHOLE_PROFILE = (
    "Pushed Lookout's whole profile again (after a restore in Xero, or a person's Push now)."
)
RESTORE_ASKED = "A person chose Restore in Xero: the contact is restored with the next push."


def followed_merge(merged, survivor) -> str:
    return (
        f"Lookout followed a merge in Xero from {merged.contact_id} to {survivor.contact_id} "
        f"(“{survivor.name}”): this funder's changes go to that contact now, never to the old one."
    )


def merged_into_linked(merged_id: str, survivor_id: str, other_funder) -> str:
    return (
        f"Merged in Xero from {merged_id} into {survivor_id}, which is already linked to another "
        f"funder ({other_funder}). Nothing is written to either for this funder until a person "
        "decides: link it elsewhere, create a new contact, or stop syncing it."
    )


def drifted(drift: dict) -> str:
    """A drift log row: which fields Xero has otherwise, and what happens to each."""
    fields = ", ".join(f"{path} is “{values['xero']}”" for path, values in drift.items())
    waiting = [path for path, values in drift.items() if values.get("waiting")]
    if not waiting:
        return (
            f"Changed in Xero since Lookout's last push: {fields}. Lookout's values are sent "
            "with its next push of this funder (or now: Push Lookout's profile now)."
        )
    return (
        f"Changed in Xero since Lookout's last push: {fields}. Waiting for a person "
        f"({', '.join(waiting)}): Take Xero's value or Keep Lookout's, on the funder's page; "
        "nothing is written to those fields meanwhile."
    )


DIRECTION_LABELS = {
    "lookout": "Lookout wins",
    "ask": "Ask a person",
    "xero": "Xero wins",
}
SETTING_CHOSE = "the field's setting"


def took_from_xero(field: str, changes: list[tuple[str, str, str]], chosen_by: str) -> str:
    """Log row of a value taken from Xero into the funder: `changes` are (path, old, new)."""
    parts = "; ".join(
        f"{_part(field, path)}{old or '(empty)'} → {new or '(empty)'}" for path, old, new in changes
    )
    return f"took {field} from Xero: {parts} ({_who(chosen_by)})"


def kept_lookouts(field: str, changes: list[tuple[str, str, str]], chosen_by: str) -> str:
    """Log row of a person keeping Lookout's value: `changes` are (path, Lookout's, Xero's)."""
    parts = "; ".join(
        f"{_part(field, path)}{ours or '(empty)'} (Xero had {theirs or '(empty)'})"
        for path, ours, theirs in changes
    )
    return f"kept Lookout's {field}: {parts}; sent to Xero with the next push ({_who(chosen_by)})"


def refused_from_xero(field: str, value: str, reason: str) -> str:
    return (
        f"did not take {field} from Xero ({value or '(empty)'}): {reason} It stays shown as "
        "changed in Xero until a person decides (Keep Lookout's), or Xero's value changes."
    )


def _part(field: str, path: str) -> str:
    """ "MOBILE PhoneNumber: " for a path inside a field, nothing for the field itself."""
    rest = path[len(field) + 1 :] if path != field else ""
    return rest.replace(".", " ") + ": " if rest else ""


def _who(chosen_by: str) -> str:
    return f"chosen by {chosen_by}" if chosen_by else SETTING_CHOSE


def cannot_take_back(field: str) -> str:
    return f"REVERSE_MAPPING gives no funder field for {field}."


def not_an_email(value: str) -> str:
    return f"“{value}” is not a valid e-mail address."


def tenant_changed(new: str, old: str) -> str:
    """Why a connection stopped when its credentials reach another Xero organisation."""
    return (
        f"These credentials reach the Xero organisation “{new}”, not “{old}” that this "
        f"connection synced with. Nothing is sent to “{new}” until someone allowed to manage "
        "Xero credentials confirms it on the connection's page, or the credentials are put back."
    )


# One date format on every page: the connection page, the lists, the panels ("7 Dec 2026, 15:26
# UTC"); Django's default in lists was "Dec. 7, 2026, 3:26 p.m.".
DATE_FORMAT = "j M Y, H:i T"


def when(value, empty: str = "—") -> str:
    if value is None:
        return empty
    return formats.date_format(timezone.localtime(value), DATE_FORMAT)
