"""Turning vectors into the FAISS index of a plan: train on a sample, add, and
pick the search settings by measuring recall against exact search.

Fixed search settings would be right for one data set and wrong for the next
(a tight cluster structure needs fewer probes than a diffuse one), so the build
measures instead: it searches a sample of the space's own vectors, each one's
own row left out, and keeps the cheapest settings of the plan's ladder that
find `TARGET_RECALL` of the exact ten nearest neighbours. The settings and the
recall they reached travel with the index.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from indexes.faiss_backend import load_faiss
from indexes.layout import FLAT, IVF_PQ, IndexPlan

TARGET_RECALL = 0.98
"""Above the 0.95 promised for queries: indexed vectors are easier queries than new ones,
an HNSW graph's especially (100k × 384 clustered, efSearch 32: 0.976 on indexed vectors,
0.960 on held-out queries), and the estimate has sampling error of its own."""
CALIBRATION_QUERIES = 500
RECALL_AT = 10
SEED = 0


def trained(plan: IndexPlan, vectors: np.ndarray, *, gpu: bool = False) -> Any:
    """An empty index of the plan, trained on a seeded sample of the vectors.

    With a GPU, k-means (the bulk of the training) runs there; what is stored
    is always the CPU index, since the clustering index is not serialised."""
    faiss = load_faiss()
    index = faiss.index_factory(vectors.shape[1], plan.factory, faiss.METRIC_INNER_PRODUCT)
    if not plan.train_size:
        return index
    sample = vectors
    if plan.train_size < len(vectors):
        rows = np.random.default_rng(SEED).choice(len(vectors), plan.train_size, replace=False)
        sample = vectors[np.sort(rows)]
    if gpu and plan.kind == IVF_PQ:
        ivf = faiss.extract_index_ivf(index)
        # Held here: the IVF does not own it. On unit vectors, nearest by L2 is nearest by IP.
        clustering = faiss.index_cpu_to_all_gpus(faiss.IndexFlatL2(vectors.shape[1]))
        ivf.clustering_index = clustering
        index.train(sample)
        ivf.clustering_index = None
    else:
        index.train(sample)
    return index


def build_in_process(plan: IndexPlan, vectors: np.ndarray, *, gpu: bool = False) -> Any:
    """The whole index in this process (all cores through OpenMP)."""
    index = trained(plan, vectors, gpu=gpu)
    index.add(vectors)
    return index


def search_string(params: Mapping[str, float]) -> str:
    return ",".join(f"{name}={value}" for name, value in params.items())


def apply_search_params(index: Any, params: Mapping[str, float]) -> None:
    if params:
        load_faiss().ParameterSpace().set_index_parameters(index, search_string(params))


def calibrate(
    index: Any, vectors: np.ndarray, plan: IndexPlan, *, target: float = TARGET_RECALL
) -> tuple[dict[str, float], float]:
    """The cheapest settings of the plan's ladder reaching `target` recall@10 on a
    sample of the indexed vectors, and the recall they reached (the most thorough
    settings, and their recall, when none does). Leaves them applied to `index`."""
    faiss = load_faiss()
    if plan.kind == FLAT:
        return {}, 1.0
    count = min(CALIBRATION_QUERIES, len(vectors))
    rows = np.sort(np.random.default_rng(SEED + 1).choice(len(vectors), count, replace=False))
    queries = np.ascontiguousarray(vectors[rows])
    k = min(RECALL_AT + 1, len(vectors))
    _, truth = faiss.knn(queries, vectors, k, metric=faiss.METRIC_INNER_PRODUCT)
    for params in plan.search_ladder:
        apply_search_params(index, params)
        _, found = index.search(queries, k)
        recall = recall_at(found, truth, exclude=rows)
        if recall >= target:
            break
    return dict(params), recall


def recall_at(
    found: np.ndarray, truth: np.ndarray, *, exclude: np.ndarray | None = None, k: int = RECALL_AT
) -> float:
    """Mean share of the true `k` nearest neighbours found in the first `k` answers;
    `exclude[i]` (the query's own row, when queries are indexed vectors) counts in neither."""
    hits = wanted = 0
    for i, (got, want) in enumerate(zip(found, truth, strict=True)):
        skip = -1 if exclude is None else exclude[i]
        want_k = set([w for w in want if w != skip][:k])
        hits += len(want_k.intersection([g for g in got if g >= 0 and g != skip][:k]))
        wanted += len(want_k)
    return hits / max(wanted, 1)
