"""``open_store(url)``: ``duckdb:///path/to/file.duckdb`` or ``http(s)://host:9200``."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlparse

from mlmon.stores.protocols import Store

DEFAULT_STORE_URL = "duckdb:///mlmon.duckdb"


def duckdb_path(url: str) -> str:
    """The file of a ``duckdb:`` URL, as SQLAlchemy reads database URLs: ``duckdb:///rel/path``
    is relative to the working directory, ``duckdb:////abs/path`` absolute (``duckdb://rel/path``
    is taken as relative too). Every command reads store URLs through this one function."""
    if not url.startswith("duckdb://"):
        raise ValueError(f"{url!r} is not a duckdb:// URL")
    path = url[len("duckdb://"):]
    path = path[1:] if path.startswith("/") else path
    if not path:
        raise ValueError(f"{url!r}: expected duckdb:///path/to/file.duckdb (relative) or "
                         f"duckdb:////abs/path/file.duckdb (absolute)")
    return path


def open_store(url: str, **es_options: Any) -> Store:
    """The store at ``url``: a ``duckdb:`` URL (see :func:`duckdb_path`) or ``http(s)://host:9200``.

    ``es_options`` go to :func:`mlmon.stores.elasticsearch.client.connect` (credentials, CA file, timeouts).
    """
    parsed = urlparse(url)
    if parsed.scheme == "duckdb":
        path = duckdb_path(url)
        from mlmon.stores.duckdb.store import DuckDBStore

        return DuckDBStore(path)
    if parsed.scheme in ("http", "https"):
        if not parsed.hostname:
            raise ValueError(f"{url!r}: expected https://host:9200")
        from mlmon.stores.elasticsearch.client import connect
        from mlmon.stores.elasticsearch.store import ElasticsearchStore

        return ElasticsearchStore(connect(url, **es_options))
    raise ValueError(f"unsupported store URL {url!r}: use duckdb:///path or https://host:9200")
