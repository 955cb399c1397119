"""Building a large IVF index on Ray: train once, add per shard, merge.

Training needs one consistent set of centroids and codebooks, so it happens
once, here, on a sample. Adding is where the vectors' time goes (assigning
each to its nearest lists and encoding it) and it is independent per vector:
each Ray task adds one contiguous shard, with its global row numbers as ids,
to a copy of the trained empty index and returns just the filled inverted
lists. Merging them in shard order gives the lists a single-process build
would have written, entry for entry. The re-ranking vectors need no work, so
they are copied in here rather than shipped to the tasks and back.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from indexes.construct import trained
from indexes.faiss_backend import load_faiss
from indexes.layout import IndexPlan


def _add_shard(empty: np.ndarray, vectors: np.ndarray, start: int) -> np.ndarray:
    faiss = load_faiss()
    shard = faiss.deserialize_index(empty)
    shard.add_with_ids(vectors, np.arange(start, start + len(vectors), dtype=np.int64))
    return faiss.serialize_index(shard)


def build_sharded(plan: IndexPlan, vectors: np.ndarray, *, shard_rows: int, gpu: bool = False) -> Any:
    """The plan's index over `vectors`, added in shards of `shard_rows` by Ray tasks
    (Ray must be running). Only plans with `plan.shardable` qualify."""
    if not plan.shardable:
        raise ValueError(f"a {plan.kind} index cannot be built in shards: its parts do not merge")
    import ray

    faiss = load_faiss()
    index = trained(plan, vectors, gpu=gpu)  # index_factory already gives the derived type
    base = faiss.downcast_index(index.base_index)
    empty = ray.put(faiss.serialize_index(base))
    add_shard = ray.remote(_add_shard)
    pending = [
        add_shard.remote(empty, vectors[start : start + shard_rows], start)
        for start in range(0, len(vectors), shard_rows)
    ]
    for ref in pending:  # in shard order, so every list holds its entries in row order
        base.merge_from(faiss.deserialize_index(ray.get(ref)), 0)
    faiss.downcast_index(index.refine_index).add(vectors)
    index.ntotal = base.ntotal
    return index
