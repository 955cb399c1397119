"""Shaping a stage's columns into rows of the catalog's tables.

Stages carry their results as columns of shot rows (a list of detections, a
vector, a score); the catalog keeps one table per kind of fact. These are the
few shapes that conversion takes, used by each stage's `catalog_rows`, so a
stage states which of its columns become which rows and nothing more.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from catalog.schema import EMBEDDINGS, SCORES, TAGS


def columns(rows: pa.Table, names: list[str], schema: pa.Schema | None = None) -> pa.Table:
    """These columns of the shots that have a shot id (a failed asset's row has none)."""
    shots = rows.filter(pc.is_valid(rows["shot_id"]))
    table = shots.select(names)
    return table if schema is None else table.cast(pa.schema([schema.field(n) for n in names]))


def exploded(rows: pa.Table, column: str) -> tuple[pa.Table, pa.Array, np.ndarray]:
    """Rows that have items in a list column, the items flattened, and each item's parent row."""
    has = rows.filter(pc.is_valid(rows[column]))
    lists = has[column].combine_chunks()
    parents = pc.list_parent_indices(lists)
    return has, pc.list_flatten(lists), parents.to_numpy()


def positions(lists: pa.Array, parents: np.ndarray) -> pa.Array:
    """Each flattened item's 1-based position in its own list."""
    return pa.array(np.arange(len(parents)) - lists.offsets.to_numpy()[parents] + 1, pa.int32())


def tag_rows(rows: pa.Table, column: str, kind: str, model_column: str | None) -> pa.Table:
    """`tags` rows from a list of detections (label, score, box) per shot."""
    has, items, parents = exploded(rows.filter(pc.is_valid(rows["shot_id"])), column)
    n = len(parents)
    model = has[model_column].take(parents) if model_column else pa.nulls(n, pa.string())
    return pa.table(
        {
            "shot_id": has["shot_id"].take(parents),
            "asset_id": has["asset_id"].take(parents),
            "kind": pa.array([kind] * n, pa.string()),
            "label": pc.struct_field(items, "label"),
            "score": pc.struct_field(items, "score"),
            "rank": positions(has[column].combine_chunks(), parents),
            "box": pc.struct_field(items, "box"),
            "model": model,
        }
    ).cast(_without_provenance(TAGS))


def vector_rows(rows: pa.Table, column: str, space: str, model_column: str) -> pa.Table:
    """`embeddings` rows from a vector column, in the named space."""
    has = rows.filter(pc.and_(pc.is_valid(rows["shot_id"]), pc.is_valid(rows[column])))
    vectors = has[column].combine_chunks().cast(pa.list_(pa.float32()))
    n = has.num_rows
    return pa.table(
        {
            "shot_id": has["shot_id"],
            "asset_id": has["asset_id"],
            "space": pa.array([space] * n, pa.string()),
            "model": has[model_column],
            "dim": pc.cast(pc.list_value_length(vectors), pa.int32()),
            "vector": vectors,
        }
    ).cast(_without_provenance(EMBEDDINGS))


def score_rows(rows: pa.Table, column: str, metric: str, model_column: str) -> pa.Table:
    """`scores` rows from a column holding one number per shot (null where not measured)."""
    has = rows.filter(pc.and_(pc.is_valid(rows["shot_id"]), pc.is_valid(rows[column])))
    return pa.table(
        {
            "shot_id": has["shot_id"],
            "asset_id": has["asset_id"],
            "metric": pa.array([metric] * has.num_rows, pa.string()),
            "value": pc.cast(has[column], pa.float32()),
            "model": has[model_column],
        }
    ).cast(_without_provenance(SCORES))


def first_per_asset(rows: pa.Table) -> pa.Table:
    """Each asset's first row (asset columns are carried on every row of the asset)."""
    first: dict[str, int] = {}
    for row, asset_id in enumerate(rows["asset_id"].to_pylist()):
        first.setdefault(asset_id, row)
    return rows.take(pa.array(list(first.values()), pa.int64()))


def _without_provenance(schema: pa.Schema) -> pa.Schema:
    return pa.schema([f for f in schema if f.name not in ("run_id", "pipeline_version")])
