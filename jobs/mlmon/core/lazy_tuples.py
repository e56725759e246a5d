"""Frozen dataclasses whose long tuple fields are kept as read-only arrays and made into tuples on first read.

A round or a backfill builds thousands of statistics objects of ~1000 bins each (score bins per window and
class, a histogram per field, window and segment); the metric math reads their arrays, and converting every
column into a tuple of Python numbers cost more than the math. Such a class checks its arrays in
``__post_init__``, removes the tuple fields from the instance and keeps the arrays; :class:`LazyTuples` makes
a field again when something reads it (equality, hashing, ``repr``, pickling, a report), once. A kept field
must have no plain default (``= ()`` is a class attribute, found before ``__getattr__`` is asked): give it
``field(default_factory=...)``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np


class LazyTuples:
    """Mixin: a field missing from the instance is made from :meth:`_tuple_source` when first read."""

    def _tuple_source(self, name: str) -> np.ndarray | None:
        """The array kept for tuple field ``name`` (read ``self.__dict__`` only), None when there is none."""
        return None

    if not TYPE_CHECKING:  # the fields are declared on the dataclasses; mypy keeps checking every other name
        def __getattr__(self, name: str) -> tuple[float, ...] | tuple[int, ...]:
            # Runs only for a name not found the usual way: for a kept field, its first read.
            source = None if name.startswith("__") else self._tuple_source(name)
            if source is None:
                raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")
            values = tuple(source.tolist())
            object.__setattr__(self, name, values)
            return values


def read_only_copy(values: object, dtype: type) -> np.ndarray:
    """``values`` as a read-only array of ``dtype``, copied (the caller's array may change later)."""
    out: np.ndarray = np.array(values, dtype=dtype)
    out.flags.writeable = False
    return out
