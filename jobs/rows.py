"""Shaping what the stages produced into rows of the catalog's tables.

Stages emit one wide row per shot (its asset's columns repeated, a failed
asset as a single row); each stage's `catalog_rows` says which of its columns
become which rows. Here the tables several stages feed are put together: rows
of stages that own rows are concatenated, and columns that a stage owns in
another stage's rows (safety's score on a shot) are joined on by the row key.
A table whose row owner did not run stays partial (its key and the columns
this run owns), and the commit fills in the rest from the catalog.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from typing import Any

import pyarrow as pa

from actors.stage import Stage
from catalog.schema import ASSETS, ROW_KEYS, TABLES


def catalog_rows(
    rows: pa.Table, stages: list[type[Stage]], *, run_id: str, pipeline_version: str
) -> dict[str, pa.Table]:
    """Rows for every table these stages own, each stamped with the run and pipeline version."""
    whole: dict[str, list[pa.Table]] = defaultdict(list)
    partial: dict[str, list[pa.Table]] = defaultdict(list)
    for stage in stages:
        for name, table in stage.catalog_rows(rows).items():
            by_column = any(o.table == name and o.columns is not None for o in stage.owns)
            (partial if by_column else whole)[name].append(table)
    stamp = {"run_id": run_id, "pipeline_version": pipeline_version}
    tables = {}
    for name in whole.keys() | partial.keys():
        if name in whole:
            merged = pa.concat_tables([conform(_stamped(t, stamp), TABLES[name]) for t in whole[name]])
            for part in partial.get(name, []):
                merged = join_columns(merged, part, ROW_KEYS[name])
            tables[name] = conform(merged, TABLES[name])
        else:
            parts = partial[name]
            merged = parts[0]
            for part in parts[1:]:
                merged = join_columns(merged, part, ROW_KEYS[name], keep_unmatched=True)
            tables[name] = _stamped(merged, stamp)
    return tables


def asset_outcomes(rows: pa.Table, tables: dict[str, pa.Table]) -> list[dict[str, Any]]:
    """How each asset of these rows came out (asset_id, uri, status, error): as its `assets`
    row says where segment ran, else failed where one of its outputs failed, else ok."""
    if "assets" in tables:
        return tables["assets"].select(["asset_id", "uri", "status", "error"]).to_pylist()
    errors: dict[str, str] = {}
    if "remasters" in tables:
        for output in tables["remasters"].select(["asset_id", "status", "error"]).to_pylist():
            if output["status"] == "failed":
                errors.setdefault(output["asset_id"], output["error"] or "an output failed")
    outcomes = {}
    for asset in rows.select(["asset_id", "uri"]).to_pylist():
        error = errors.get(asset["asset_id"])
        outcomes[asset["asset_id"]] = {**asset, "status": "failed" if error else "ok", "error": error}
    return list(outcomes.values())


def failed_assets(failures: list[dict[str, Any]], *, run_id: str, pipeline_version: str) -> pa.Table:
    """Asset rows for files that never reached a stage (unreadable, say)."""
    now = dt.datetime.now(dt.UTC)
    rows = [
        {
            **f,
            "status": "failed",
            "shot_count": 0,
            "processed_at": now,
            "run_id": run_id,
            "pipeline_version": pipeline_version,
        }
        for f in failures
    ]
    return pa.Table.from_pylist(rows, schema=ASSETS)


def conform(rows: pa.Table, schema: pa.Schema) -> pa.Table:
    """The rows in the table's schema, with nulls for the columns no stage fed."""
    columns = [
        rows[f.name] if f.name in rows.column_names else pa.nulls(rows.num_rows, f.type) for f in schema
    ]
    return pa.Table.from_arrays(columns, names=schema.names).cast(schema)


def join_columns(base: pa.Table, part: pa.Table, key: str, *, keep_unmatched: bool = False) -> pa.Table:
    """`base` with `part`'s columns (other than the key and asset id) matched on by `key`,
    replacing any `base` already had, in `base`'s order; rows of `part` that `base` lacks
    are added at the end when asked."""
    index = {k: i for i, k in enumerate(part[key].to_pylist())}
    keys = base[key].to_pylist()
    rows = pa.array([index.get(k) for k in keys], pa.int64())
    columns = [c for c in part.column_names if c not in (key, "asset_id")]
    joined = base.drop_columns([c for c in columns if c in base.column_names])
    for column in columns:
        joined = joined.append_column(part.schema.field(column), part[column].take(rows))
    if keep_unmatched:
        present = set(keys)
        extra = [i for k, i in index.items() if k not in present]
        if extra:
            joined = pa.concat_tables([joined, part.take(extra)], promote_options="default")
    return joined


def _stamped(rows: pa.Table, stamp: dict[str, str]) -> pa.Table:
    rows = rows.drop_columns([c for c in stamp if c in rows.column_names])
    for name, value in stamp.items():
        rows = rows.append_column(name, pa.array([value] * rows.num_rows, pa.string()))
    return rows
