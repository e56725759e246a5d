"""Job health on Elasticsearch: one document per (model, job family) in the checkpoints index."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timezone

from elasticsearch import ApiError, Elasticsearch, TransportError

from mlmon.core.documents import CHECKPOINTS_INDEX, iso
from mlmon.core.job_runs import FAMILIES, JobHealth, JobRun, fold, health_key
from mlmon.stores.protocols import StoreError

#: (model, family) pairs are few (models x 4); one page holds them all, far below max_result_window.
MAX_HEALTH_DOCUMENTS = 1000


def record_job_runs(es: Elasticsearch, runs: Sequence[JobRun]) -> None:
    for run in runs:
        key = health_key(run.model, run.family)
        try:
            previous = _get(es, key)
            health = fold(previous, run)
            es.index(index=CHECKPOINTS_INDEX, id=key, refresh="wait_for",
                     document={"@timestamp": iso(datetime.now(timezone.utc)), "job": health.to_fields()})
        except (ApiError, TransportError) as err:
            raise StoreError(f"recording job health {key} failed: {err}") from err


def job_health(es: Elasticsearch) -> list[JobHealth]:
    try:
        resp = es.search(index=CHECKPOINTS_INDEX, ignore_unavailable=True, size=MAX_HEALTH_DOCUMENTS,
                         query={"bool": {"filter": [{"terms": {"job.family": list(FAMILIES)}}]}},
                         sort=[{"job.model": "asc"}, {"job.family": "asc"}])
    except (ApiError, TransportError) as err:
        raise StoreError(f"reading job health failed: {err}") from err
    return [JobHealth.from_fields(hit["_source"]["job"]) for hit in resp.body["hits"]["hits"]]


def _get(es: Elasticsearch, key: str) -> JobHealth | None:
    try:
        resp = es.get(index=CHECKPOINTS_INDEX, id=key)
    except ApiError as err:
        if err.meta.status == 404:
            return None
        raise
    return JobHealth.from_fields(resp.body["_source"]["job"])
