"""What one ingest run did, in counts a user can check."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field


@dataclass
class IngestReport:
    """Counts of one ``ingest_lines`` call (or a whole ``mlmon ingest`` run)."""

    lines: int = 0
    blank_lines: int = 0
    #: Valid events per kind that were new to the store.
    stored: Counter[str] = field(default_factory=Counter)
    #: Valid events per kind whose event.id was already stored (re-sent or re-ingested).
    duplicates: Counter[str] = field(default_factory=Counter)
    #: Rejected lines per error.type (each one written to the dead-letter table unless already there).
    dead_lettered: Counter[str] = field(default_factory=Counter)
    dead_letters_stored: int = 0

    @property
    def accepted(self) -> int:
        return sum(self.stored.values()) + sum(self.duplicates.values())

    def merge(self, other: IngestReport) -> None:
        self.lines += other.lines
        self.blank_lines += other.blank_lines
        self.stored.update(other.stored)
        self.duplicates.update(other.duplicates)
        self.dead_lettered.update(other.dead_lettered)
        self.dead_letters_stored += other.dead_letters_stored

    def summary(self) -> str:
        parts = [f"{self.lines} lines"]
        parts.append("stored " + (", ".join(f"{k}={v}" for k, v in sorted(self.stored.items())) or "nothing"))
        if self.duplicates:
            parts.append("already stored " + ", ".join(f"{k}={v}" for k, v in sorted(self.duplicates.items())))
        if self.dead_lettered:
            parts.append("dead-lettered " + ", ".join(f"{k}={v}" for k, v in sorted(self.dead_lettered.items()))
                         + f" ({self.dead_letters_stored} new)")
        if self.blank_lines:
            parts.append(f"{self.blank_lines} blank lines skipped")
        return "; ".join(parts)

    def as_dict(self) -> dict[str, object]:
        return {"lines": self.lines, "blank_lines": self.blank_lines, "stored": dict(self.stored),
                "duplicates": dict(self.duplicates), "dead_lettered": dict(self.dead_lettered),
                "dead_letters_stored": self.dead_letters_stored}
