"""The Logstash ruby filter script, run under Ruby, reproduces every golden file.

Ruby is not Logstash: the harness stands in for the Event API and the
fingerprint/mutate steps (see ruby_harness.rb); `make test-stack` is the check
against real Logstash. Skipped only where no `ruby` binary exists.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from mlmon.ingest import golden
from mlmon.ingest.spec import SPEC_PATH

HERE = Path(__file__).parent
SCRIPT = golden.GOLDEN_DIR.parent / "ruby" / "mlmon_event.rb"
RUBY = shutil.which("ruby")
# Skipped only on a developer machine without ruby; CI (.ci/run) installs it, so there it must run.
pytestmark = pytest.mark.skipif(RUBY is None and os.environ.get("CI") != "true",
                                reason="ruby is not installed (apt-get install ruby)")


def run_ruby(case: str) -> list[dict]:
    proc = subprocess.run([RUBY, str(HERE / "ruby_harness.rb"), str(SCRIPT), str(SPEC_PATH),
                           str(golden.GOLDEN_DIR / f"{case}.jsonl")], capture_output=True, check=True, timeout=60)
    return json.loads(proc.stdout)


@pytest.mark.parametrize("case", golden.cases())
def test_ruby_filter_matches_golden(case: str) -> None:
    got = [golden.normalise(d) for d in run_ruby(case)]
    assert got == golden.load_expected(case)


def test_ruby_filter_sets_ingest_time_and_rejection_time() -> None:
    docs = run_ruby("idempotency")
    ok, dead = docs
    assert ok["source"]["event"]["ingested"].endswith("Z")
    assert dead["source"]["@timestamp"] == dead["source"]["event"]["ingested"]
