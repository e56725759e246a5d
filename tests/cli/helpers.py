"""Running the real ``mlmon`` command line in-process, and a store with a few metric documents."""

from __future__ import annotations

import contextlib
import io
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

from mlmon.cli.main import main
from mlmon.core.documents import Family, Maturity, MetricDocument, Status
from mlmon.stores.duckdb.store import DuckDBStore

T0 = datetime(2026, 11, 1, tzinfo=timezone.utc)
HOUR = timedelta(hours=1)


@dataclass
class Result:
    code: int
    out: str
    err: str

    def one_error_line(self) -> str:
        """The single stderr line of a user error (asserts it is one line and no traceback)."""
        lines = self.err.strip().splitlines()
        assert self.code != 0, (self.out, self.err)
        assert "Traceback" not in self.err, self.err
        assert len(lines) == 1, self.err
        return lines[0]


def mlmon(argv: Sequence[str]) -> Result:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(list(argv))
        except SystemExit as exit_:  # argparse errors and SystemExit("message") of a command
            code = exit_.code if isinstance(exit_.code, int) else 1
            if isinstance(exit_.code, str):
                err.write(exit_.code + "\n")
    return Result(code, out.getvalue(), err.getvalue())


def doc(i: int, *, model: str = "churn", version: str = "3", family: Family = "drift", status: Status = "ok",
        feature: str = "age", metric: str = "psi", hour: int = 0, class_label: str = "",
        segment: tuple[str, str] | None = None, maturity: Maturity | None = None) -> MetricDocument:
    """The i-th document of a family: features age, age1, age2, ... so ids differ."""
    return MetricDocument(model=model, model_version=version, family=family, metric=metric,
                          feature=f"{feature}{i}" if i and feature else feature,
                          window_start=T0 + hour * HOUR, window_end=T0 + (hour + 1) * HOUR, value=0.1 * i,
                          status=status, n_current=100, run_id="r", code_version="t", class_label=class_label,
                          segment_field=segment[0] if segment else "",
                          segment_value=segment[1] if segment else "", maturity=maturity)


def store_with(path: Path, docs: Sequence[MetricDocument]) -> str:
    store = DuckDBStore(path)
    try:
        store.write_metrics(docs)
    finally:
        store.close()
    return f"duckdb:///{path}"  # an absolute path: duckdb:////abs/...
