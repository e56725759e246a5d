"""Read-only commands never create a store, and say what they could not read."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.cli.helpers import doc, mlmon, store_with


@pytest.mark.parametrize("argv", [
    ["metrics"],
    ["report", "--out", "{tmp}/r.html"],
    ["reference", "list"],
])
def test_a_mistyped_store_path_is_one_line_and_creates_nothing(tmp_path: Path, argv: list[str]) -> None:
    store_with(tmp_path / "mlmon.duckdb", [doc(0)])
    typo = tmp_path / "mlmnon.duckdb"
    result = mlmon([a.replace("{tmp}", str(tmp_path)) for a in argv] + ["--store", f"duckdb:///{typo}"])
    line = result.one_error_line()
    assert str(typo) in line and "mlmon.duckdb" in line.replace(str(typo), "")  # names what is there
    assert not typo.exists() and not (tmp_path / "r.html").exists()


def test_a_missing_store_in_an_empty_folder_says_so(tmp_path: Path) -> None:
    line = mlmon(["metrics", "--store", f"duckdb:///{tmp_path}/none.duckdb"]).one_error_line()
    assert "no such store" in line and "no .duckdb files" in line
    assert list(tmp_path.iterdir()) == []


def test_report_on_an_ingest_only_store_reads_without_creating_tables(tmp_path: Path) -> None:
    from mlmon.stores.duckdb.schema import ensure_schema
    import duckdb

    path = tmp_path / "events.duckdb"
    con = duckdb.connect(str(path))
    ensure_schema(con)  # what `mlmon ingest` leaves: events and metrics tables, no alerts or references
    con.close()
    result = mlmon(["report", "--store", f"duckdb:///{path}", "--out", str(tmp_path / "r.html")])
    assert result.code == 0, result.err
    assert "0 model(s)" in result.out
    con = duckdb.connect(str(path), read_only=True)
    tables = {r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}
    con.close()
    assert "alerts" not in tables and "reference_profiles" not in tables


def test_reading_does_not_change_the_store_file(tmp_path: Path) -> None:
    path = tmp_path / "m.duckdb"
    url = store_with(path, [doc(0), doc(1)])
    before = path.read_bytes()
    for argv in (["metrics"], ["reference", "list"], ["report", "--out", str(tmp_path / "r.html")]):
        assert mlmon([*argv, "--store", url]).code == 0
    assert path.read_bytes() == before


def test_a_read_only_store_refuses_writes_loudly(tmp_path: Path) -> None:
    from mlmon.stores.protocols import StoreError
    from mlmon.stores.url import open_store

    url = store_with(tmp_path / "m.duckdb", [doc(0)])
    store = open_store(url, read_only=True)
    try:
        with pytest.raises(StoreError, match="read-only"):
            store.write_metrics([doc(5)])
        assert store.alert_store().recent_alerts() == []
        assert store.get_reference("churn") is None and store.list_references() == []
    finally:
        store.close()
