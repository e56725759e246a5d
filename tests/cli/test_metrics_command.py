"""``mlmon metrics``: filters before the limit, a cut answer said on stderr, every column and format."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.cli.helpers import T0, doc, mlmon, store_with


@pytest.fixture
def url(tmp_path: Path) -> str:
    """300 'ok' drift documents in the newest window, 3 'alert' ones in older windows, one per-class,
    per-segment, provisional performance document."""
    docs = [doc(i, hour=10) for i in range(300)]
    docs += [doc(i, status="alert", hour=h, feature="plan") for i, h in ((1, 1), (2, 2), (3, 3))]
    docs.append(doc(0, family="performance", metric="recall", feature="", class_label="1",
                    segment=("country", "DE"), maturity="provisional", hour=4, model="churn"))
    return store_with(tmp_path / "m.duckdb", docs)


def test_filters_apply_before_the_limit(url: str) -> None:
    result = mlmon(["metrics", "--store", url, "--status", "alert", "--format", "jsonl"])
    assert result.code == 0, result.err
    docs = [json.loads(line) for line in result.out.splitlines()]
    assert len(docs) == 3 and {d["metric"]["status"] for d in docs} == {"alert"}
    assert result.err == ""  # nothing was cut


@pytest.mark.parametrize(("argv", "count"), [
    (["--feature", "plan2,plan3"], 2),
    (["--family", "performance"], 1),
    (["--model", "churn", "--version", "3", "--from", "2026-11-01T02:00:00Z", "--to", "2026-11-01T04:00:00Z"], 2),
    (["--model", "other"], 0),
    (["--version", "4"], 0),
])
def test_each_filter_is_pushed_into_the_query(url: str, argv: list[str], count: int) -> None:
    result = mlmon(["metrics", "--store", url, "--format", "jsonl", "--limit", "1", *argv])
    assert result.code == 0, result.err
    assert len(result.out.splitlines()) == min(count, 1)
    if count > 1:
        assert f"showing 1 of {count}" in result.err
    if count == 0:
        assert "no metric documents" in result.err and "match the filters" in result.err


def test_a_cut_listing_says_how_many_matched(url: str) -> None:
    result = mlmon(["metrics", "--store", url])
    assert len(result.out.splitlines()) == 1 + 200
    assert result.err.strip() == "mlmon metrics: showing 200 of 304; use --limit 304 for all"


def test_the_table_shows_class_segment_and_maturity(url: str) -> None:
    result = mlmon(["metrics", "--store", url, "--family", "performance"])
    header, line = result.out.splitlines()
    assert header.split() == ["window_start", "model", "version", "family", "feature", "class", "segment",
                              "metric", "value", "status", "maturity"]
    assert line.split()[3:] == ["performance", "-", "1", "country=DE", "recall", "0", "ok", "provisional"]


def test_csv_and_json_carry_the_same_documents(url: str) -> None:
    as_csv = list(csv.DictReader(io.StringIO(mlmon(["metrics", "--store", url, "--format", "csv",
                                                    "--status", "alert"]).out)))
    as_json = json.loads(mlmon(["metrics", "--store", url, "--format", "json", "--status", "alert"]).out)
    assert [r["feature"] for r in as_csv] == [d["metric"]["feature"] for d in as_json] == ["plan3", "plan2", "plan1"]
    assert as_csv[0]["segment"] == "-" and as_csv[0]["maturity"] == "-"


@pytest.mark.parametrize(("argv", "needle"), [
    (["--status", "alrt"], "--status alrt: unknown; expected one of ok, warning, alert"),
    (["--family", "drfit"], "--family drfit: unknown"),
    (["--from", "yesterday"], "--from 'yesterday' is not an ISO 8601 time"),
    (["--from", "2026-11-02", "--to", "2026-11-01"], "--from must be before --to"),
    (["--limit", "0"], "--limit 0: expected a number of documents >= 1"),
])
def test_bad_options_are_one_line(url: str, argv: list[str], needle: str) -> None:
    result = mlmon(["metrics", "--store", url, *argv])
    assert needle in result.one_error_line() and result.code == 2


def test_a_closed_pipe_ends_quietly(url: str) -> None:
    with subprocess.Popen([sys.executable, "-m", "mlmon.cli.main", "metrics", "--store", url, "--limit", "304",
                           "--format", "jsonl"], stdout=subprocess.PIPE, stderr=subprocess.PIPE) as proc:
        assert proc.stdout is not None and proc.stderr is not None
        assert json.loads(proc.stdout.readline())["window"]["start"] == (T0.replace(hour=10)).isoformat(
            timespec="milliseconds").replace("+00:00", "Z")
        proc.stdout.close()  # like `| head -1`
        err = proc.stderr.read().decode()
        code = proc.wait(timeout=60)
    assert "Traceback" not in err and "Exception ignored" not in err and "BrokenPipe" not in err, err
    assert code == 141  # as a process ended by SIGPIPE: the output (~300 kB) outgrew the pipe
