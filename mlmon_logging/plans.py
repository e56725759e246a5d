"""Splitting plain feature dicts into numeric and categorical ones with C-level calls only.

Most services log the same feature names with the same value types on every
request. A *plan* per shape (the names in order and the exact value types)
says which names are numeric and which categorical; applying it is a few
``itemgetter`` / ``zip`` / ``dict`` calls that run in C, with no Python
bytecode per feature. The shape key itself is two C-built tuples.

Only shapes of valid names with plain ``float`` / ``int`` / ``str`` values
get a plan; anything else (bools, numpy values, None, bad names, too many
names, a non-finite number) returns None and the caller takes the careful
one-by-one path, which coerces, flags and names what it changed. The plain
path and the careful one give the same event for the inputs the plain path
accepts (``tests/emitter/test_plain_path.py`` checks it).
"""

from __future__ import annotations

from collections.abc import Callable
from operator import itemgetter
from typing import Any, Final, NamedTuple

from mlmon_logging import contract

#: How a feature name is routed: numeric or categorical (the kind of its first
#: non-missing value, or declared), or left out as an invalid name.
NUMERIC: Final = 0
CATEGORICAL: Final = 1
INVALID: Final = 2

#: Names remembered per builder; past this, names are checked every time
#: (a service logging unbounded names must not grow memory without bound).
MAX_CACHED_NAMES: Final = 10_000
#: Shapes remembered with their plan (or as unplannable).
MAX_PLANS: Final = 1024

Shape = tuple[tuple[Any, ...], tuple[type, ...]]
Getter = Callable[[Any], tuple[Any, ...]]


class Plan(NamedTuple):
    numeric_names: tuple[str, ...]
    numeric_values: Getter
    #: Some numeric values are ints: they go through float() (JSON doubles downstream).
    convert: bool
    categorical_names: tuple[str, ...]
    categorical_values: Getter


def _getter(keys: list[str]) -> Getter:
    """itemgetter that returns a tuple for any number of keys (itemgetter('a') returns a scalar)."""
    if not keys:
        return lambda mapping: ()
    if len(keys) == 1:
        only = keys[0]
        return lambda mapping: (mapping[only],)
    return itemgetter(*keys)


class FeatureSplitter:
    """Splits plain feature dicts per cached plan; shares ``routes`` with the careful path.

    Planning records the kind of names not seen before in ``routes``, exactly
    as the careful path would, so a feature keeps its kind whichever path
    first saw it. Not thread-safe, like the builder that owns it.
    """

    def __init__(self, routes: dict[object, int], is_valid_name: Callable[[object], bool]) -> None:
        self._routes = routes
        self._is_valid_name = is_valid_name
        self._plans: dict[Shape, Plan | None] = {}

    def split(self, features: dict[Any, Any]) -> tuple[dict[str, float], dict[str, str]] | None:
        """(numeric, categorical) for a plain dict; None when the careful path must run."""
        shape = (tuple(features), tuple(map(type, features.values())))
        try:
            plan = self._plans[shape]
        except KeyError:
            plan = self._plan(shape)
        if plan is None:
            return None
        numeric: dict[str, float] = {}
        if plan.numeric_names:
            values = plan.numeric_values(features)
            try:
                numeric = dict(zip(plan.numeric_names, map(float, values) if plan.convert else values))
            except OverflowError:  # an int beyond the float range: the careful path flags it
                return None
            total = sum(numeric.values())
            if total - total != 0.0:  # a NaN or inf somewhere (or a huge sum): let the careful path name it
                return None
        categorical = dict(zip(plan.categorical_names, plan.categorical_values(features))) \
            if plan.categorical_names else {}
        return numeric, categorical

    def _plan(self, shape: Shape) -> Plan | None:
        names, types = shape
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
            if route == CATEGORICAL:
                if t is not str:
                    return None  # a declared / learned categorical given a number: to_label it
                categorical.append(name)
            elif t is float or t is int:
                numeric.append(name)
                if route is None:
                    learned[name] = NUMERIC
            elif t is str:
                categorical.append(name)
                if route is None:
                    learned[name] = CATEGORICAL
            else:
                return None
        for name, route in learned.items():
            if len(self._routes) < MAX_CACHED_NAMES:
                self._routes[name] = route
        return Plan(tuple(numeric), _getter(numeric), int in types, tuple(categorical), _getter(categorical))
