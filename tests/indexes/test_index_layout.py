"""Index layout: which index a space gets, how well it finds neighbours, and that its
search settings, its shards and its rebuilds behave."""

from __future__ import annotations

import threading
from functools import partial
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from catalog import schema
from catalog.iceberg import open_catalog, replace_assets
from catalog.settings import Settings
from indexes import build as build_module
from indexes.build import build_index, build_vectors, read_index_files, write_index_files
from indexes.construct import TARGET_RECALL, build_in_process, calibrate, recall_at, search_string
from indexes.faiss_backend import load_faiss
from indexes.layout import FLAT, HNSW, HNSW_MAX_VECTORS, IVF_PQ, IndexPlan, choose_layout
from indexes.query import QueryEngine
from indexes.sharded import build_sharded
from indexes.store import IndexVersion, current, publish

faiss = load_faiss()


def mixture(n: int, dim: int = 64, clusters: int = 40, seed: int = 0) -> np.ndarray:
    """Unit vectors in clusters of unequal size, each spread over a few directions of
    its own plus a little noise: neighbours exist, and are not trivially the cluster."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(clusters, dim))
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    bases = rng.normal(size=(clusters, 8, dim)) / np.sqrt(dim)
    label = rng.choice(clusters, size=n, p=rng.dirichlet(np.ones(clusters)))
    spread = rng.normal(size=(n, 8)) * 0.6 / np.sqrt(8)
    points = centres[label] + np.einsum("nr,nrd->nd", spread, bases[label]) + 0.02 * rng.normal(size=(n, dim))
    return (points / np.linalg.norm(points, axis=1, keepdims=True)).astype(np.float32)


def held_out(n: int, queries: int = 300, dim: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """Base vectors and queries from the same distribution, the queries not indexed."""
    points = mixture(n + queries, dim)
    return np.ascontiguousarray(points[:n]), np.ascontiguousarray(points[n:])


def forced(kind: str, n: int, dim: int = 64) -> IndexPlan:
    """The plan a space of this size gets when small sets are not searched exactly."""
    budget = 0 if kind == IVF_PQ else 1 << 40
    plan = choose_layout(n, dim, memory_budget=budget, exact_scan_bytes=0)
    assert plan.kind == kind
    return plan


def test_small_spaces_are_searched_exactly() -> None:
    plan = choose_layout(20_000, 384)
    assert (plan.kind, plan.factory, plan.train_size, plan.search_ladder) == (FLAT, "Flat", 0, ({},))
    assert choose_layout(6_000, 1280).kind == FLAT
    assert choose_layout(30_000, 384).kind != FLAT


def test_large_spaces_under_a_tight_budget_get_ivf_pq_with_exact_reranking() -> None:
    plan = choose_layout(1_000_000, 384, memory_budget=512 << 20)
    assert plan.kind == IVF_PQ and plan.shardable
    assert plan.factory == "IVF2048,PQ96x4fs,RFlat"
    assert plan.resident_bytes <= 512 << 20 < plan.mapped_bytes  # full vectors only mapped
    assert 39 * 2048 <= plan.train_size < 1_000_000
    nprobes = [p["nprobe"] for p in plan.search_ladder]
    assert nprobes == sorted(nprobes) and all("k_factor_rf" in p for p in plan.search_ladder)
    assert choose_layout(1_000_000, 390, memory_budget=0).factory == "IVF2048,PQ195x4fs,RFlat"


def test_large_spaces_under_a_loose_budget_get_hnsw_unless_too_large_or_on_a_gpu() -> None:
    plan = choose_layout(200_000, 384)
    assert plan.kind == HNSW and plan.factory == "HNSW32,Flat" and not plan.shardable
    assert plan.train_size == 0 and plan.resident_bytes <= 400 << 20
    assert [p["efSearch"] for p in plan.search_ladder] == sorted(p["efSearch"] for p in plan.search_ladder)
    assert choose_layout(200_000, 384, memory_budget=300 << 20).kind == IVF_PQ
    assert choose_layout(200_000, 384, gpu=True).kind == IVF_PQ
    assert choose_layout(HNSW_MAX_VECTORS + 1, 384, memory_budget=1 << 40).kind == IVF_PQ


@pytest.mark.parametrize("kind", [HNSW, IVF_PQ])
def test_an_approximate_index_finds_95_percent_of_the_true_neighbours(kind: str) -> None:
    base, queries = held_out(20_000)
    plan = forced(kind, len(base))
    index = build_in_process(plan, base)
    params, calibrated = calibrate(index, base, plan)
    assert params in plan.search_ladder and calibrated >= TARGET_RECALL
    _, truth = faiss.knn(queries, base, 10, metric=faiss.METRIC_INNER_PRODUCT)
    _, found = index.search(queries, 10)
    assert recall_at(found, truth) >= 0.95


def test_calibration_keeps_the_cheapest_settings_that_reach_the_target() -> None:
    base, _ = held_out(8_000)
    plan = forced(IVF_PQ, len(base))
    index = build_in_process(plan, base)
    params, recall = calibrate(index, base, plan, target=0.0)
    assert params == plan.search_ladder[0] and 0 < recall <= 1
    params, recall = calibrate(index, base, plan, target=1.01)  # unreachable: the most thorough
    assert params == plan.search_ladder[-1] and recall < 1.01


def test_with_a_gpu_k_means_runs_there_and_the_cpu_index_is_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    cloned = []  # a CPU stand-in for the GPU copy
    monkeypatch.setattr(faiss, "index_cpu_to_all_gpus", lambda index: cloned.append(index) or index)
    base, queries = held_out(5_000)
    plan = choose_layout(len(base), base.shape[1], gpu=True, exact_scan_bytes=0)
    assert plan.kind == IVF_PQ
    index = build_in_process(plan, base, gpu=True)
    ivf = faiss.extract_index_ivf(index)
    assert len(cloned) == 1 and cloned[0].ntotal == ivf.nlist  # k-means ran on the clone
    assert ivf.clustering_index is None
    stored = faiss.deserialize_index(faiss.serialize_index(index))
    np.testing.assert_array_equal(stored.search(queries, 5)[1], index.search(queries, 5)[1])


def build_version(
    settings: Settings, kind: str, base: np.ndarray, snapshot_id: int = 1
) -> tuple[IndexVersion, object]:
    plan = forced(kind, len(base), base.shape[1])
    index = build_in_process(plan, base)
    params, recall = calibrate(index, base, plan)
    version = IndexVersion(
        space="visual",
        snapshot_id=snapshot_id,
        count=len(base),
        dim=base.shape[1],
        kind=plan.kind,
        model="test",
        built_at="now",
        factory=plan.factory,
        search_params=params,
        recall=recall,
        resident_bytes=plan.resident_bytes,
    )
    shot_ids = pa.table({"shot_id": [f"s{i}" for i in range(len(base))]})
    write_index_files(settings, version, index, shot_ids)
    publish(settings, version)
    return version, index


@pytest.mark.parametrize("kind", [HNSW, IVF_PQ])
def test_search_settings_survive_save_and_load(settings: Settings, kind: str) -> None:
    base, queries = held_out(12_000)
    version, built = build_version(settings, kind, base)
    assert current(settings, "visual") == version
    loaded, _ = read_index_files(settings, current(settings, "visual"))
    if kind == HNSW:
        assert {"efSearch": loaded.hnsw.efSearch} == version.search_params
    else:
        applied = {"nprobe": faiss.extract_index_ivf(loaded).nprobe, "k_factor_rf": loaded.k_factor}
        assert applied == version.search_params
    expected = built.search(queries, 10)
    got = loaded.search(queries, 10)
    np.testing.assert_array_equal(got[1], expected[1])
    np.testing.assert_allclose(got[0], expected[0], rtol=1e-5)


def test_an_index_in_an_object_store_is_cached_locally_and_mapped(
    s3_endpoint: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import boto3

    boto3.client(
        "s3",
        endpoint_url=s3_endpoint,
        aws_access_key_id="k",
        aws_secret_access_key="s",
        region_name="us-east-1",
    ).create_bucket(Bucket="indexes")
    monkeypatch.setattr(build_module, "CACHE", tmp_path / "cache")
    settings = Settings(
        home="s3://indexes/archive",
        catalog_url=f"sqlite:///{tmp_path}/c.db",
        s3_endpoint_url=s3_endpoint,
        s3_access_key_id="k",
        s3_secret_access_key="s",
        s3_region="us-east-1",
    )
    base, queries = held_out(12_000)
    first, built = build_version(settings, IVF_PQ, base)
    index, ids = read_index_files(settings, first)
    assert ids.num_rows == len(base) and ids["shot_id"][0].as_py() == "s0"
    # written without keyframes, as indexes were before long takes: every vector a shot's own
    assert set(ids["keyframe_index"].to_pylist()) == {0}
    np.testing.assert_array_equal(index.search(queries, 10)[1], built.search(queries, 10)[1])
    second, _ = build_version(settings, IVF_PQ, base[:11_000], snapshot_id=2)
    read_index_files(settings, second)
    assert len(list((tmp_path / "cache" / "visual").glob("*.faiss"))) == 1  # the older copy is dropped
    assert index.search(queries, 10)[1].shape == (len(queries), 10)  # and still answers where mapped


@pytest.mark.slow
def test_a_sharded_build_on_ray_finds_what_a_single_process_build_finds(
    ray_session, monkeypatch: pytest.MonkeyPatch
) -> None:
    base, queries = held_out(20_000)
    plan = forced(IVF_PQ, len(base))
    single = build_in_process(plan, base)
    shard_sizes = []
    monkeypatch.setattr(build_module, "build_sharded", lambda *args, shard_rows, **kwargs: (
        shard_sizes.append(shard_rows) or build_sharded(*args, shard_rows=shard_rows, **kwargs)))
    sharded = build_vectors(plan, base, shard_rows=6_000)  # Ray is up and the space is 4 shards
    assert shard_sizes == [6_000]
    assert sharded.ntotal == single.ntotal == len(base)
    for index in (single, sharded):
        faiss.ParameterSpace().set_index_parameters(index, search_string(plan.search_ladder[2]))
    d_single, i_single = single.search(queries, 10)
    d_sharded, i_sharded = sharded.search(queries, 10)
    np.testing.assert_array_equal(i_sharded, i_single)
    np.testing.assert_allclose(d_sharded, d_single, rtol=1e-5)
    with pytest.raises(ValueError, match="cannot be built in shards"):
        build_sharded(forced(HNSW, len(base)), base, shard_rows=6_000)


def commit_vectors(settings: Settings, asset_id: str, vectors: np.ndarray) -> list[str]:
    """Shots and their embeddings for one asset, committed the way a run commits them."""
    n, dim = vectors.shape
    ids = [schema.shot_id(asset_id, i, i + 1) for i in range(n)]
    provenance = {"run_id": "r1", "pipeline_version": "p1"}
    shots = pa.Table.from_pylist(
        [{"asset_id": asset_id, "shot_id": s, "shot_index": i, "start_frame": i, "end_frame": i + 1,
          "start_s": float(i), "end_s": i + 1.0, **provenance} for i, s in enumerate(ids)],
        schema=schema.SHOTS)
    offsets = np.arange(0, n * dim + 1, dim, dtype=np.int32)
    embeddings = pa.table({
        "shot_id": ids, "asset_id": [asset_id] * n, "space": ["visual"] * n, "model": ["test"] * n,
        "dim": pa.array([dim] * n, pa.int32()),
        "vector": pa.ListArray.from_arrays(offsets, vectors.reshape(-1)),
        "keyframe_index": pa.array([0] * n, pa.int32()),
        "run_id": ["r1"] * n, "pipeline_version": ["p1"] * n})
    assets = pa.Table.from_pylist([{"asset_id": asset_id, "uri": f"/f/{asset_id}.mp4", "size_bytes": 1,
                                    "status": "ok", **provenance}], schema=schema.ASSETS)
    catalog = open_catalog(settings)
    for name, rows in (("shots", shots), ("embeddings", embeddings), ("assets", assets)):
        replace_assets(catalog, name, rows, [asset_id], run_id="r1")
    return ids


def test_a_rebuild_while_a_searcher_answers_does_not_disturb_it(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(build_module, "choose_layout", partial(choose_layout, exact_scan_bytes=0))
    vectors = mixture(5_000)
    ids = commit_vectors(settings, "a" * 64, vectors)
    catalog = open_catalog(settings)
    first = build_index(catalog, settings)
    assert first.kind == HNSW and first.recall >= TARGET_RECALL and first.search_params
    searcher = QueryEngine(settings, catalog)
    before = searcher.by_shot(ids[0], top=5).hits
    assert len(before) == 5 and before[0].uri == f"/f/{'a' * 64}.mp4"
    loaded = searcher.state.spaces["visual"].index
    expected = loaded.search(vectors[:50], 5)[1]

    failures: list[BaseException] = []
    stop = threading.Event()

    def query() -> None:  # the mapped index, searched without pause while the rebuilds run
        while not stop.is_set():
            try:
                np.testing.assert_array_equal(loaded.search(vectors[:50], 5)[1], expected)
            except BaseException as exc:
                failures.append(exc)
                return

    reader = threading.Thread(target=query)
    reader.start()
    try:
        tight = build_index(catalog, settings, memory_budget=0)  # same snapshot, another index type
        commit_vectors(settings, "b" * 64, mixture(1_000, seed=1))
        newer = build_index(catalog, settings, memory_budget=0)
    finally:
        stop.set()
        reader.join()
    assert not failures, failures[0]
    assert searcher.by_shot(ids[0], top=5).hits == before
    assert tight.kind == IVF_PQ and tight.snapshot_id == first.snapshot_id and tight.folder != first.folder
    assert newer.count == 6_000 and current(settings, "visual") == newer
    assert QueryEngine(settings, catalog).state.spaces["visual"].version == newer


def test_building_the_same_snapshot_the_same_way_again_publishes_the_sealed_build(settings: Settings) -> None:
    commit_vectors(settings, "a" * 64, mixture(500, 64))
    catalog = open_catalog(settings)
    first = build_index(catalog, settings)
    index_file = Path(settings.location("indexes", first.folder, "index.faiss"))
    written = index_file.stat().st_mtime_ns
    assert build_index(catalog, settings) == first
    assert index_file.stat().st_mtime_ns == written
