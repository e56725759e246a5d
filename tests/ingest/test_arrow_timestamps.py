"""The column-wise timestamp parser agrees with parse_iso on every value, valid or not."""

from __future__ import annotations

import random

import pyarrow as pa
import pytest

from mlmon.ingest.arrow_timestamps import parse_iso_column
from mlmon.ingest.timestamps import parse_iso

EDGES = [
    "2025-01-15T10:00:00.123Z", "2025-01-15T10:00:00+05:30", "x", "", "2025-02-30T00:00:00Z",
    "2024-02-29T23:59:59.123456789-23:59", "0001-01-01T00:00:00+00:01", "0001-01-01T00:00:00-00:01",
    "9999-12-31T23:59:59-00:01", "1900-02-29T00:00:00Z", "2000-02-29T00:00:00Z", "1969-12-31T23:59:59.999999999Z",
    "2025-13-01T00:00:00Z", "2025-01-15T24:00:00Z", "2025-01-15T10:00:60Z", "2025-01-15T10:00:00.Z",
    "2025-01-15T10:00:00+24:00", "2025-01-15T10:00:00Z\n", "0000-01-01T00:00:00Z", "2025-01-15T10:00:00.1234567890Z",
    "2025-01-15T10:00:00.12a4Z", "2025-01-15T10:00:00+0530Z", "２025-01-15T10:00:00Z", "2025-01-15T10:00:00.5-00:00",
    "2025-01-15 10:00:00Z", "2025-01-15T10:00:00", "2025-01-15T10:00:00z",
]


def _agree(values: list[str | None]) -> None:
    array = pa.array([None, *values], pa.string()).slice(1)  # a sliced array: offsets must be honoured
    micros, bad = parse_iso_column(array)
    for value, got_micros, got_bad in zip(values, micros, bad):
        instant = parse_iso(value) if value is not None else None
        assert (None if got_bad or value is None else int(got_micros)) == (instant.micros if instant else None), value


def test_edge_cases_agree() -> None:
    _agree([*EDGES, None])


@pytest.mark.parametrize("seed", [1, 2])
def test_random_and_mutated_values_agree(seed: int) -> None:
    rnd = random.Random(seed)
    values: list[str | None] = []
    for _ in range(5000):
        values.append(f"{rnd.randint(0, 9999):04d}-{rnd.randint(0, 13):02d}-{rnd.randint(0, 32):02d}T"
                      f"{rnd.randint(0, 25):02d}:{rnd.randint(0, 60):02d}:{rnd.randint(0, 61):02d}"
                      + rnd.choice(["", ".", f".{rnd.randint(0, 10 ** 10)}"])
                      + rnd.choice(["Z", f"+{rnd.randint(0, 25):02d}:{rnd.randint(0, 60):02d}", "-14:00", "", "+1:00"]))
    base = "2024-02-29T23:59:59.123456789-23:59"
    for _ in range(5000):
        chars = list(base)
        for _ in range(rnd.randint(1, 3)):
            i = rnd.randrange(len(chars))
            op = rnd.random()
            if op < 0.4:
                chars[i] = rnd.choice("0123456789-:T.Z+ x")
            elif op < 0.7:
                del chars[i]
            else:
                chars.insert(i, rnd.choice("0123456789-:T.Z+ x"))
        values.append("".join(chars))
    _agree(values)
    assert sum(parse_iso(v) is not None for v in values if v) > 1000  # the sample holds plenty of valid values
