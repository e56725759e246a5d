"""Splitting plain feature dicts into numeric and categorical ones, cheaply.

Most services log the same feature names with the same value types on every
request. A *plan* per shape (the names in order and the exact value types)
says which names are categorical and which numeric values are ints. The
shape of the last call is kept as two C-built lists (names, value types):
comparing them is the whole lookup while the shape stays the same; a new
shape is looked up by tuples. Applying the plan is a dict copy plus a few
bytecodes per categorical (and per int) value, with nothing per float.

Where the optional C extension was built (``_speedups.c``), the last
shape's plan is first applied there: names, order, exact value types and
finiteness checked and both dicts built in one call (callgrind, 20 features:
about 6,500 instructions a split instead of 17,000). Whatever it declines
goes through the Python code below, which stays the reference.

Only shapes of valid names with plain ``float`` / ``int`` / ``str`` values,
each of its feature's kind, get a plan; anything else (bools, numpy values,
None, bad names, too many names, a non-finite number, a string for a numeric
feature, a number for a categorical one) returns None and the caller takes
the careful one-by-one path, which coerces, flags and names what it changed.
When the careful path turns a categorical feature numeric (its first number)
it calls :meth:`FeatureSplitter.forget_plans`: the plans made before are stale. The plain
path and the careful one give the same event for the inputs the plain path
accepts (``tests/emitter/test_plain_path.py`` checks it, with and without
the extension).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any, Final, NamedTuple

from mlmon_logging import contract

#: How a feature name is routed: numeric (it has had a number), categorical (it has
#: had only strings so far), declared categorical (numbers become labels), or left
#: out as an invalid name.
NUMERIC: Final = 0
CATEGORICAL: Final = 1
INVALID: Final = 2
DECLARED_CATEGORICAL: Final = 3

#: Names remembered per builder; past this, names are checked every time
#: (a service logging unbounded names must not grow memory without bound).
MAX_CACHED_NAMES: Final = 10_000
#: Shapes remembered with their plan (or as unplannable).
MAX_PLANS: Final = 1024

Shape = tuple[tuple[Any, ...], tuple[type, ...]]

ApplyPlan = Callable[[dict[Any, Any], list[Any], bytes], dict[str, dict[str, Any]] | None]
#: The last shape's plan applied in C, when the optional extension was built
#: (mlmon_logging/_speedups.c says why); MLMON_LOGGING_NO_SPEEDUPS=1 turns it off.
APPLY_PLAN: ApplyPlan | None = None
JoinRows = Callable[[list[bytes], list[bytes], int], list[bytes]]
#: The rows of log_predictions' rendered feature columns put together (mlmon_logging.blocks), when built.
JOIN_ROWS: JoinRows | None = None
if os.environ.get("MLMON_LOGGING_NO_SPEEDUPS", "") in ("", "0"):
    try:
        from mlmon_logging._speedups import apply_plan, join_rows

        APPLY_PLAN = apply_plan
        JOIN_ROWS = join_rows
    except ImportError:
        pass


class Plan(NamedTuple):
    categorical_names: tuple[str, ...]
    #: Numeric names whose value is an int here: converted with float() (JSON doubles downstream).
    int_names: tuple[str, ...]
    has_numeric: bool
    #: Per name, in the shape's order: b"f" float, b"i" int, b"s" categorical string (for the C speedup).
    kinds: bytes


class FeatureSplitter:
    """Splits plain feature dicts per cached plan; shares ``routes`` with the careful path.

    Planning records the kind of names not seen before in ``routes``, exactly
    as the careful path would, so a feature keeps its kind whichever path
    first saw it. A value of the other kind than its feature's is declined:
    the careful path flags it. Not thread-safe, like the builder that owns it.
    """

    def __init__(self, routes: dict[object, int], is_valid_name: Callable[[object], bool]) -> None:
        self._routes = routes
        self._apply_plan = APPLY_PLAN
        self._is_valid_name = is_valid_name
        # (names, value types, plan) of the shape seen last, as lists: building and comparing
        # two lists costs less than hashing a shape, and most services log one shape. One
        # tuple, read and replaced whole, so concurrent formatter threads see a consistent one.
        self._last: tuple[list[Any], list[type], Plan | None] = ([], [], None)
        self._plans: dict[Shape, Plan | None] = {}
        #: Incremented whenever the plans are forgotten: a plan a caller kept from before is stale.
        self.epoch = 0

    def split(self, features: dict[Any, Any]) -> tuple[dict[str, float], dict[str, str]] | None:
        """(numeric, categorical) for a plain dict; None when the careful path must run."""
        split = self.split_features(features)
        if split is None:
            return None
        return split.get("numeric", {}), split.get("categorical", {})

    def split_features(self, features: dict[Any, Any]) -> dict[str, dict[str, Any]] | None:
        """``{"numeric": ..., "categorical": ...}`` (empty ones left out) for a plain dict, or None."""
        last_names, last_types, plan = self._last
        if plan is not None and self._apply_plan is not None:
            split = self._apply_plan(features, last_names, plan.kinds)  # the last shape's plan, in C
            if split is not None:
                return split
        names = [*features]  # list displays: measured faster than tuple() here
        types = [*map(type, features.values())]
        if names != last_names or types != last_types:
            plan = self._plan(tuple(names), tuple(types))
            self._last = (names, types, plan)
        if plan is None:
            return None
        categorical_names, int_names, has_numeric, _ = plan
        if not has_numeric:
            return {"categorical": features.copy()} if features else {}
        # Copy, then move the categorical values out: a dict copy is one C call, and the
        # names moved are usually few (measured 2x faster than two dict(zip(...)) calls).
        numeric = features.copy()
        pop = numeric.pop
        categorical = {}
        for name in categorical_names:  # a plain loop: a comprehension costs a call in 3.11
            categorical[name] = pop(name)
        if int_names:
            try:
                for name in int_names:
                    numeric[name] = float(numeric[name])
            except OverflowError:  # an int beyond the float range: the careful path flags it
                return None
        total = sum(numeric.values())
        if total - total != 0.0:  # a NaN or inf somewhere (or a huge sum): the careful path names it
            return None
        return {"numeric": numeric, "categorical": categorical} if categorical else {"numeric": numeric}

    def forget_plans(self) -> None:
        """Drop every plan: a route changed (a categorical feature had its first number)."""
        self._plans = {}
        self._last = ([], [], None)
        self.epoch += 1

    def plan_for(self, names: tuple[Any, ...], types: tuple[type, ...]) -> Plan | None:
        """The plan of a shape (names in order, one exact value type each), as a dict of that shape
        would get it, learning the kinds of new names alike; None where the careful path must run."""
        return self._plan(names, types)

    def _plan(self, names: tuple[Any, ...], types: tuple[type, ...]) -> Plan | None:
        shape = (names, types)
        try:
            plan = self._plans[shape]
        except KeyError:
            plan = self._make_plan(names, types)
            if len(self._plans) < MAX_PLANS:
                self._plans[shape] = plan
        return plan

    def _make_plan(self, names: tuple[Any, ...], types: tuple[type, ...]) -> Plan | None:
        if len(names) > contract.MAX_FAMILY_FIELDS:
            return None
        numeric: list[str] = []
        categorical: list[str] = []
        learned: dict[str, int] = {}
        for name, t in zip(names, types):
            if not self._is_valid_name(name):
                return None
            route = self._routes.get(name)
            if t is str:
                if route == NUMERIC:
                    return None  # a string for a numeric feature: the careful path flags it
                categorical.append(name)
                if route is None:
                    learned[name] = CATEGORICAL
            elif t is float or t is int:
                if route == CATEGORICAL or route == DECLARED_CATEGORICAL:
                    return None  # declared: the careful path labels it; learned: it flags the change
                numeric.append(name)
                if route is None:
                    learned[name] = NUMERIC
            else:
                return None
        for name, route in learned.items():
            if len(self._routes) < MAX_CACHED_NAMES:
                self._routes[name] = route
        int_names = tuple(name for name, t in zip(names, types) if t is int)
        categorical_set = set(categorical)
        kinds = bytes(ord("s") if name in categorical_set else ord("i") if t is int else ord("f")
                      for name, t in zip(names, types))
        return Plan(tuple(categorical), int_names, bool(numeric), kinds)
