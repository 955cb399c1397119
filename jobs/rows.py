"""Shaping what the stages produced into the catalog's tables.

Stages emit one wide row per shot (its asset's columns repeated, a failed
asset as a single row); the catalog keeps one table per kind of fact. Columns
of a stage the spec left out are simply absent, and so are its rows.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from actors.speech import asset_segments
from actors.transcribe import link_segments_to_shots
from catalog.schema import (
    ASSET_PROBE,
    ASSET_REF,
    ASSETS,
    CAPTIONS,
    EMBEDDINGS,
    FACES,
    REMASTERS,
    SHOTS,
    TAGS,
    TRANSCRIPTS,
)

# (list column of detections, tag kind, column naming the model)
DETECTION_TAGS = (
    ("objects", "object", "objects_model"),
    ("texts", "text", "text_model"),
    ("technical", "technical", None),
)
# (vector column, embedding space, column naming the model)
VECTORS = (
    ("visual_embedding", "visual", "visual_model"),
    ("text_embedding", "text", "text_embedding_model"),
    ("concept_embedding", "concept", "text_embedding_model"),
)


def catalog_rows(described: pa.Table, *, run_id: str, pipeline_version: str) -> dict[str, pa.Table]:
    """Rows for every table the stages fed, each stamped with the run and pipeline version."""
    stamp = {"run_id": run_id, "pipeline_version": pipeline_version}
    shots = described.filter(pc.is_valid(described["shot_id"]))
    tables = {"assets": _assets(described, stamp), "shots": _shots(shots, stamp)}
    tags = [t for t in (_imagenet_tags(shots), *(_detections(shots, *d) for d in DETECTION_TAGS)) if t]
    if tags:
        tables["tags"] = _with(pa.concat_tables(tags, promote_options="default"), TAGS, stamp)
    vectors = [t for t in (_vectors(shots, *v) for v in VECTORS) if t]
    if vectors:
        tables["embeddings"] = _with(pa.concat_tables(vectors, promote_options="default"), EMBEDDINGS, stamp)
    if "faces" in shots.column_names:
        tables["faces"] = _with(_faces(shots), FACES, stamp)
    if "caption" in shots.column_names:
        captioned = shots.filter(pc.is_valid(shots["caption"]))
        captions = captioned.select(["shot_id", "asset_id", "caption", "description"]).append_column(
            "method", captioned["caption_method"]
        )
        tables["captions"] = _with(captions, CAPTIONS, stamp)
    if "remasters" in described.column_names:
        tables["remasters"] = _with(_remasters(described), REMASTERS, stamp)
    if "speech" in described.column_names:
        tables["transcripts"] = _with(_transcripts(described, shots), TRANSCRIPTS, stamp)
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
    """The rows in the table's schema: stamped, and with nulls for columns no stage fed."""
    for name, value in stamp.items():
        rows = rows.append_column(name, pa.array([value] * rows.num_rows, pa.string()))
    columns = [
        rows[f.name] if f.name in rows.column_names else pa.nulls(rows.num_rows, f.type) for f in schema
    ]
    return pa.Table.from_arrays(columns, names=schema.names).cast(schema)


def _exploded(rows: pa.Table, column: str) -> tuple[pa.Table, pa.Array, np.ndarray]:
    """Rows that have items in a list column, the items flattened, and each item's parent row."""
    has = rows.filter(pc.is_valid(rows[column]))
    lists = has[column].combine_chunks()
    parents = pc.list_parent_indices(lists)
    return has, pc.list_flatten(lists), parents.to_numpy()


def _positions(lists: pa.Array, parents: np.ndarray) -> pa.Array:
    """Each flattened item's 1-based position in its own list."""
    return pa.array(np.arange(len(parents)) - lists.offsets.to_numpy()[parents] + 1, pa.int32())


def _imagenet_tags(shots: pa.Table) -> pa.Table | None:
    if "tag_labels" not in shots.column_names:
        return None
    has, labels, parents = _exploded(shots, "tag_labels")
    n = len(parents)
    return pa.table(
        {
            "shot_id": has["shot_id"].take(parents),
            "asset_id": has["asset_id"].take(parents),
            "kind": pa.array(["imagenet"] * n, pa.string()),
            "label": labels,
            "score": pc.list_flatten(has["tag_scores"].combine_chunks()),
            "rank": _positions(has["tag_labels"].combine_chunks(), parents),
            "model": has["visual_model"].take(parents),
        }
    )


def _detections(shots: pa.Table, column: str, kind: str, model_column: str | None) -> pa.Table | None:
    if column not in shots.column_names:
        return None
    has, items, parents = _exploded(shots, column)
    n = len(parents)
    model = has[model_column].take(parents) if model_column else pa.nulls(n, pa.string())
    return pa.table(
        {
            "shot_id": has["shot_id"].take(parents),
            "asset_id": has["asset_id"].take(parents),
            "kind": pa.array([kind] * n, pa.string()),
            "label": pc.struct_field(items, "label"),
            "score": pc.struct_field(items, "score"),
            "rank": _positions(has[column].combine_chunks(), parents),
            "box": pc.struct_field(items, "box"),
            "model": model,
        }
    )


def _vectors(shots: pa.Table, column: str, space: str, model_column: str) -> pa.Table | None:
    if column not in shots.column_names:
        return None
    has = shots.filter(pc.is_valid(shots[column]))
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
    )


def _faces(shots: pa.Table) -> pa.Table:
    has, faces, parents = _exploded(shots, "faces")
    columns = {
        "shot_id": has["shot_id"].take(parents),
        "asset_id": has["asset_id"].take(parents),
        "face_index": pc.subtract(_positions(has["faces"].combine_chunks(), parents), 1),
        "model": has["faces_model"].take(parents),
    }
    for field in faces.type:
        columns[field.name] = pc.struct_field(faces, field.name)
    return pa.table(columns)


def _shots(shots: pa.Table, stamp: dict[str, str]) -> pa.Table:
    if "phash" in shots.column_names:  # the same 64 bits, as Iceberg's signed long
        signed = pc.cast(shots["phash"], pa.int64(), safe=False)
        shots = shots.set_column(shots.schema.get_field_index("phash"), "phash", signed)
    return _with(shots, SHOTS, stamp)


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


def _transcripts(described: pa.Table, shots: pa.Table) -> pa.Table:
    """The speech segments of each asset (carried on its rows), with the shots they are said over."""
    segments = asset_segments(described)
    links = link_segments_to_shots(segments, shots.select(["asset_id", "shot_id", "start_s", "end_s"]))
    rows = [{**s, "shot_ids": links.get((s["asset_id"], s["segment_index"]), [])} for s in segments]
    names = [f.name for f in TRANSCRIPTS if f.name not in ("run_id", "pipeline_version")]
    return pa.Table.from_pylist(rows, schema=pa.schema([TRANSCRIPTS.field(n) for n in names]))


def _remasters(described: pa.Table) -> pa.Table:
    """Each asset's output rows, once (they are carried on every row of the asset)."""
    first: dict[str, int] = {}
    for row, asset_id in enumerate(described["asset_id"].to_pylist()):
        first.setdefault(asset_id, row)
    per_asset = described.take(pa.array(list(first.values()), pa.int64()))
    return pa.Table.from_struct_array(pc.list_flatten(per_asset["remasters"].combine_chunks()))
