"""How deep a JSON line nests, found without parsing it (and without recursion).

Deep nesting is what takes parsers down: Python's recursion limit in a tree walk,
and Arrow's JSON reader, which slows to seconds past ~5,000 levels and crashes the
process (a segmentation fault) past ~20,000 - well within a 64 KB line. So depth is
measured on the bytes, before any parser sees them.
"""

from __future__ import annotations

import re

#: What changes the depth or the string state: quotes, backslashes and brackets.
_SPECIAL = re.compile(rb'["\\\[\]{}]')
_OPEN, _CLOSE = frozenset(b"[{"), frozenset(b"]}")
_QUOTE, _BACKSLASH = ord('"'), ord("\\")


def may_nest_deeper(raw: bytes, limit: int) -> bool:
    """False when ``raw`` surely nests at most ``limit`` levels (it has no more opening brackets)."""
    return raw.count(b"{") + raw.count(b"[") > limit


def nests_deeper(raw: bytes, limit: int) -> bool:
    """Whether objects and arrays in ``raw`` nest more than ``limit`` levels deep (brackets inside
    strings do not count). Linear in the line: one step per special character."""
    if not may_nest_deeper(raw, limit):
        return False
    depth = 0
    in_string = False
    escaped_at = -1  # position of the character a backslash escapes
    for match in _SPECIAL.finditer(raw):
        pos = match.start()
        if pos == escaped_at:
            continue
        byte = raw[pos]
        if in_string:
            if byte == _BACKSLASH:
                escaped_at = pos + 1
            elif byte == _QUOTE:
                in_string = False
        elif byte == _QUOTE:
            in_string = True
        elif byte in _OPEN:
            depth += 1
            if depth > limit:
                return True
        elif byte in _CLOSE:
            depth -= 1
    return False
