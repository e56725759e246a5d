"""Issue 15, full disk: a failed write leaves the file at a line boundary, and the counts match the file.

Measured before the fix: a partial write merged with the retried chunk (invalid lines, one
duplicate) and events present in the file were counted as dropped. Two ways to fill the
disk: the kernel's file size limit in a subprocess (RLIMIT_FSIZE: a write crossing it is
cut short, the next fails with EFBIG, exactly as on a full disk), and an ``os.write`` that
fails with ENOSPC after a byte budget.
"""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import orjson
import pytest

from mlmon_logging import ModelLogger
from mlmon_logging import sinks as sinks_module


def _lines_of(path: Path) -> list[dict[str, Any]]:
    data = path.read_bytes()
    assert not data or data.endswith(b"\n"), "the file ends inside a line"
    events = [orjson.loads(line) for line in data.splitlines()]  # every line is whole JSON
    ids = [e["event"]["id"] for e in events]
    assert len(ids) == len(set(ids)), "an event was written twice"
    return events


def _run_with_file_size_limit(path: Path, limit: int, logged: int, space_returns: bool) -> dict[str, Any]:
    script = textwrap.dedent(f"""
        import json, resource, signal, time
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails (EFBIG) instead of killing us
        from mlmon_logging import ModelLogger
        soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
        mlog = ModelLogger("m", "1", sink="file://{path}", stats_interval=None, batch_size=64,
                           retry_initial=0.01, retry_max=0.05, close_timeout=0.5, queue_size=100_000)
        resource.setrlimit(resource.RLIMIT_FSIZE, ({limit}, hard))
        for i in range({logged}):
            mlog.log_prediction({{"i": float(i)}}, 1)
        time.sleep(0.5)  # the writer hits the limit and keeps retrying
        if {space_returns}:
            resource.setrlimit(resource.RLIMIT_FSIZE, (hard, hard))  # space is back
        mlog.close()
        print(json.dumps({{**mlog.stats.as_dict(), "by_reason": dict(mlog.stats.dropped_by_reason)}}))
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    stats: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return stats


@pytest.mark.parametrize("space_returns", [True, False])
def test_a_file_size_limit_mid_chunk_leaves_whole_lines_and_exact_counts(tmp_path: Path,
                                                                         space_returns: bool) -> None:
    path = tmp_path / "events.jsonl"
    logged = 2_000
    stats = _run_with_file_size_limit(path, limit=50_000, logged=logged, space_returns=space_returns)
    events = _lines_of(path)
    assert stats["queued"] == 0 and stats["errors"] > 0  # the limit was hit
    assert len(events) == stats["emitted"]
    assert stats["emitted"] + stats["dropped"] == logged
    if space_returns:
        assert stats["dropped"] == 0
    else:
        assert stats["dropped"] > 0 and stats["by_reason"] == {"close_timeout": stats["dropped"]}
        assert path.stat().st_size <= 50_000


class _FullDisk:
    """os.write that takes ``budget`` more bytes in all, then fails with ENOSPC (partially, as a disk does)."""

    def __init__(self, budget: int) -> None:
        self.budget = budget
        self.real = os.write

    def __call__(self, fd: int, data: Any) -> int:
        if self.budget <= 0:
            raise OSError(errno.ENOSPC, "No space left on device")
        view = memoryview(data)[: self.budget]
        written = self.real(fd, view)
        self.budget -= written
        return written


def test_enospc_after_part_of_a_chunk_is_rolled_back_and_retried_whole(tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "events.jsonl"
    disk = _FullDisk(budget=30_000)
    monkeypatch.setattr(sinks_module.os, "write", disk)
    mlog = ModelLogger("m", "1", sink=f"file://{path}", stats_interval=None, batch_size=64, retry_initial=0.01,
                       retry_max=0.02, close_timeout=5)
    for i in range(1_000):
        mlog.log_prediction({"i": float(i)}, 1)
    assert not mlog.flush(timeout=0.5)  # stuck on the full disk
    assert path.read_bytes().endswith(b"\n")  # rolled back to the last whole line meanwhile
    disk.budget = 10**9  # space is back
    mlog.close()
    events = _lines_of(path)
    assert [e["mlmon"]["features"]["numeric"]["i"] for e in events] == [float(i) for i in range(1_000)]
    assert mlog.stats.emitted == 1_000 and mlog.stats.dropped == 0 and mlog.stats.errors > 0
