"""Which existing Xero contact a funder already is. Pure: plain data in, a decision out.

Order (docs/operations.md, "What the sync does"): the app's own ContactNumber, then a unique e-mail
match, then a unique case-insensitive exact name match. Several candidates are a conflict for a
person; never a guess. E-mail and name only match ACTIVE contacts: reviving a contact the
bookkeeper archived would undo their decision, and an archived name does not block a new contact
in Xero. A contact merged into another, or under a GDPR request, matches nothing at all: the
first is followed to its survivor (`services.bookkeeper`), the second is never written to.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

from .client import XeroContact
from .mapping import ACTIVE, GDPR_REQUEST

RULE_LABELS = {"contact_number": "contact number", "email": "e-mail address", "name": "name"}


@dataclass
class Match:
    contact: XeroContact | None = None
    rule: str = ""  # "contact_number", "email", "name"
    candidates: list[XeroContact] = field(default_factory=list)
    conflict: str = ""  # why a person must decide; empty when there is no conflict


class ContactIndex:
    """Existing contacts indexed by ContactID, ContactNumber, e-mail and name."""

    def __init__(self, contacts: Iterable[XeroContact]) -> None:
        self.by_id: dict[str, XeroContact] = {}
        self.by_number: dict[str, list[XeroContact]] = defaultdict(list)
        self.by_email: dict[str, list[XeroContact]] = defaultdict(list)
        self.by_name: dict[str, list[XeroContact]] = defaultdict(list)
        for contact in contacts:
            self.by_id[contact.contact_id] = contact
            if contact.merged_to or contact.status == GDPR_REQUEST:
                continue
            if contact.contact_number:
                self.by_number[contact.contact_number].append(contact)
            if contact.status != ACTIVE:
                continue
            if contact.email:
                self.by_email[_fold(contact.email)].append(contact)
            if contact.name:
                self.by_name[_fold(contact.name)].append(contact)

    def match(self, *, number: str, email: str, name: str, claimed: set[str]) -> Match:
        """The contact to link to; `claimed` are ContactIDs already linked to other funders."""
        for rule, candidates in (
            ("contact_number", self.by_number.get(number, [])),
            ("email", self.by_email.get(_fold(email), []) if email else []),
            ("name", self.by_name.get(_fold(name), []) if name else []),
        ):
            if not candidates:
                continue
            label = RULE_LABELS[rule]
            if len(candidates) > 1:
                reason = f"{len(candidates)} Xero contacts have this {label}"
            elif candidates[0].contact_id in claimed:
                reason = f"The Xero contact with this {label} is already linked to another funder"
            else:
                return Match(contact=candidates[0], rule=rule)
            return Match(rule=rule, candidates=candidates, conflict=reason)
        return Match()


def _fold(value: str) -> str:
    return " ".join(value.split()).casefold()
