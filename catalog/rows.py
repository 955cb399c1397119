"""Shaping a stage's columns into rows of the catalog's tables.

Stages carry their results as columns of shot rows (a list of detections, a
vector, a score); the catalog keeps one table per kind of fact. These are the
few shapes that conversion takes, used by each stage's `catalog_rows`, so a
stage states which of its columns become which rows and nothing more.

A long take reaches the stages as several rows of one shot, one per keyframe
(`keyframe_index` 0 is the shot's own). What is a fact of the shot (its row of
`shots`, its caption, faces and scores) comes from keyframe 0; what makes the
shot findable comes from every keyframe: a vector per keyframe, and the shot's
tags are what any of its keyframes shows, each label once at its best score.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from catalog.schema import EMBEDDINGS, SCORES, TAGS


def keyframe_rows(rows: pa.Table) -> pa.Table:
    """The rows that are a shot's keyframe, its own or a further one (a failed asset's row
    has no shot id)."""
    return rows.filter(pc.is_valid(rows["shot_id"]))


def shot_rows(rows: pa.Table) -> pa.Table:
    """One row per shot: its own keyframe's (rows made before long takes had more than one
    keyframe carry no `keyframe_index`)."""
    shots = keyframe_rows(rows)
    if "keyframe_index" not in shots.column_names:
        return shots
    index = shots["keyframe_index"]
    return shots.filter(pc.or_kleene(pc.is_null(index), pc.equal(index, 0)))


def columns(rows: pa.Table, names: list[str], schema: pa.Schema | None = None) -> pa.Table:
    """These columns of each shot's row."""
    table = shot_rows(rows).select(names)
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
    """`tags` rows from a list of detections (label, score, box) per keyframe."""
    has, items, parents = exploded(keyframe_rows(rows), column)
    n = len(parents)
    model = has[model_column].take(parents) if model_column else pa.nulls(n, pa.string())
    return best_per_label(
        pa.table(
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
        )
    ).cast(_without_provenance(TAGS))


def best_per_label(tags: pa.Table) -> pa.Table:
    """Each (shot, kind, label) once, from the keyframe that scored it best (the first, on a
    tie), so a label seen on several keyframes of a long take is one tag of the shot. Where
    nothing repeats, the rows come back as they were."""
    keys = list(
        zip(tags["shot_id"].to_pylist(), tags["kind"].to_pylist(), tags["label"].to_pylist(), strict=True)
    )
    if len(set(keys)) == len(keys):
        return tags
    scores = tags["score"].to_pylist()
    best: dict[tuple[str, str, str], int] = {}
    for row, key in enumerate(keys):
        kept = best.get(key)
        if kept is None or (scores[row] or 0.0) > (scores[kept] or 0.0):
            best[key] = row
    return tags.take(pa.array(sorted(best.values()), pa.int64()))


def vector_rows(rows: pa.Table, column: str, space: str, model_column: str) -> pa.Table:
    """`embeddings` rows from a vector column, in the named space: one per keyframe."""
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
            "keyframe_index": keyframe_index(has),
        }
    ).cast(_without_provenance(EMBEDDINGS))


def score_rows(rows: pa.Table, column: str, metric: str, model_column: str) -> pa.Table:
    """`scores` rows from a column holding one number per shot (null where not measured)."""
    shots = shot_rows(rows)
    has = shots.filter(pc.is_valid(shots[column]))
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


def keyframe_index(rows: pa.Table) -> pa.Array:
    """Each row's keyframe (0, a shot's own, where rows made before long takes carry none)."""
    if "keyframe_index" in rows.column_names:
        return pc.fill_null(rows["keyframe_index"], 0).combine_chunks()
    return pa.array([0] * rows.num_rows, pa.int32())


def _without_provenance(schema: pa.Schema) -> pa.Schema:
    return pa.schema([f for f in schema if f.name not in ("run_id", "pipeline_version")])
