"""The optional C split (mlmon_logging/_speedups.c) against the Python one it stands in for."""

from __future__ import annotations

import shutil
import subprocess
import sys
from typing import Any

import numpy as np
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mlmon_logging import plans
from mlmon_logging.plans import FeatureSplitter

NAMES = ["age", "plan", "zip", "income", "x"]


def test_the_extension_is_built_where_a_compiler_is() -> None:
    # make test installs the project with a compiler at hand: a build that failed quietly
    # (setup.py marks the extension optional) would leave every service on the slow path.
    if shutil.which("cc") is None and shutil.which("gcc") is None:
        pytest.skip("no C compiler here: the pure-Python split is the one in use")
    from mlmon_logging import _speedups  # noqa: F401  (ImportError fails the test)
    assert plans.APPLY_PLAN is _speedups.apply_plan


def test_the_extension_can_be_turned_off() -> None:
    code = "import mlmon_logging.plans as p; print(p.APPLY_PLAN is None)"
    env = {"MLMON_LOGGING_NO_SPEEDUPS": "1", "PATH": ""}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "True"


needs_extension = pytest.mark.skipif(plans.APPLY_PLAN is None, reason="mlmon_logging._speedups is not built")

values = st.one_of(st.floats(), st.integers(min_value=-(2**70), max_value=2**70), st.text(max_size=3),
                   st.booleans(), st.none(), st.builds(np.float64, st.floats(-5, 5)), st.just(10**400))


def _splitter(apply_plan: Any, routes: dict[object, int]) -> FeatureSplitter:
    splitter = FeatureSplitter(routes, lambda name: isinstance(name, str) and name.isidentifier())
    splitter._apply_plan = apply_plan
    return splitter


def _exactly(split: dict[str, dict[str, Any]] | None) -> Any:
    """The split with each value's exact type: 1 and 1.0 must not compare equal here."""
    if split is None:
        return None
    return {group: [(name, type(value), orjson.dumps(value)) for name, value in members.items()]
            for group, members in split.items()}


@needs_extension
@settings(max_examples=300, deadline=None)
@given(data=st.data(), shape=st.lists(st.sampled_from(NAMES), unique=True, max_size=5),
       declared=st.sets(st.sampled_from(NAMES), max_size=2))
def test_the_c_split_gives_what_the_python_split_gives(data: st.DataObject, shape: list[str],
                                                        declared: set[str]) -> None:
    """Same sequence, same routes learned: the C path and the Python path agree call by call.

    The names mostly stay those of the last call, so the C path really runs, while the
    values change type under them (an int where a float was, a bool where an int was)."""
    with_c = _splitter(plans.APPLY_PLAN, {name: plans.CATEGORICAL for name in declared})
    python = _splitter(None, {name: plans.CATEGORICAL for name in declared})
    plain = st.one_of(st.floats(allow_nan=False, allow_infinity=False), st.integers(-5, 5), st.text(max_size=2))
    for _ in range(data.draw(st.integers(1, 12))):
        if data.draw(st.integers(0, 9)) == 0:
            shape = data.draw(st.lists(st.sampled_from(NAMES), unique=True, max_size=5))
        features = {name: data.draw(st.one_of(plain, plain, values)) for name in shape}
        assert _exactly(with_c.split_features(dict(features))) == _exactly(python.split_features(dict(features)))


@needs_extension
def test_declines_what_breaks_the_plan_and_keeps_refcounts() -> None:
    apply_plan = plans.APPLY_PLAN
    assert apply_plan is not None
    names, kinds = ["a", "b", "c"], b"fsi"
    a, b, c = 1.5, "pro", 41
    assert apply_plan({"a": a, "b": b, "c": c}, names, kinds) == {"numeric": {"a": 1.5, "c": 41.0},
                                                                  "categorical": {"b": "pro"}}
    declined = [{"a": a, "b": b}, {"b": b, "a": a, "c": c}, {"a": True, "b": b, "c": c},
                {"a": float("nan"), "b": b, "c": c}, {"a": float("inf"), "b": b, "c": c},
                {"a": np.float64(1.0), "b": b, "c": c}, {"a": a, "b": 3, "c": c}, {"a": a, "b": b, "c": True},
                {"a": a, "b": b, "c": 10**400}, {"a": a, "b": b, "c": 1.0}, {"a": a, "b": b, 5: c},
                {"a": a, "b": b, "d": c}]
    for features in declined:
        assert apply_plan(features, names, kinds) is None, features
    assert apply_plan({}, [], b"") == {}
    assert apply_plan({"b": b}, ["b"], b"s") == {"categorical": {"b": "pro"}}
    assert apply_plan({"a": a}, ["a"], b"f") == {"numeric": {"a": 1.5}}
    before = [sys.getrefcount(x) for x in (a, b, c, *names)]
    for _ in range(10_000):
        apply_plan({"a": a, "b": b, "c": c}, names, kinds)
        apply_plan({"a": a, "b": b, "c": 10**400}, names, kinds)
        apply_plan({"a": a, "b": 3, "c": c}, names, kinds)
    assert [sys.getrefcount(x) for x in (a, b, c, *names)] == before


@needs_extension
def test_bad_arguments_are_errors_not_crashes() -> None:
    apply_plan = plans.APPLY_PLAN
    assert apply_plan is not None
    with pytest.raises(TypeError):
        apply_plan({}, ("a",), b"f")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        apply_plan({"a": 1.0}, ["a"], b"")
    with pytest.raises(ValueError):
        apply_plan({"a": 1.0}, ["a"], b"z")
    with pytest.raises(TypeError):
        apply_plan({})  # type: ignore[call-arg]


def _split_rows(columns: dict[str, list[Any]], monkeypatch: pytest.MonkeyPatch, c_split: bool) -> list[Any]:
    """Every row of a RowBlock of these columns, split with the C split_row or with the Python twin."""
    from mlmon_logging import blocks

    if not c_split:
        monkeypatch.setattr(blocks, "SPLIT_ROW", None)
    splitter = FeatureSplitter({}, lambda name: isinstance(name, str))
    labels = list(columns)
    values = list(columns.values())
    block = blocks.RowBlock(len(values[0]), labels, values, [None] * len(labels), [], [])
    out = [block.features(i, splitter) for i in range(block.rows)]
    monkeypatch.undo()
    return out


@needs_extension
def test_the_c_row_split_gives_what_the_python_row_split_gives(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(3)
    rows = 500
    numbers: list[Any] = rng.normal(0, 1e3, rows).tolist()
    for i in range(0, rows, 37):
        numbers[i] = float("nan") if i % 2 else float("inf")
    numbers[5] = "label"  # not of its column's type: the dict path
    counts: list[Any] = rng.integers(-5, 5, rows).tolist()
    counts[9] = 10**400  # beyond doubles
    labels: list[Any] = [str(v) for v in rng.choice(["a", "b", "é"], rows)]
    labels[11] = 3.5
    columns = {"x": numbers, "n": counts, "plan": labels}
    c_rows = _split_rows(columns, monkeypatch, c_split=True)
    python_rows = _split_rows(columns, monkeypatch, c_split=False)
    assert c_rows == python_rows
    assert c_rows[5] is None and c_rows[9] is None and c_rows[11] is None and c_rows[37] is None
    assert sum(row is not None for row in c_rows) > rows * 0.9
    assert orjson.dumps(c_rows) == orjson.dumps(python_rows)  # ints written as doubles alike


@needs_extension
def test_bad_row_arguments_are_errors_not_crashes() -> None:
    split_row = plans.SPLIT_ROW
    assert split_row is not None
    with pytest.raises(TypeError):
        split_row(("a",), [[1.0]], {}, [], 0)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        split_row({"a": None}, [[1.0]], {}, [], -1)
    with pytest.raises(TypeError):
        split_row({"a": None}, [], {}, [], 0)
    with pytest.raises(ValueError):
        split_row({"a": None}, [[1.0]], {}, [], 1)  # the column has no row 1
    with pytest.raises(TypeError):
        split_row({"a": None}, [[1.0]], {}, [])  # type: ignore[call-arg]
    assert split_row({"a": None}, [[1.0]], {"b": None}, [["x"]], 0) == {"numeric": {"a": 1.0},
                                                                         "categorical": {"b": "x"}}
