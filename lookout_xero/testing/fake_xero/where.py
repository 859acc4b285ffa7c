"""The subset of Xero's ``where`` filter the app uses (docs/xero.md, "Reading contacts").

Clauses ``Field=="value"``, ``Field!=null``, ``Field.Contains("x")``, ``StartsWith``,
``EndsWith``, joined by ``&&``/``AND`` and ``||``/``OR`` (AND binds tighter).

As in Xero, a string literal has no escape: it runs from one double quote to the next, a
backslash is an ordinary character, and anything Xero cannot parse (a backslash-escaped quote
included) answers 400 QueryParseException "Syntax error" (docs/xero.md, "Looking a value up").
"""

from __future__ import annotations

import re
from collections.abc import Callable

Predicate = Callable[[dict], bool]

WHERE_FIELDS = (
    "Name",
    "EmailAddress",
    "ContactNumber",
    "ContactStatus",
    "FirstName",
    "LastName",
    "AccountNumber",
)
# Xero's words for a `where` it cannot parse (XeroAPI/Xero-Java issue #347, live).
SYNTAX_ERROR = "Syntax error"
# Xero compares these case-insensitively; the others exactly.
CASE_INSENSITIVE_FIELDS = frozenset({"Name", "EmailAddress"})

_CLAUSE_RE = re.compile(
    r"""^\s*(?P<field>[A-Za-z]+)\s*(?:
        (?P<op>==|!=)\s*(?P<value>null|"[^"]*")
      | \.(?P<method>Contains|StartsWith|EndsWith)\(\s*(?P<arg>"[^"]*")\s*\)
    )\s*$""",
    re.VERBOSE,
)


class QueryError(ValueError):
    """The ``where`` text is not something Xero would accept."""


def parse_where(text: str) -> list[list[Predicate]]:
    """Parse the supported ``where`` subset into OR-of-AND predicate groups."""
    groups = []
    for disjunct in _split_outside_quotes(text, "||", "OR"):
        group = []
        for clause in _split_outside_quotes(disjunct, "&&", "AND"):
            match = _CLAUSE_RE.match(clause)
            if not match:
                raise QueryError(SYNTAX_ERROR)
            name = match["field"]
            if name not in WHERE_FIELDS:
                raise QueryError(f"No property or field '{name}' exists in type 'Contact'")
            group.append(_clause_predicate(name, match))
        groups.append(group)
    return groups


def matches(groups: list[list[Predicate]], contact: dict) -> bool:
    return any(all(predicate(contact) for predicate in group) for group in groups)


def _split_outside_quotes(text: str, symbol: str, word: str) -> list[str]:
    """Split on ``symbol`` (e.g. ``||``) or the word operator (e.g. ``OR``) outside quotes."""
    parts, start, i, quoted = [], 0, 0, False
    spaced_word = f" {word} "
    while i < len(text):
        char = text[i]
        if char == '"':
            quoted = not quoted
        elif not quoted and text.startswith(symbol, i):
            parts.append(text[start:i])
            i += len(symbol)
            start = i
            continue
        elif not quoted and text[i : i + len(spaced_word)].upper() == spaced_word:
            parts.append(text[start:i])
            i += len(spaced_word)
            start = i
            continue
        i += 1
    parts.append(text[start:])
    return parts


def _clause_predicate(name: str, match: re.Match) -> Predicate:
    fold = (lambda s: s.lower()) if name in CASE_INSENSITIVE_FIELDS else (lambda s: s)

    def current(contact: dict) -> str | None:
        return contact.get(name) or None  # Xero treats an empty field as null

    if match["op"]:
        wanted = None if match["value"] == "null" else match["value"][1:-1]
        equal = match["op"] == "=="

        def compare(contact: dict) -> bool:
            value = current(contact)
            if wanted is None:
                same = value is None
            else:
                same = value is not None and fold(value) == fold(wanted)
            return same if equal else not same

        return compare

    argument = fold(match["arg"][1:-1])
    method = match["method"]

    def call(contact: dict) -> bool:
        value = current(contact)
        if value is None:
            return False
        value = fold(value)
        if method == "Contains":
            return argument in value
        if method == "StartsWith":
            return value.startswith(argument)
        return value.endswith(argument)

    return call
