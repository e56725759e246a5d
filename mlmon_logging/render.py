"""Serialising a contract event to one JSON line, within a size limit.

orjson does the work. Values reaching here are already coerced, so orjson
only fails on strings it cannot encode (lone surrogates); then the offending
strings are repaired, their fields flagged and the event rendered again.

An event over the limit is cut down rather than dropped: first long strings
in user-named families are shortened, then entries of those families are
left out, largest family first; ``mlmon.quality.truncated`` is set. The
envelope (ids, model, timestamps) is never cut, and the limit has a floor
that always fits it.
"""

from __future__ import annotations

from typing import Any, Final

import orjson

MIN_EVENT_BYTES: Final = 2048
#: User-named families that may be cut, as paths under "mlmon".
_CUTTABLE: Final = (("attributions",), ("features", "categorical"), ("features", "numeric"),
                    ("prediction", "scores"), ("segment",))
JSON_OPTIONS: Final = orjson.OPT_APPEND_NEWLINE


class EventTooLarge(ValueError):
    """Even without any user-named field the event exceeds the limit."""


def check_limit(max_event_bytes: int) -> int:
    if not isinstance(max_event_bytes, int) or max_event_bytes < MIN_EVENT_BYTES:
        raise ValueError(f"max_event_bytes must be an int >= {MIN_EVENT_BYTES}, got {max_event_bytes!r}")
    return max_event_bytes


def render(event: dict[str, Any], max_event_bytes: int) -> bytes:
    """One JSON line (newline-terminated) of at most ``max_event_bytes`` bytes."""
    try:
        line = orjson.dumps(event, option=JSON_OPTIONS)
    except (orjson.JSONEncodeError, TypeError):
        _repair_strings(event, event, "")
        line = orjson.dumps(event, option=JSON_OPTIONS)
    if len(line) <= max_event_bytes:
        return line
    return _truncate(event, max_event_bytes)


def _flag(root: dict[str, Any], key: str, value: Any) -> None:
    mlmon = root.get("mlmon")
    if isinstance(mlmon, dict):
        quality = mlmon.setdefault("quality", {})
        if isinstance(value, list):
            quality.setdefault(key, []).extend(value)
        else:
            quality[key] = value


def _repair_strings(root: dict[str, Any], node: dict[str, Any], path: str) -> None:
    for key, value in list(node.items()):
        where = f"{path}{key}"
        if isinstance(value, dict):
            _repair_strings(root, value, where + ".")
            continue
        if not isinstance(key, str) or _unencodable(key):
            node.pop(key)
            _flag(root, "unserializable_fields", [_printable(where)])
            continue
        if isinstance(value, str) and _unencodable(value):
            node[key] = _printable(value)
            _flag(root, "unserializable_fields", [where])
        elif isinstance(value, list):
            node[key] = [_printable(v) if isinstance(v, str) and _unencodable(v) else v for v in value]


def _unencodable(text: object) -> bool:
    try:
        str(text).encode("utf-8")
        return False
    except UnicodeEncodeError:
        return True


def _printable(text: object) -> str:
    return str(text).encode("utf-8", "backslashreplace").decode("utf-8")


def _truncate(event: dict[str, Any], max_event_bytes: int) -> bytes:
    mlmon = event.get("mlmon")
    families = [f for f in (_family(mlmon, p) for p in _CUTTABLE) if f] if isinstance(mlmon, dict) else []
    _flag(event, "truncated", True)
    # 1. shorten long strings: a few huge categorical values are the usual culprit.
    cap = max(64, max_event_bytes // 64)
    for family in families:
        for key, value in family.items():
            if isinstance(value, str) and len(value) > cap:
                family[key] = value[:cap]
    line = orjson.dumps(event, option=JSON_OPTIONS)
    # 2. leave out entries, from the end of the largest family, until it fits.
    while len(line) > max_event_bytes:
        excess = len(line) - max_event_bytes
        families = [f for f in families if f]
        if not families:
            raise EventTooLarge(f"event envelope alone is {len(line)} bytes (limit {max_event_bytes})")
        largest = max(families, key=len)
        while excess > 0 and largest:
            key, value = largest.popitem()
            excess -= len(key) + len(orjson.dumps(value)) + 4  # "key":value,
        line = orjson.dumps(event, option=JSON_OPTIONS)
    return line


def _family(mlmon: dict[str, Any], path: tuple[str, ...]) -> dict[str, Any] | None:
    node: Any = mlmon
    for part in path:
        node = node.get(part) if isinstance(node, dict) else None
    return node if isinstance(node, dict) else None
