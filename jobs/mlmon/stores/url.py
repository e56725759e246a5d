"""``open_store(url)``: ``duckdb:///path/to/file.duckdb`` or ``http(s)://host:9200``.

A bad URL is a :class:`StoreURLError` (a :class:`StoreError`), so every command reports it as
one line. A plain path ending in ``.duckdb`` (``mlmon.duckdb``, ``/var/lib/mlmon/m.duckdb``) is
taken as that file, as ``mlmon ingest`` always did; any other string without a scheme is refused,
so ``--store localhost`` never becomes a new file named ``localhost``.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlparse

from mlmon.stores.protocols import Store, StoreError

DEFAULT_STORE_URL = "duckdb:///mlmon.duckdb"
_FORMS = "duckdb:///relative/path.duckdb, duckdb:////absolute/path.duckdb or https://host:9200"


class StoreURLError(StoreError, ValueError):
    """A store URL mlmon cannot read (a ValueError too, for callers that caught ValueError before)."""


def duckdb_path(url: str) -> str:
    """The file of a ``duckdb:`` URL, as SQLAlchemy reads database URLs: ``duckdb:///rel/path``
    is relative to the working directory, ``duckdb:////abs/path`` absolute (``duckdb://rel/path``
    is taken as relative too). Every command reads store URLs through this one function."""
    if not url.startswith("duckdb://"):
        raise StoreURLError(f"{url!r} is not a duckdb:// URL: expected {_FORMS}")
    path = url[len("duckdb://"):]
    path = path[1:] if path.startswith("/") else path
    if not path:
        raise StoreURLError(f"store URL {url!r} names no file: expected duckdb:///path/to/file.duckdb (relative) "
                            f"or duckdb:////abs/path/file.duckdb (absolute)")
    return path


def duckdb_file(url: str) -> str | None:
    """The DuckDB file of ``url`` (a ``duckdb:`` URL or a plain ``*.duckdb`` path), None for an
    Elasticsearch URL; :class:`StoreURLError` for anything else. Opens nothing."""
    if "://" not in url and url.endswith(".duckdb"):
        return url
    parsed = urlparse(url)
    if parsed.scheme == "duckdb":
        return duckdb_path(url)
    if parsed.scheme in ("http", "https") and "://" in url:
        if not parsed.hostname:
            raise StoreURLError(f"store URL {url!r} names no host: expected {_FORMS}")
        return None
    if "://" not in url:
        raise StoreURLError(f"store {url!r} is not a store URL nor a .duckdb file: expected {_FORMS}")
    raise StoreURLError(f"unsupported store URL {url!r} (scheme {parsed.scheme!r}): expected {_FORMS}")


def open_store(url: str, *, read_only: bool = False, **es_options: Any) -> Store:
    """The store at ``url``: a ``duckdb:`` URL (see :func:`duckdb_path`), a ``*.duckdb`` path or ``http(s)://host:9200``.

    ``read_only``: for commands that only read. A DuckDB file is then never created (a missing
    one is a :class:`~mlmon.stores.duckdb.store.StoreNotFound` naming the path) and never changed;
    Elasticsearch is opened as usual (reads create nothing there).
    ``es_options`` go to :func:`mlmon.stores.elasticsearch.client.connect` (credentials, CA file, timeouts).
    """
    path = duckdb_file(url)
    if path is not None:
        from mlmon.stores.duckdb.store import DuckDBStore

        return DuckDBStore(path, read_only=read_only)
    from mlmon.stores.elasticsearch.client import connect
    from mlmon.stores.elasticsearch.store import ElasticsearchStore

    return ElasticsearchStore(connect(url, **es_options))
