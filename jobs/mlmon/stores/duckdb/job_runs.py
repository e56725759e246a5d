"""Job health in the embedded store: one row per (model, job family), folded run by run."""

from __future__ import annotations

import json
from collections.abc import Sequence

import duckdb

from mlmon.core.job_runs import JobHealth, JobRun, fold

JOB_HEALTH_TABLE = "mlmon_job_health"
JOB_HEALTH_DDL = f"CREATE TABLE IF NOT EXISTS {JOB_HEALTH_TABLE} (key VARCHAR PRIMARY KEY, health JSON NOT NULL)"


def record_job_runs(con: duckdb.DuckDBPyConnection, runs: Sequence[JobRun]) -> None:
    if not runs:
        return
    con.execute(JOB_HEALTH_DDL)
    known = {h.key: h for h in job_health(con)}
    for run in runs:
        health = fold(known.get(f"job-health:{run.model}:{run.family}"), run)
        known[health.key] = health
        con.execute(f"INSERT OR REPLACE INTO {JOB_HEALTH_TABLE} VALUES (?, ?)",
                    [health.key, json.dumps(health.to_fields())])


def job_health(con: duckdb.DuckDBPyConnection) -> list[JobHealth]:
    """Every (model, family) ever run, by model then family; none on a store no round ran on."""
    exists = con.execute("SELECT count(*) FROM duckdb_tables() WHERE table_name = ?", [JOB_HEALTH_TABLE]).fetchone()
    if not exists or not exists[0]:
        return []
    rows = con.execute(f"SELECT health FROM {JOB_HEALTH_TABLE} ORDER BY key").fetchall()
    return [JobHealth.from_fields(json.loads(r[0])) for r in rows]
