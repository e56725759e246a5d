"""Another process holding a DuckDB file's lock, as ``mlmon run`` or ``mlmon ingest --follow`` would."""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

HOLDER = """
import duckdb, sys, time
con = duckdb.connect(sys.argv[1])
print("held", flush=True)
sys.stdin.readline()  # released when the test says so
con.close()
"""


@contextmanager
def held_by_another_process(path: Path) -> Iterator[subprocess.Popen[str]]:
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(path)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline() == "held\n"
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=30)


def release_after(proc: subprocess.Popen[str], seconds: float) -> threading.Timer:
    def release() -> None:
        assert proc.stdin is not None
        proc.stdin.write("\n")
        proc.stdin.flush()
    timer = threading.Timer(seconds, release)
    timer.start()
    return timer
