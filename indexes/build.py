"""Building a search index from one catalog snapshot of an embedding space.

The index type follows the space's size and the memory budget
(`indexes.layout`); large IVF indexes are added in shards on Ray when Ray is
running (a job), in this process otherwise (the CLI). Search settings are
measured at build time (`indexes.construct.calibrate`), stored with the index
and applied whenever it is loaded.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import logging
import os
import sys
import tempfile
import uuid
from pathlib import Path
from typing import Any

import fsspec
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from pyiceberg.catalog.sql import SqlCatalog
from pyiceberg.expressions import EqualTo

from catalog.iceberg import read, visible
from catalog.schema import VISUAL_SPACE
from catalog.settings import Settings
from catalog.storage import write_atomic
from indexes.construct import TARGET_RECALL, apply_search_params, build_in_process, calibrate
from indexes.faiss_backend import gpu_count, load_faiss
from indexes.layout import DEFAULT_MEMORY_BUDGET, IndexPlan, choose_layout
from indexes.sharded import build_sharded
from indexes.store import IndexVersion, folder_uri, publish, seal, sealed

log = logging.getLogger(__name__)

SHARD_ROWS = 250_000
"""Vectors per Ray task in a sharded build; a space with fewer is built in one piece."""
CACHE = Path(tempfile.gettempdir()) / "archivist-indexes"
"""Where an index kept in an object store is copied to be memory-mapped."""


def snapshot_vectors(catalog: SqlCatalog, space: str, snapshot_id: int) -> tuple[pa.Table, np.ndarray]:
    """The shot ids (with the keyframe each vector is of) and L2-normalised vectors of a space,
    as of a snapshot."""
    rows = read(
        catalog,
        "embeddings",
        columns=("shot_id", "keyframe_index", "model", "dim", "vector"),
        row_filter=EqualTo(term="space", value=space),
        snapshot_id=snapshot_id,
    )
    if rows.num_rows == 0:
        return rows, np.zeros((0, 0), np.float32)
    dim = int(rows["dim"][0].as_py())
    flat = rows["vector"].combine_chunks().flatten().to_numpy(zero_copy_only=False)
    vectors = flat.reshape(rows.num_rows, dim).astype(np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return rows, np.ascontiguousarray(vectors / np.maximum(norms, 1e-12))


def build_index(
    catalog: SqlCatalog,
    settings: Settings,
    *,
    space: str = VISUAL_SPACE,
    memory_budget: int = DEFAULT_MEMORY_BUDGET,
    shard_rows: int = SHARD_ROWS,
) -> IndexVersion | None:
    """Index the space's vectors in the current snapshot and make it the one queries use.
    None when the catalog has no vectors in that space yet.

    `memory_budget` bounds what the loaded index keeps resident (see `indexes.layout`)."""
    snapshot = visible(catalog, "embeddings")
    if snapshot is None:
        return None
    rows, vectors = snapshot_vectors(catalog, space, snapshot.snapshot_id)
    if not len(vectors):
        return None
    gpu = gpu_count(load_faiss()) > 0
    plan = choose_layout(len(vectors), vectors.shape[1], memory_budget=memory_budget, gpu=gpu)
    done = sealed(settings, space, snapshot.snapshot_id, plan.factory)
    if done is not None:
        publish(settings, done)
        return done
    log.info(
        "indexing %d %s vectors of %d dimensions: %s", len(vectors), space, vectors.shape[1], plan.factory
    )
    index = build_vectors(plan, vectors, shard_rows=shard_rows, gpu=gpu)
    params, recall = calibrate(index, vectors, plan)
    if recall < TARGET_RECALL:
        log.warning(
            "the %s index finds only %.3f of the 10 nearest neighbours at its most thorough settings (%s)",
            space,
            recall,
            params,
        )
    version = IndexVersion(
        space=space,
        snapshot_id=snapshot.snapshot_id,
        count=index.ntotal,
        dim=vectors.shape[1],
        kind=plan.kind,
        model=rows["model"][0].as_py(),
        built_at=dt.datetime.now(dt.UTC).isoformat(),
        factory=plan.factory,
        search_params=params,
        recall=round(recall, 4),
        resident_bytes=plan.resident_bytes,
    )
    write_index_files(settings, version, index, rows.select(["shot_id", "keyframe_index"]))
    publish(settings, version)
    return version


def build_vectors(
    plan: IndexPlan, vectors: np.ndarray, *, shard_rows: int = SHARD_ROWS, gpu: bool = False
) -> Any:
    """The plan's index over the vectors: in shards on Ray when the plan allows it, the
    space is larger than one shard and Ray is running; in this process otherwise."""
    if plan.shardable and len(vectors) > shard_rows and _ray_running():
        return build_sharded(plan, vectors, shard_rows=shard_rows, gpu=gpu)
    return build_in_process(plan, vectors, gpu=gpu)


def _ray_running() -> bool:
    # Not imported means not running; importing Ray just to ask costs a second.
    ray = sys.modules.get("ray")
    return ray is not None and ray.is_initialized()


def write_index_files(settings: Settings, version: IndexVersion, index: Any, shot_ids: pa.Table) -> None:
    """The version's folder, sealed last so that a half-written folder is never taken as built.
    `shot_ids` names each vector's shot (and, as `keyframe_index`, its keyframe) in index order."""
    folder = folder_uri(settings, version)
    options = settings.storage_options()
    ids = io.BytesIO()
    pq.write_table(shot_ids, ids)
    write_atomic(f"{folder}/ids.parquet", ids.getvalue(), options)
    if settings.home_is_local:  # FAISS writes the file itself: no copy of the index in memory
        part = f"{folder}/index.faiss.{uuid.uuid4().hex}.part"
        load_faiss().write_index(index, part)
        with open(part, "rb") as written:
            os.fsync(written.fileno())
        os.replace(part, f"{folder}/index.faiss")
    else:
        write_atomic(f"{folder}/index.faiss", load_faiss().serialize_index(index).tobytes(), options)
    seal(settings, version)


def read_index_files(settings: Settings, version: IndexVersion) -> tuple[Any, pa.Table]:
    """The FAISS index, memory-mapped and with its search settings applied, and whose each
    vector is (`shot_id`, `keyframe_index`: 0 in indexes built before long takes had more).

    Memory-mapping (`IO_FLAG_MMAP_IFC`) covers the flat vectors of every type here
    (a flat index, HNSW's storage and graph, the re-ranking vectors of IVF-PQ);
    fast-scan inverted lists are read into memory. An index in an object store is
    first copied to a local cache, since only a local file can be mapped."""
    faiss = load_faiss()
    folder = folder_uri(settings, version)
    options = settings.storage_options()
    path = f"{folder}/index.faiss"
    if not settings.home_is_local:
        path = _cached(path, version, options)
    index = faiss.read_index(path, faiss.IO_FLAG_MMAP_IFC | faiss.IO_FLAG_READ_ONLY)
    apply_search_params(index, version.search_params)
    with fsspec.open(f"{folder}/ids.parquet", "rb", **options) as handle:
        ids = pq.read_table(handle)
    if "keyframe_index" not in ids.column_names:
        ids = ids.append_column("keyframe_index", pa.array([0] * ids.num_rows, pa.int32()))
    keyframes = pc.cast(pc.fill_null(ids["keyframe_index"], 0), pa.int32())
    return index, pa.table({"shot_id": ids["shot_id"], "keyframe_index": keyframes})


def _cached(uri: str, version: IndexVersion, options: dict[str, Any]) -> str:
    """A local copy of a remote index file; older copies of the space are dropped (a
    reader that still maps one keeps its pages until it closes)."""
    folder = CACHE / version.space
    target = folder / f"{hashlib.sha256(uri.encode()).hexdigest()[:24]}.faiss"
    if not target.exists():
        folder.mkdir(parents=True, exist_ok=True)
        part = folder / f"{target.name}.{uuid.uuid4().hex}.part"
        fs, path = fsspec.core.url_to_fs(uri, **options)
        fs.get_file(path, str(part))
        os.replace(part, target)
        for old in folder.glob("*.faiss"):
            if old != target:
                old.unlink(missing_ok=True)
    return str(target)
