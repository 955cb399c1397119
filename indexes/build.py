"""Building a search index from one catalog snapshot of an embedding space."""

from __future__ import annotations

import datetime as dt
import io

import fsspec
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from pyiceberg.catalog.sql import SqlCatalog
from pyiceberg.expressions import EqualTo

from actors.storage import write_atomic
from catalog.iceberg import read, table
from catalog.settings import Settings
from indexes.faiss_backend import load_faiss
from indexes.store import IndexVersion, folder_uri, publish


def snapshot_vectors(catalog: SqlCatalog, space: str, snapshot_id: int) -> tuple[pa.Table, np.ndarray]:
    """The shot ids and L2-normalised vectors of a space, as of a snapshot."""
    rows = read(
        catalog,
        "embeddings",
        columns=("shot_id", "model", "dim", "vector"),
        row_filter=EqualTo("space", space),
        snapshot_id=snapshot_id,
    )
    if rows.num_rows == 0:
        return rows, np.zeros((0, 0), np.float32)
    dim = int(rows["dim"][0].as_py())
    flat = rows["vector"].combine_chunks().flatten().to_numpy(zero_copy_only=False)
    vectors = flat.reshape(rows.num_rows, dim).astype(np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return rows, np.ascontiguousarray(vectors / np.maximum(norms, 1e-12))


def build_index(catalog: SqlCatalog, settings: Settings, *, space: str = "visual") -> IndexVersion | None:
    """Index the space's vectors in the current snapshot and make it the one queries use.
    None when the catalog has no vectors in that space yet."""
    snapshot = table(catalog, "embeddings").current_snapshot()
    if snapshot is None:
        return None
    rows, vectors = snapshot_vectors(catalog, space, snapshot.snapshot_id)
    if not len(vectors):
        return None
    faiss = load_faiss()
    index = faiss.IndexFlatIP(vectors.shape[1])
    index.add(vectors)
    version = IndexVersion(
        space=space,
        snapshot_id=snapshot.snapshot_id,
        count=index.ntotal,
        dim=vectors.shape[1],
        kind="flat-ip",
        model=rows["model"][0].as_py(),
        built_at=dt.datetime.now(dt.UTC).isoformat(),
    )
    folder = folder_uri(settings, version)
    options = settings.storage_options()
    ids = io.BytesIO()
    pq.write_table(rows.select(["shot_id"]), ids)
    write_atomic(f"{folder}/ids.parquet", ids.getvalue(), options)
    write_atomic(f"{folder}/index.faiss", faiss.serialize_index(index).tobytes(), options)
    publish(settings, version)
    return version


def read_index_files(settings: Settings, version: IndexVersion) -> tuple[object, list[str]]:
    """The FAISS index (memory-mapped when it is a local file) and its shot ids."""
    faiss = load_faiss()
    folder = folder_uri(settings, version)
    options = settings.storage_options()
    if settings.home_is_local:
        index = faiss.read_index(f"{folder}/index.faiss", faiss.IO_FLAG_MMAP | faiss.IO_FLAG_READ_ONLY)
    else:
        with fsspec.open(f"{folder}/index.faiss", "rb", **options) as handle:
            index = faiss.deserialize_index(np.frombuffer(handle.read(), dtype=np.uint8))
    with fsspec.open(f"{folder}/ids.parquet", "rb", **options) as handle:
        shot_ids = pq.read_table(handle)["shot_id"].to_pylist()
    return index, shot_ids
