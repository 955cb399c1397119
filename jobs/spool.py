"""The spool: a run's results, asset by asset, on durable storage before the commit.

A run writes each finished asset's catalog rows to its spool and records the
asset as 'spooled'. The commit then adds everything spooled in one Iceberg
commit per table. A run killed half-way loses only the assets in flight: the
next run of the same pipeline version adopts what was spooled and
processes only the rest, so resuming is exact and no reader ever sees a
partial run.
"""

from __future__ import annotations

import io
import time
from collections import defaultdict
from collections.abc import Iterable, Iterator
from typing import Any

import fsspec
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from actors.stage import Stage
from catalog.rows import shot_rows
from catalog.settings import Settings
from catalog.state import StateStore
from catalog.storage import write_atomic
from jobs.plan import ASSET_ROWS, BUSY_PREFIX
from jobs.rows import asset_outcomes, catalog_rows

OUTCOMES = "_outcomes"
"""The spool file saying how each asset came out, from which the commit settles its state."""
OUTCOME = pa.schema(
    [
        pa.field("asset_id", pa.string()),
        pa.field("uri", pa.string()),
        pa.field("status", pa.string()),
        pa.field("error", pa.string()),
    ]
)


class AssetAssembler:
    """Gathers an asset's rows from the plan's output batches until all have arrived
    (the segment stage says how many in `ASSET_ROWS`)."""

    def __init__(self) -> None:
        self.pending: dict[str, list[pa.Table]] = defaultdict(list)
        self.arrived: dict[str, int] = defaultdict(int)

    def add(self, batch: pa.Table) -> Iterator[pa.Table]:
        """The assets this batch completes, each as one table."""
        for asset_id in pc.unique(batch["asset_id"]).to_pylist():
            rows = batch.filter(pc.equal(batch["asset_id"], asset_id))
            self.pending[asset_id].append(rows)
            self.arrived[asset_id] += rows.num_rows
            if self.arrived[asset_id] == rows[ASSET_ROWS][0].as_py():
                del self.arrived[asset_id]
                yield pa.concat_tables(self.pending.pop(asset_id))

    def incomplete(self) -> list[str]:
        return sorted(self.pending)


class Spooler:
    """Writes finished assets' catalog rows to the run's spool in chunks."""

    def __init__(
        self,
        settings: Settings,
        state: StateStore,
        *,
        run_id: str,
        pipeline_version: str,
        stages: list[type[Stage]],
        flush_assets: int = 16,
        flush_seconds: float = 30.0,
    ) -> None:
        self.settings, self.state, self.stages = settings, state, stages
        self.run_id, self.pipeline_version = run_id, pipeline_version
        self.flush_assets, self.flush_seconds = flush_assets, flush_seconds
        self.buffer: list[pa.Table] = []
        self.assets: set[str] = set()
        """Every asset handed to the spooler, written or still in the buffer."""
        self.chunks = 0
        self.last_flush = time.monotonic()
        self.busy: dict[str, float] = defaultdict(float)
        self.shots = 0
        self.failed = 0
        self.outputs_failed = 0

    def add(self, described: pa.Table) -> None:
        """One finished asset's rows as the stages produced them."""
        for name in described.column_names:
            if name.startswith(BUSY_PREFIX):
                self.busy[name.removeprefix(BUSY_PREFIX)] += float(pc.sum(described[name]).as_py() or 0.0)
        if "shot_id" in described.column_names:
            self.shots += shot_rows(described).num_rows
        self.assets.update(described["asset_id"].to_pylist())
        self.buffer.append(described)
        if len(self.buffer) >= self.flush_assets or time.monotonic() - self.last_flush > self.flush_seconds:
            self.flush()

    def add_failed(self, assets: pa.Table) -> None:
        """Asset rows, in catalog shape, of files that failed before any stage (unreadable)."""
        self._write({"assets": assets}, assets.select(["asset_id", "uri", "status", "error"]).to_pylist())

    def flush(self) -> None:
        if self.buffer:
            described = pa.concat_tables(self.buffer, promote_options="default")
            self.buffer = []
            tables = catalog_rows(
                described, self.stages, run_id=self.run_id, pipeline_version=self.pipeline_version
            )
            self._write(tables, asset_outcomes(described, tables))
        self.last_flush = time.monotonic()

    def _write(self, tables: dict[str, pa.Table], outcomes: list[dict[str, Any]]) -> None:
        chunk = self.settings.location("spool", self.run_id, f"{self.chunks:05d}")
        self.chunks += 1
        options = self.settings.storage_options()
        files = {**tables, OUTCOMES: pa.Table.from_pylist(outcomes, schema=OUTCOME)}
        for name, rows in files.items():
            buffer = io.BytesIO()
            pq.write_table(rows, buffer)
            write_atomic(f"{chunk}/{name}.parquet", buffer.getvalue(), options)
        self.failed += sum(a["status"] == "failed" for a in outcomes)
        if "remasters" in tables:
            self.outputs_failed += int(pc.sum(pc.equal(tables["remasters"]["status"], "failed")).as_py() or 0)
        self.state.spool(self.run_id, self.pipeline_version, outcomes, chunk)


def read_spooled(settings: Settings, spooled: dict[str, str]) -> dict[str, pa.Table]:
    """Every table's spooled rows for these assets (asset_id → chunk), ready to commit."""
    options = settings.storage_options()
    wanted = pa.array(sorted(spooled), pa.string())
    parts: dict[str, list[pa.Table]] = defaultdict(list)
    for chunk in sorted(set(spooled.values())):
        fs, root = fsspec.core.url_to_fs(chunk, **options)
        for path in sorted(fs.glob(f"{root}/*.parquet")):
            with fs.open(path, "rb") as handle:
                rows = pq.read_table(handle)
            name = path.rsplit("/", 1)[-1].removesuffix(".parquet")
            parts[name].append(rows.filter(pc.is_in(rows["asset_id"], wanted)))
    return {name: pa.concat_tables(tables, promote_options="default") for name, tables in parts.items()}


def discard(settings: Settings, chunks: Iterable[str]) -> None:
    """Remove committed spool chunks; what cannot be removed is only wasted space."""
    options = settings.storage_options()
    for chunk in set(chunks):
        fs, root = fsspec.core.url_to_fs(chunk, **options)
        try:
            fs.rm(root, recursive=True)
        except FileNotFoundError:
            continue
