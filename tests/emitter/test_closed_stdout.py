"""A stdout whose reader went away (`... | head`) is gone for good: no retries, the drop is said once."""

from __future__ import annotations

import subprocess
import sys


def test_a_closed_stdout_pipe_is_not_retried() -> None:
    proc = subprocess.Popen([sys.executable, "-m", "mlmon.cli.main", "emit-sample", "-n", "20000"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None and proc.stderr is not None
    assert proc.stdout.readline().startswith(b"{")
    proc.stdout.close()  # what `| head -1` does after its line
    err = proc.stderr.read().decode()
    proc.wait(timeout=60)
    assert "retrying" not in err, err
    assert "Traceback" not in err and "Exception ignored" not in err, err
    assert "closed by its reader" in err
