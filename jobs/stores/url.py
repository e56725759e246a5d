"""``open_store(url)``: ``duckdb:///path/to/file.duckdb`` or ``http(s)://host:9200``."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlparse

from mlmon.stores.base import Store

DEFAULT_STORE_URL = "duckdb:///mlmon.duckdb"


def open_store(url: str, **es_options: Any) -> Store:
    """The store at ``url``. ``duckdb:///rel/path`` is relative, ``duckdb:////abs/path`` absolute.

    ``es_options`` go to :func:`mlmon.es_client.connect` (credentials, CA file, timeouts).
    """
    parsed = urlparse(url)
    if parsed.scheme == "duckdb":
        path = url[len("duckdb://"):]
        path = path[1:] if path.startswith("/") else path
        if not path:
            raise ValueError(f"{url!r}: expected duckdb:///path/to/file.duckdb")
        from mlmon.stores.duckdb_store import DuckDBStore

        return DuckDBStore(path)
    if parsed.scheme in ("http", "https"):
        if not parsed.hostname:
            raise ValueError(f"{url!r}: expected https://host:9200")
        from mlmon.es_client import connect
        from mlmon.stores.es_store import ElasticsearchStore

        return ElasticsearchStore(connect(url, **es_options))
    raise ValueError(f"unsupported store URL {url!r}: use duckdb:///path or https://host:9200")
