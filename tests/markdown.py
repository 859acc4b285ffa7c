"""Reading the docs' Markdown as GitHub renders it: headings, their anchors, sections, links.

Lines inside fenced code blocks are code, not headings: a shell comment is not a title.
"""

from __future__ import annotations

import re

FENCE = re.compile(r"^\s*(```|~~~)")
HEADING = re.compile(r"^(#{1,6}) +(.+?) *#* *$")
# [text](target) and ![alt](target), not inside inline code.
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)(?: \"[^\"]*\")?\)")
INLINE_CODE = re.compile(r"`[^`]*`")


def prose_lines(text: str) -> list[tuple[int, str]]:
    """(line index, line) of every line outside fenced code blocks."""
    lines, fenced = [], False
    for index, line in enumerate(text.splitlines()):
        if FENCE.match(line):
            fenced = not fenced
            continue
        if not fenced:
            lines.append((index, line))
    return lines


def headings(text: str) -> list[tuple[int, int, str]]:
    """(line index, level, title) of every heading."""
    found = []
    for index, line in prose_lines(text):
        match = HEADING.match(line)
        if match:
            found.append((index, len(match[1]), match[2]))
    return found


def slug(title: str) -> str:
    """GitHub's anchor for a heading: its text in lower case, punctuation dropped (but `_` and
    `-`), each space a hyphen."""
    text = re.sub(r"[`*]|\[([^\]]*)\]\([^)]*\)", lambda m: m[1] or "", title).lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(text: str) -> set[str]:
    """Every heading's anchor; a repeated one gets -1, -2, … as GitHub numbers them."""
    seen: dict[str, int] = {}
    result = set()
    for _, _, title in headings(text):
        base = slug(title)
        count = seen.get(base, 0)
        result.add(base if count == 0 else f"{base}-{count}")
        seen[base] = count + 1
    return result


def section(text: str, title: str) -> str:
    """The text from the heading `title` to the next heading of that level or higher."""
    lines = text.splitlines()
    found = headings(text)
    [(start, level)] = [(index, lvl) for index, lvl, name in found if name == title]
    ends = [index for index, lvl, _ in found if index > start and lvl <= level]
    return "\n".join(lines[start : ends[0] if ends else None]) + "\n"


def links(text: str) -> list[str]:
    """Every link target outside code."""
    targets = []
    for _, line in prose_lines(text):
        targets += LINK.findall(INLINE_CODE.sub("", line))
    return targets
