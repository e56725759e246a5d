"""KQL built from (field, values) pairs instead of hand-written strings.

Keeping the field apart from the value lets the generator list every field a
query names (for the mapping checks) and quotes values the way KQL needs.
"""

from __future__ import annotations

from dataclasses import dataclass


def quote(value: str) -> str:
    """A KQL quoted string: backslash and double quote are the only escapes inside quotes."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


@dataclass(frozen=True)
class Match:
    """``field : ("a" or "b")`` - the field holds one of the values."""

    field: str
    values: tuple[str, ...]
    negate: bool = False

    def render(self) -> str:
        if not self.values:
            raise ValueError(f"KQL match on {self.field!r} needs at least one value")
        inner = " or ".join(quote(v) for v in self.values)
        body = f"{self.field} : {inner if len(self.values) == 1 else f'({inner})'}"
        return f"not {body}" if self.negate else body


@dataclass(frozen=True)
class Exists:
    """``field : *`` - the field has a value."""

    field: str

    def render(self) -> str:
        return f"{self.field} : *"


Clause = Match | Exists


def match(field: str, *values: str, negate: bool = False) -> Match:
    return Match(field, tuple(values), negate)


@dataclass(frozen=True)
class Query:
    """Clauses joined by ``and``; the empty query matches everything."""

    clauses: tuple[Clause, ...] = ()

    def render(self) -> str:
        return " and ".join(c.render() for c in self.clauses)

    @property
    def fields(self) -> tuple[str, ...]:
        return tuple(c.field for c in self.clauses)

    def to_json(self) -> dict[str, str]:
        return {"language": "kuery", "query": self.render()}


EMPTY = Query()
