"""Shots read back from the catalog, for a run that re-describes shots without segmenting.

Re-tuning one keyframe model should cost that model's time, not a new decode
of every file: such a run's plan fans each asset out to the shots the catalog
already holds for it, with their keyframe JPEGs read back from where segment
wrote them, and the shot stages go on from there as if segment had just run.
"""

from __future__ import annotations

from typing import Any

import fsspec
import pyarrow as pa
import pyarrow.compute as pc
from pyiceberg.catalog.sql import SqlCatalog
from pyiceberg.expressions import In

from catalog.iceberg import read
from catalog.schema import ASSET_PROBE, ASSET_REF, KEYFRAME_ONLY, SEGMENT_OUTPUT, SHOT
from jobs.plan import ASSET_ROWS, carry

SHOT_COLUMNS = [f.name for f in SHOT if f.name not in ("keyframe_jpeg", *KEYFRAME_ONLY)]
KEYFRAME_COLUMNS = ("keyframe_index", "keyframe_s", "keyframe_frame", "keyframe_uri")


def catalog_shots(catalog: SqlCatalog, asset_ids: list[str]) -> pa.Table:
    """The catalog's shots of these assets, a row per keyframe (a long take has several), each
    with its asset's technical columns. A shot the `keyframes` table does not list (catalogued
    before it existed) is one row, with the keyframe its `shots` row names."""
    wanted = In(term="asset_id", literals=asset_ids)
    shots = read(catalog, "shots", columns=("asset_id", *SHOT_COLUMNS), row_filter=wanted)
    keyframes = read(catalog, "keyframes", columns=("shot_id", *KEYFRAME_COLUMNS), row_filter=wanted)
    listed = keyframes.rename_columns(["shot_id", *(f"listed_{name}" for name in KEYFRAME_COLUMNS)])
    shots = shots.join(listed, "shot_id", join_type="left outer")
    for name in ("keyframe_frame", "keyframe_uri"):
        shots = shots.set_column(
            shots.column_names.index(name), name, pc.coalesce(shots[f"listed_{name}"], shots[name])
        )
    index = pc.cast(pc.fill_null(shots["listed_keyframe_index"], 0), pa.int32())
    shots = shots.append_column("keyframe_index", index).append_column(
        "keyframe_s", shots["listed_keyframe_s"]
    )
    shots = shots.drop_columns([f"listed_{name}" for name in KEYFRAME_COLUMNS])
    shots = shots.sort_by(
        [("asset_id", "ascending"), ("shot_index", "ascending"), ("keyframe_index", "ascending")]
    )
    assets = read(catalog, "assets", columns=("asset_id", *ASSET_PROBE.names), row_filter=wanted)
    return shots.join(assets, "asset_id", join_type="left outer")


class CatalogShots:
    """Fans asset rows out to their catalog shots (`SEGMENT_OUTPUT` columns, keyframes
    included); an asset the catalog has no shots of keeps one row with null shot columns."""

    def __init__(self, shots: pa.Table, storage_options: dict[str, Any] | None = None) -> None:
        self.shots = shots
        self.storage_options = dict(storage_options or {})

    def __call__(self, batch: pa.Table) -> pa.Table:
        parts = []
        for asset in batch.select(ASSET_REF.names).to_pylist():
            rows = self.shots.filter(pc.equal(self.shots["asset_id"], asset["asset_id"]))
            if rows.num_rows:
                keyframes = [self._keyframe(uri) for uri in rows["keyframe_uri"].to_pylist()]
                rows = rows.append_column("keyframe_jpeg", pa.array(keyframes, pa.binary()))
                for name in ("uri", "size_bytes"):
                    rows = rows.append_column(name, pa.array([asset[name]] * rows.num_rows))
                parts.append(_shaped(rows.to_pylist()))
            else:
                parts.append(_shaped([{**asset, "status": "ok"}]))
        return carry(batch.drop_columns([ASSET_ROWS]), pa.concat_tables(parts))

    def _keyframe(self, uri: str | None) -> bytes | None:
        """The keyframe's JPEG; None where it is gone (the keyframe stages then give nulls)."""
        if not uri:
            return None
        try:
            with fsspec.open(uri, "rb", **self.storage_options) as handle:
                return handle.read()
        except OSError:
            return None


def _shaped(rows: list[dict[str, Any]]) -> pa.Table:
    shaped = [{f.name: row.get(f.name) for f in SEGMENT_OUTPUT} for row in rows]
    return pa.Table.from_pylist(shaped, SEGMENT_OUTPUT)
