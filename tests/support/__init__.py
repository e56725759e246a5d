"""Test helpers shared across areas (the Elasticsearch API type check lives in :mod:`tests.support.estypes`)."""
