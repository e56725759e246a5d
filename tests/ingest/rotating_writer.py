"""A service writing events to a file that is rotated under it, run as its own process.

``python rotating_writer.py PATH MODE LINES ROTATE_EVERY KEEP [START]``: writes LINES
prediction events (ids ``w-<n>``, from START) in small bursts, and every ROTATE_EVERY
seconds rotates the file as logrotate would, keeping KEEP numbered copies:

- ``copytruncate``: copy to ``PATH.1`` (older copies shifted up), then truncate in place;
  the writer keeps its descriptor (opened with O_APPEND, as logrotate requires).
- ``rename``: ``PATH`` renamed to ``PATH.1`` (older copies shifted up), a new file opened.
- ``none``: never rotated (with a long ROTATE_EVERY).

The rotation happens between two writes of this process, so no line falls into
logrotate's own copy-then-truncate window: every line written is in some file.
Prints "done" when all lines are written.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from pathlib import Path


def event(n: int) -> bytes:
    doc = {"@timestamp": "2025-01-15T10:00:00.123Z", "ecs": {"version": "8.11.0"},
           "event": {"kind": "event", "dataset": "mlmon.prediction", "id": f"w-{n}", "module": "mlmon"},
           "service": {"name": "svc"},
           "mlmon": {"schema_version": "1", "model": {"name": "m", "version": "1", "task": "classification"},
                     "prediction": {"id": f"p-{n}", "label": "yes", "latency_ms": 7.0},
                     "features": {"numeric": {"x": float(n)}}}}
    return json.dumps(doc).encode() + b"\n"


def shift_copies(path: Path, keep: int) -> None:
    """``.k-1`` -> ``.k`` down to ``.1`` -> ``.2``; the oldest falls off."""
    for k in range(keep, 1, -1):
        older = path.with_name(f"{path.name}.{k - 1}")
        if older.exists():
            older.replace(path.with_name(f"{path.name}.{k}"))


def main() -> int:
    path, mode, lines, every, keep = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3]), float(sys.argv[4]), \
        int(sys.argv[5])
    start = int(sys.argv[6]) if len(sys.argv) > 6 else 0
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    next_rotation = time.monotonic() + every
    n = start
    while n < start + lines:
        burst = b"".join(event(i) for i in range(n, min(n + 20, start + lines)))
        os.write(fd, burst)
        n += burst.count(b"\n")
        if time.monotonic() >= next_rotation:
            shift_copies(path, keep)
            if mode == "none":
                pass
            elif mode == "copytruncate":
                shutil.copyfile(path, path.with_name(f"{path.name}.1"))
                os.truncate(path, 0)
            else:
                os.close(fd)
                path.replace(path.with_name(f"{path.name}.1"))
                fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            next_rotation = time.monotonic() + every
        time.sleep(0.002)
    os.close(fd)
    print("done", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
