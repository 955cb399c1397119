"""Shaping what the stages produced into the catalog's tables.

Stages emit one wide row per shot (its asset's columns repeated, a failed
asset as a single row); the catalog keeps one table per kind of fact.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from catalog.schema import ASSET_PROBE, ASSET_REF, ASSETS, EMBEDDINGS, SHOTS, TAGS


def catalog_rows(described: pa.Table, *, run_id: str, pipeline_version: str) -> dict[str, pa.Table]:
    """Rows for every table, each stamped with the run and pipeline version."""
    stamp = {"run_id": run_id, "pipeline_version": pipeline_version}
    shots = described.filter(pc.is_valid(described["shot_id"]))
    tables = {"assets": _assets(described, stamp), "shots": _with(shots, SHOTS, stamp)}
    if "visual_embedding" in described.column_names:
        tables["tags"] = _imagenet_tags(shots, stamp)
        tables["embeddings"] = _visual_embeddings(shots, stamp)
    return tables


def failed_assets(failures: list[dict], *, run_id: str, pipeline_version: str) -> pa.Table:
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


def _with(rows: pa.Table, schema: pa.Schema, stamp: dict[str, str]) -> pa.Table:
    for name, value in stamp.items():
        rows = rows.append_column(name, pa.array([value] * rows.num_rows, pa.string()))
    return rows.select(schema.names).cast(schema)


def _assets(described: pa.Table, stamp: dict[str, str]) -> pa.Table:
    columns = [f.name for f in ASSET_REF] + [f.name for f in ASSET_PROBE]
    first: dict[str, dict] = {}
    counts: dict[str, int] = {}
    for row, shot in zip(
        described.select(columns).to_pylist(), described["shot_id"].to_pylist(), strict=True
    ):
        first.setdefault(row["asset_id"], row)
        counts[row["asset_id"]] = counts.get(row["asset_id"], 0) + (shot is not None)
    now = dt.datetime.now(dt.UTC)
    rows = [{**row, "shot_count": counts[aid], "processed_at": now, **stamp} for aid, row in first.items()]
    return pa.Table.from_pylist(rows, schema=ASSETS)


def _imagenet_tags(shots: pa.Table, stamp: dict[str, str]) -> pa.Table:
    has = shots.filter(pc.is_valid(shots["tag_labels"]))
    labels = has["tag_labels"].combine_chunks()
    parents = pc.list_parent_indices(labels)
    n = len(parents)
    ranks = np.arange(n) - labels.offsets.to_numpy()[parents.to_numpy()] + 1
    table = pa.table(
        {
            "shot_id": pc.take(has["shot_id"], parents),
            "asset_id": pc.take(has["asset_id"], parents),
            "kind": pa.array(["imagenet"] * n, pa.string()),
            "label": pc.list_flatten(labels),
            "score": pc.list_flatten(has["tag_scores"].combine_chunks()),
            "rank": pa.array(ranks, pa.int32()),
            "box": pa.nulls(n, pa.list_(pa.float32())),
            "model": pc.take(has["visual_model"], parents),
        }
    )
    return _with(table, TAGS, stamp)


def _visual_embeddings(shots: pa.Table, stamp: dict[str, str]) -> pa.Table:
    has = shots.filter(pc.is_valid(shots["visual_embedding"]))
    vectors = has["visual_embedding"].combine_chunks()
    n = has.num_rows
    table = pa.table(
        {
            "shot_id": has["shot_id"],
            "asset_id": has["asset_id"],
            "space": pa.array(["visual"] * n, pa.string()),
            "model": has["visual_model"],
            "dim": pa.array([vectors.type.list_size] * n, pa.int32()),
            "vector": vectors.cast(pa.list_(pa.float32())),
        }
    )
    return _with(table, EMBEDDINGS, stamp)
