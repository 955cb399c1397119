"""SQL over the catalog for analysts: DuckDB on the tables' current snapshots.

Only the tables a query mentions are read, each from one snapshot, so a query
sees a consistent state of each table even while a run commits.
"""

from __future__ import annotations

import re

import duckdb
import pyarrow as pa
from pyiceberg.catalog.sql import SqlCatalog

from catalog.iceberg import read
from catalog.schema import TABLES


class QueryError(ValueError):
    pass


def sql(catalog: SqlCatalog, query: str) -> pa.Table:
    if not query.strip():
        raise QueryError("the query is empty")
    words = set(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", query.lower()))
    connection = duckdb.connect()
    for name in sorted(words & set(TABLES)):
        connection.register(name, read(catalog, name))
    try:
        result = connection.sql(query)
        return result.to_arrow_table() if result is not None else pa.table({})
    except duckdb.Error as exc:
        tables = ", ".join(TABLES)
        raise QueryError(f"{exc}\n(the catalog's tables are: {tables})") from exc
    finally:
        connection.close()
