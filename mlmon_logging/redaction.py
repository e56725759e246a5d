"""Privacy: configured names are dropped or replaced by a keyed hash in-process.

Applies to features (numeric and categorical) and segments of that name.
A hashed value becomes a keyword (``mlmon.features.categorical.<name>``):
HMAC-SHA256 under the deployment's key, hex, 32 characters, so equal values
stay equal (joins and drift on the hashed feature still work) while the value
itself cannot be recovered or brute-forced without the key. The field as it
now appears (or, dropped, where it would have appeared) is listed in
``mlmon.quality.redacted_fields``.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Mapping
from typing import Any, Final, Literal

from mlmon_logging.values import to_label

Action = Literal["drop", "hash"]
ACTIONS: Final = ("drop", "hash")
#: Environment variable read when no key is passed: keep the key out of code.
KEY_ENV: Final = "MLMON_REDACTION_KEY"


class Redactor:
    """Redacts one nested contract event dict in place."""

    def __init__(self, rules: Mapping[str, Action], key: bytes | str | None = None) -> None:
        for name, action in rules.items():
            if action not in ACTIONS:
                raise ValueError(f"redaction of {name!r} must be one of {ACTIONS}, got {action!r}")
        self._rules = dict(rules)
        if key is None:
            key = os.environ.get(KEY_ENV)
        if isinstance(key, str):
            key = key.encode("utf-8")
        if "hash" in self._rules.values() and not key:
            raise ValueError(f"hashing features needs a secret key: pass redaction_key= or set {KEY_ENV}")
        self._key = key or b""

    def __bool__(self) -> bool:
        return bool(self._rules)

    def digest(self, value: Any) -> str:
        text = to_label(value)
        return hmac.new(self._key, str(text).encode("utf-8", "surrogatepass"), hashlib.sha256).hexdigest()[:32]

    def __call__(self, event: dict[str, Any]) -> dict[str, Any]:
        mlmon = event.get("mlmon")
        if not self._rules or not isinstance(mlmon, dict):
            return event
        redacted: list[str] = []
        features = mlmon.get("features")
        if isinstance(features, dict):
            numeric = features.get("numeric") or {}
            categorical = features.get("categorical") or {}
            for name, action in self._rules.items():
                for family, values in (("numeric", numeric), ("categorical", categorical)):
                    if name not in values:
                        continue
                    value = values.pop(name)
                    if action == "hash" and value is not None:
                        categorical[name] = self.digest(value)
                        redacted.append(f"mlmon.features.categorical.{name}")
                    else:
                        redacted.append(f"mlmon.features.{family}.{name}")
            for family, values in (("numeric", numeric), ("categorical", categorical)):
                if values:
                    features[family] = values
                else:
                    features.pop(family, None)
        segment = mlmon.get("segment")
        if isinstance(segment, dict):
            for name, action in self._rules.items():
                if name in segment:
                    value = segment.pop(name)
                    if action == "hash" and value is not None:
                        segment[name] = self.digest(value)
                    redacted.append(f"mlmon.segment.{name}")
        if redacted:
            mlmon.setdefault("quality", {}).setdefault("redacted_fields", []).extend(redacted)
        return event
