"""A round's jobs run with the cyclic garbage collector paused, and leave it as they found it."""

from __future__ import annotations

import gc
from collections.abc import Iterator, Sequence
from datetime import datetime

import numpy as np
import pytest

from mlmon.config.model import parse
from mlmon.core.reference import build_from_frame
from mlmon.jobs.drift import DriftJob
from mlmon.jobs.base import Window, WindowOutput
from mlmon.core.collector import collector_paused
from mlmon.schedule.runner import Runner
from mlmon.stores.duckdb.store import DuckDBStore
from tests.schedule.conftest import HOUR, T0
from tools.synth import make_features


def test_the_collector_is_restored_as_found_even_after_an_error() -> None:
    assert gc.isenabled()
    with pytest.raises(RuntimeError):
        with collector_paused():
            assert not gc.isenabled()
            raise RuntimeError("a job failed")
    assert gc.isenabled()
    gc.disable()   # a caller that turned it off keeps it off
    try:
        with collector_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()
    finally:
        gc.enable()


@pytest.mark.parametrize("fail", [False, True], ids=["ok", "job-fails"])
def test_a_rounds_jobs_run_with_the_collector_paused(store: DuckDBStore, monkeypatch: pytest.MonkeyPatch,
                                                     fail: bool) -> None:
    store.put_reference(build_from_frame(make_features(np.random.default_rng(1), 500), "churn", "1", source="t"))
    seen: list[bool] = []
    run_windows = DriftJob.run_windows

    def spy(self: DriftJob, windows: Sequence[Window], at: datetime) -> Iterator[WindowOutput]:
        seen.append(gc.isenabled())
        if fail:
            raise RuntimeError("drift failed")
        yield from run_windows(self, windows, at)

    monkeypatch.setattr(DriftJob, "run_windows", spy)
    report = Runner(parse({"models": {"churn": {"version": "1"}}}), store).backfill(T0, T0 + 2 * HOUR,
                                                                                   progress=False)
    assert seen and not any(seen)
    assert bool(report.failures) == fail
    assert gc.isenabled()
