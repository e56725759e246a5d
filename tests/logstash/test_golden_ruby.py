"""The Logstash ruby filter script, run under Ruby, reproduces every golden file.

Ruby is not Logstash: the harness stands in for the Event API and the
fingerprint/mutate steps (see ruby_harness.rb); `make test-stack` is the check
against real Logstash. Skipped only where no `ruby` binary exists.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tools import golden
from mlmon.ingest.spec import SPEC_PATH

HERE = Path(__file__).parent
SCRIPT = golden.GOLDEN_DIR.parent / "ruby" / "mlmon_event.rb"
RUBY = shutil.which("ruby")
# Skipped only on a developer machine without ruby; CI (.ci/run) installs it, so there it must run.
pytestmark = pytest.mark.skipif(RUBY is None and os.environ.get("CI") != "true",
                                reason="ruby is not installed (apt-get install ruby)")


PIPELINE = golden.GOLDEN_DIR.parent / "pipeline" / "mlmon-events.conf"


def pipeline_charsets() -> tuple[str, str]:
    """(the line codec's charset, shared by every input; the filter's input_charset) from the pipeline."""
    conf = PIPELINE.read_text(encoding="utf-8")
    codecs = set(re.findall(r'codec => line \{ charset => "([^"]+)" \}', conf))
    assert len(codecs) == 1, f"the inputs must share one codec charset, found {codecs}"
    (input_charset,) = re.findall(r'"input_charset" => "([^"]+)"', conf)
    return codecs.pop(), input_charset


def run_ruby(case: str, charsets: tuple[str, str] | None = None) -> list[dict]:
    codec_charset, input_charset = charsets or pipeline_charsets()
    proc = subprocess.run([RUBY, str(HERE / "ruby_harness.rb"), str(SCRIPT), str(SPEC_PATH),
                           str(golden.GOLDEN_DIR / f"{case}.jsonl"), codec_charset, input_charset],
                          capture_output=True, check=True, timeout=60)
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


def test_a_utf8_codec_would_lose_lines_with_invalid_utf8() -> None:
    """Why the inputs decode ISO-8859-1: declared UTF-8, Logstash's codec turns a line with
    invalid bytes into its Ruby inspect(), which is no longer the JSON that was sent."""
    naive = [golden.normalise(d) for d in run_ruby("non_utf8", ("UTF-8", ""))]
    expected = golden.load_expected("non_utf8")
    assert naive != expected
    reasons = {d["source"]["error"]["type"] for d in naive if "error" in d["source"]}
    assert "invalid_utf8" not in reasons  # the escaped text parses as nothing: a not_json dead letter
    # Valid UTF-8 (and non-ASCII text in it) passes the ISO-8859-1 round trip unchanged.
    assert [golden.normalise(d) for d in run_ruby("prediction")] == golden.load_expected("prediction")
