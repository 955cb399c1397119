"""SQL over the catalog for analysts: DuckDB on the tables of one catalog version.

Only the tables a query mentions are read, all of them at one version (the latest, or
the one a run left or that stood at a time: `as_of`), so a query that joins shots with
tags sees one run's result whole, even while another run commits.
"""

from __future__ import annotations

import re

import duckdb
import pyarrow as pa
from pyiceberg.catalog.sql import SqlCatalog

from catalog.iceberg import read
from catalog.schema import TABLES
from catalog.versions import NoSuchVersionError, latest_version, version_as_of


class QueryError(ValueError):
    pass


def sql(catalog: SqlCatalog, query: str, *, as_of: str | None = None) -> pa.Table:
    """The query's result; `as_of`: a run id or an ISO time, for the catalog as it stood then."""
    if not query.strip():
        raise QueryError("the query is empty")
    try:
        version = version_as_of(catalog, as_of) if as_of else latest_version(catalog)
    except NoSuchVersionError as exc:
        raise QueryError(str(exc)) from None
    words = set(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", query.lower()))
    connection = duckdb.connect()
    for name in sorted(words & set(TABLES)):
        connection.register(name, read(catalog, name, at=version))
    try:
        result = connection.sql(query)
        return result.to_arrow_table() if result is not None else pa.table({})
    except duckdb.Error as exc:
        tables = ", ".join(TABLES)
        raise QueryError(f"{exc}\n(the catalog's tables are: {tables})") from exc
    finally:
        connection.close()
