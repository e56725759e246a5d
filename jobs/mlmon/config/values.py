"""Checks of single values in ``mlmon.yaml``: each returns the value or raises a
:class:`ConfigError` naming the file and the key (:class:`Where`).

Shared by every section parser (drift in :mod:`mlmon.config.model`, performance,
explainability, fairness, alerts), so a wrong value reads the same everywhere.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

_DURATION = re.compile(r"^\s*(\d+)\s*(s|m|h|d)\s*$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


class ConfigError(ValueError):
    """The configuration is invalid; the message names the file and the key."""


@dataclass(frozen=True)
class Where:
    """A position in the config file, for error messages."""

    file: str
    key: str

    def at(self, key: str) -> Where:
        return Where(self.file, f"{self.key}.{key}" if self.key else key)

    def fail(self, message: str) -> ConfigError:
        return ConfigError(f"{self.file}: {self.key}: {message}")


def mapping_of(value: Any, where: Where) -> Mapping[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise where.fail(f"expected a mapping, got {type(value).__name__} {value!r}")
    return value


def no_unknown_keys(body: Mapping[str, Any], allowed: set[str], where: Where) -> None:
    unknown = sorted(set(map(str, body)) - allowed)
    if unknown:
        raise where.at(unknown[0]).fail(f"unknown key; expected one of {', '.join(sorted(allowed))}")


def optional_str(value: Any, where: Where) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise where.fail(f"expected a string, got {value!r}")
    return str(value)


def optional_float(value: Any, where: Where) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise where.fail(f"expected a number, got {value!r}")
    return float(value)


def integer_at_least(value: Any, where: Where, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise where.fail(f"expected an integer >= {minimum}, got {value!r}")
    return value


def probability(value: Any, where: Where) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value < 1:
        raise where.fail(f"expected a number between 0 and 1, got {value!r}")
    return float(value)


def boolean(value: Any, where: Where) -> bool:
    if not isinstance(value, bool):
        raise where.fail(f"expected true or false, got {value!r}")
    return value


def parse_duration(value: Any, where: Where) -> timedelta:
    m = _DURATION.match(str(value)) if isinstance(value, str | int) else None
    if m is None or int(m.group(1)) == 0:
        raise where.fail(f"expected a positive duration like 30s, 5m, 1h or 1d, got {value!r}")
    return timedelta(**{_UNITS[m.group(2)]: int(m.group(1))})
