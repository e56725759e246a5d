"""Stores: the only code that knows Elasticsearch from DuckDB."""
