"""The file input watches what the emitter's file sink writes, rotated copies included."""

from __future__ import annotations

import inspect
import re
from fnmatch import fnmatchcase

from mlmon.core import assets as paths
from mlmon_logging.sinks import FileSink

#: ``${NAME:default}`` as Logstash substitutes it (the default runs to the first "}").
_ENV = re.compile(r"\$\{[A-Za-z_.][A-Za-z0-9_.]*:([^}]*)\}")


def _file_input_paths() -> list[str]:
    conf = (paths.LOGSTASH / "pipeline" / "mlmon-events.conf").read_text()
    block = conf[conf.index("  file {"):]
    line = next(line for line in block.splitlines() if line.strip().startswith("path =>"))
    return [_ENV.sub(lambda m: m[1], item) for item in re.findall(r'"([^"]*)"', line)]


def _watched(name: str) -> bool:
    # Ruby's Dir.glob and fnmatch agree on "*" and "[0-9]" within one directory level.
    return any(fnmatchcase(f"/var/log/mlmon/{name}", pattern) for pattern in _file_input_paths())


def test_the_current_file_and_every_rotated_copy_of_the_sink_are_watched() -> None:
    backups = inspect.signature(FileSink).parameters["backups"].default
    assert 1 <= backups <= 9
    names = ["churn.jsonl", *(f"churn.jsonl.{n}" for n in range(1, backups + 1))]
    assert [n for n in names if not _watched(n)] == []


def test_compressed_and_unrelated_files_are_not_read() -> None:
    for name in ("churn.jsonl.1.gz", "churn.jsonl.gz", "churn.log", "churn.jsonl.tmp"):
        assert not _watched(name), name
