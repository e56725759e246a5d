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
    assert plans.JOIN_ROWS is _speedups.join_rows


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
    declined: list[dict[Any, Any]] = [{"a": a, "b": b}, {"b": b, "a": a, "c": c}, {"a": True, "b": b, "c": c},
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


def _block_rows(columns: dict[str, list[Any]], monkeypatch: pytest.MonkeyPatch, c_join: bool) -> list[Any]:
    """Every row's features of a RowBlock of these columns as JSON bytes (None: the dict path), rows put
    together by the C join_rows or by the Python twin."""
    from mlmon_logging import blocks

    if not c_join:
        monkeypatch.setattr(blocks, "JOIN_ROWS", None)
    splitter = FeatureSplitter({}, lambda name: isinstance(name, str))
    labels = list(columns)
    values = list(columns.values())
    block = blocks.RowBlock(len(values[0]), labels, values, [None] * len(labels), [], [])
    out = [block.features(i, splitter) for i in range(block.rows)]
    monkeypatch.undo()
    return [row if row is None or row == {} else orjson.dumps(row) for row in out]


def _expected_rows(columns: dict[str, list[Any]]) -> list[bytes | None]:
    """What orjson writes for the split the splitter makes of each row's dict (None where either declines)."""
    splitter = FeatureSplitter({}, lambda name: isinstance(name, str))
    splitter._apply_plan = None  # the Python reference
    out: list[bytes | None] = []
    for row in zip(*columns.values()):
        split = splitter.split_features(dict(zip(columns, row)))
        try:
            out.append(None if split is None else orjson.dumps(split))
        except orjson.JSONEncodeError:  # the plain path declines what orjson refuses: the dict path handles it
            out.append(None)
    return out


def _awkward_columns(rows: int) -> dict[str, list[Any]]:
    rng = np.random.default_rng(3)
    numbers: list[Any] = rng.normal(0, 1e3, rows).tolist()
    for i in range(0, rows, 37):
        numbers[i] = float("nan") if i % 2 else float("inf")
    numbers[1], numbers[2], numbers[3] = 1e16, 5e-324, -0.0  # exponent forms, the smallest double, a signed zero
    numbers[5] = "label"  # not of its column's type: the dict path
    counts: list[Any] = rng.integers(-5, 5, rows).tolist()
    counts[9] = 10**400  # beyond doubles
    labels: list[Any] = [str(v) for v in rng.choice(["a", "b", "é"], rows)]
    labels[11] = 3.5
    # Texts that could fool a cut: quotes, commas, backslashes, control characters, a lone surrogate.
    labels[12], labels[13], labels[14], labels[15] = '","', 'a\\', '\\","\\', "\n\t\x00\u2028"
    labels[16], labels[17] = "\ud800", ""
    return {"x": numbers, "n%b": counts, 'pl"an': labels}


@pytest.mark.parametrize("c_join", [True, False])
def test_block_rows_are_what_orjson_writes_for_the_split_dicts(monkeypatch: pytest.MonkeyPatch, c_join: bool) -> None:
    if c_join and plans.JOIN_ROWS is None:
        pytest.skip("mlmon_logging._speedups is not built")
    rows = 500
    columns = _awkward_columns(rows)
    got = _block_rows(columns, monkeypatch, c_join=c_join)
    expected = _expected_rows(columns)
    assert got == expected
    assert got[5] is None and got[9] is None and got[11] is None and got[16] is None and got[37] is None
    assert got[12] is not None and got[15] is not None and got[17] is not None
    assert sum(row is not None for row in got) > rows * 0.9


@pytest.mark.parametrize("c_join", [True, False])
@pytest.mark.parametrize("columns", [{"a": [1.5, 2.5]}, {"t": ["x", "y"]}, {"t": ["x", "y"], "a": [1, 2]}])
def test_block_rows_with_one_kind_of_feature(monkeypatch: pytest.MonkeyPatch, c_join: bool,
                                             columns: dict[str, list[Any]]) -> None:
    if c_join and plans.JOIN_ROWS is None:
        pytest.skip("mlmon_logging._speedups is not built")
    assert _block_rows(columns, monkeypatch, c_join=c_join) == _expected_rows(columns)


@needs_extension
def test_bad_join_arguments_are_errors_not_crashes() -> None:
    join_rows = plans.JOIN_ROWS
    assert join_rows is not None
    with pytest.raises(TypeError):
        join_rows((b"{", b"}"), [b"[1.0]"], 1)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        join_rows([b"{"], [b"[1.0]"], 1)  # one piece too few
    with pytest.raises(TypeError):
        join_rows([b"{", b"}"], [b"1.0"], 1)  # not an array
    with pytest.raises(TypeError):
        join_rows([b"{", b"}"], [b"[1.0]"], -1)
    with pytest.raises(ValueError):
        join_rows([b"{", b"}"], [b"[1.0]"], 2)  # the column has no row 1
    with pytest.raises(ValueError):
        join_rows([b"{", b"}"], [b'["x]'], 1)  # a text never closed
    with pytest.raises(TypeError):
        join_rows([b"{", b"}"], [b"[1.0]"])  # type: ignore[call-arg]
    assert join_rows([b"<", b"|", b">"], [b'[1.5,null]', b'["a\\"",""]'], 2) == [b'<1.5|"a\\"">', b'<null|"">']
