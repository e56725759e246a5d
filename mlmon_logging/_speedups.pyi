# Types of the optional C extension (mlmon_logging/_speedups.c).
from typing import Any

def apply_plan(features: dict[Any, Any], names: list[Any], kinds: bytes, /) -> dict[str, dict[str, Any]] | None: ...
