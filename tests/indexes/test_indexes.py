"""Indexes: built from a snapshot, switched atomically, answering (through the query engine) with
catalog rows."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from catalog import schema
from catalog.iceberg import open_catalog, replace_assets
from catalog.settings import Settings
from indexes import faiss_backend
from indexes.build import build_index, read_index_files
from indexes.query import QueryEngine
from indexes.search import UnknownShotError
from indexes.store import IndexMissingError, current


def commit_shots(settings: Settings, asset_id: str, vectors: np.ndarray, run_id: str = "r1") -> list[str]:
    catalog = open_catalog(settings)
    ids = [schema.shot_id(asset_id, i, i + 1) for i in range(len(vectors))]
    shots = pa.Table.from_pylist(
        [
            {
                "asset_id": asset_id,
                "shot_id": s,
                "shot_index": i,
                "start_frame": i,
                "end_frame": i + 1,
                "start_s": float(i),
                "end_s": i + 1.0,
                "run_id": run_id,
                "pipeline_version": "p1",
            }
            for i, s in enumerate(ids)
        ],
        schema=schema.SHOTS,
    )
    embeddings = pa.Table.from_pylist(
        [
            {
                "shot_id": s,
                "asset_id": asset_id,
                "space": "visual",
                "model": "test",
                "dim": vectors.shape[1],
                "vector": v.tolist(),
                "run_id": run_id,
                "pipeline_version": "p1",
            }
            for s, v in zip(ids, vectors, strict=True)
        ],
        schema=schema.EMBEDDINGS,
    )
    assets = pa.Table.from_pylist(
        [
            {
                "asset_id": asset_id,
                "uri": f"/f/{asset_id}.mp4",
                "size_bytes": 1,
                "status": "ok",
                "run_id": run_id,
                "pipeline_version": "p1",
            }
        ],
        schema=schema.ASSETS,
    )
    for name, rows in (("shots", shots), ("embeddings", embeddings), ("assets", assets)):
        replace_assets(catalog, name, rows, [asset_id], run_id=run_id)
    return ids


def clustered(n: int, dim: int = 16, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(4, dim))
    return (centres[np.arange(n) % 4] + 0.05 * rng.normal(size=(n, dim))).astype(np.float32)


def test_a_shot_finds_its_cluster_with_catalog_details(settings: Settings) -> None:
    vectors = clustered(12)
    ids = commit_shots(settings, "a" * 64, vectors)
    version = build_index(open_catalog(settings), settings)
    assert version.count == 12
    hits = QueryEngine(settings).by_shot(ids[0], top=2).hits
    assert {h.shot_id for h in hits} == {ids[4], ids[8]}
    assert ids[0] not in {h.shot_id for h in hits}
    assert hits[0].uri == f"/f/{'a' * 64}.mp4" and hits[0].score > 0.9
    assert hits[0].end_s > hits[0].start_s


def test_a_rebuild_switches_to_the_new_snapshot_and_keeps_the_old_readable(settings: Settings) -> None:
    ids = commit_shots(settings, "a" * 64, clustered(8))
    first = build_index(open_catalog(settings), settings)
    old = QueryEngine(settings)
    old.refresh()
    commit_shots(settings, "b" * 64, clustered(8, seed=1))
    second = build_index(open_catalog(settings), settings)
    assert current(settings, "visual").snapshot_id == second.snapshot_id != first.snapshot_id
    assert second.count == 16
    assert old.state.spaces["visual"].version == first
    assert len(old.by_shot(ids[0], top=3).hits) == 3


def test_a_missing_index_says_what_to_build(settings: Settings) -> None:
    with pytest.raises(IndexMissingError, match="archivist index build --space visual"):
        read_index_files(settings, current(settings, "visual"))


def test_an_unknown_shot_is_named(settings: Settings) -> None:
    commit_shots(settings, "a" * 64, clustered(4))
    build_index(open_catalog(settings), settings)
    with pytest.raises(UnknownShotError, match="nope"):
        QueryEngine(settings).by_shot("nope")


def test_an_empty_catalog_builds_nothing(settings: Settings) -> None:
    assert build_index(open_catalog(settings), settings) is None


def test_both_faiss_wheels_installed_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(faiss_backend, "installed_faiss", lambda: ["faiss-cpu", "faiss-gpu"])
    with pytest.raises(faiss_backend.FaissInstallError, match="keep one"):
        faiss_backend.load_faiss()
    monkeypatch.setattr(faiss_backend, "installed_faiss", lambda: [])
    with pytest.raises(faiss_backend.FaissInstallError, match=r"archivist\[cpu\]"):
        faiss_backend.load_faiss()
