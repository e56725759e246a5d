"""Test helpers shared across areas (the Elasticsearch API type check lives in :mod:`tests.support.estypes`)."""

from pathlib import Path

#: The repository checkout the tests run from (assets, docs, docker files as committed).
REPO = Path(__file__).resolve().parents[2]
