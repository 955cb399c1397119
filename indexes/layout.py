"""Choosing how to index an embedding space, before any vector is touched.

The choice is a pure function of the number of vectors, their dimension, the
memory an index may keep resident while it answers queries, and whether a FAISS
GPU is there:

- **exact** (`Flat`) while one query can afford to scan every vector: up to
  `EXACT_SCAN_BYTES` of vectors (32 MiB ≈ 22k vectors of 384 dimensions, a few
  ms on one core). Nothing to train, nothing to tune, recall 1.
- **HNSW** (`HNSW32,Flat`) up to `HNSW_MAX_VECTORS` when the graph and the full
  vectors fit the budget and there is no GPU: no training, and the lowest
  latency for the recall at that size (100k × 384: built in 17 s on 2 cores,
  recall@10 0.975 at 0.4 ms p99). Not beyond: its build is single-machine (a
  graph cannot be built in shards and merged) and grows worse than linearly
  (1M × 384 on this 2-core machine: 16 min, and recall@10 only 0.93 at
  efSearch 256 on clustered data), and graph walks touch pages at random, so
  it cannot be left on disk.
- **IVF-PQ with exact re-ranking** (`IVF{nlist},PQ{dim/4}x4fs,RFlat`) otherwise:
  4-bit fast-scan PQ codes in the inverted lists pick `k_factor·k` candidates,
  which are re-ranked against the full vectors. Only the codes, ids and
  centroids need be resident (about dim/8 + 8 bytes a vector); the full vectors
  are read through a memory map, a few hundred rows per query. It trains on a
  sample, runs k-means on the GPU when there is one, and adds in shards on Ray.
  (1M × 384 clustered, 2 cores: built in 50-75 s plus 20-30 s of calibration,
  recall@10 0.986 on held-out queries, 0.31 ms p50 / 0.43 ms p99 of CPU a query;
  see tests/benchmarks/bench_index.py.)

Search settings are not fixed here: the plan carries a ladder of them, cheapest
first, and the build keeps the first that reaches the target recall on a sample
of the space's own vectors (see `indexes.construct.calibrate`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

EXACT_SCAN_BYTES = 32 << 20
DEFAULT_MEMORY_BUDGET = 2 << 30
HNSW_MAX_VECTORS = 250_000
HNSW_M = 32
TRAIN_PER_LIST = 64  # k-means wants ≥ 39 points per centroid; more buys little
MIN_LISTS, MAX_LISTS = 16, 65_536

FLAT, HNSW, IVF_PQ = "flat-ip", "hnsw", "ivf-pq-refine"

HNSW_LADDER = (16, 32, 64, 128, 256, 512)
"""efSearch values."""
IVF_LADDER = ((8, 8), (16, 16), (16, 32), (32, 32), (32, 64), (64, 64), (64, 128), (128, 128), (256, 256))
"""(nprobe, k_factor_rf) pairs. The re-ranking depth grows fastest: 4-bit codes order the
vectors inside a tight cluster only roughly, so recall is bound by how many candidates get
re-ranked sooner than by how many lists are probed, and re-ranking a few thousand rows is cheap."""


@dataclass(frozen=True)
class IndexPlan:
    kind: str
    factory: str
    """FAISS `index_factory` string, built with the inner-product metric."""
    train_size: int
    """Vectors sampled for training; 0 when the type needs none."""
    search_ladder: tuple[dict[str, int], ...]
    """Search settings from cheapest to most thorough (`ParameterSpace` names)."""
    resident_bytes: int
    """Memory the loaded index keeps in RAM while answering queries."""
    mapped_bytes: int
    """Memory read through a memory map, a few hundred rows per query (the re-ranking vectors)."""

    @property
    def shardable(self) -> bool:
        """Inverted lists merge; graphs do not."""
        return self.kind == IVF_PQ


def choose_layout(
    n: int,
    dim: int,
    *,
    memory_budget: int = DEFAULT_MEMORY_BUDGET,
    gpu: bool = False,
    exact_scan_bytes: int = EXACT_SCAN_BYTES,
) -> IndexPlan:
    """The index for `n` vectors of `dim` floats (see the module docstring for the rule)."""
    vector_bytes = 4 * dim
    if n * vector_bytes <= exact_scan_bytes:
        return IndexPlan(FLAT, "Flat", 0, ({},), n * vector_bytes, 0)
    hnsw_bytes = n * (vector_bytes + 8 * HNSW_M + 16)  # level-0 links (2M ids) + upper levels + offsets
    if not gpu and n <= HNSW_MAX_VECTORS and hnsw_bytes <= memory_budget:
        ladder = tuple({"efSearch": ef} for ef in HNSW_LADDER)
        return IndexPlan(HNSW, f"HNSW{HNSW_M},Flat", 0, ladder, hnsw_bytes, 0)
    nlist = _lists(n)
    m = _subquantizers(dim)
    ladder = tuple({"nprobe": p, "k_factor_rf": k} for p, k in IVF_LADDER if p <= nlist)
    resident = n * ((m + 1) // 2 + 8) + nlist * vector_bytes  # 4-bit codes, 8-byte ids, centroids
    return IndexPlan(
        IVF_PQ,
        f"IVF{nlist},PQ{m}x4fs,RFlat",
        min(n, TRAIN_PER_LIST * nlist),
        ladder,
        resident,
        n * vector_bytes,
    )


def _lists(n: int) -> int:
    """About 2·√n lists, a power of two: ~500 vectors a list at a million, so a
    probe of a few dozen lists scans a few tens of thousands of codes."""
    return max(MIN_LISTS, min(MAX_LISTS, 2 ** round(math.log2(2 * math.sqrt(n)))))


def _subquantizers(dim: int) -> int:
    """One 4-bit code per 4 dimensions (per 2 or 1 when the dimension does not divide)."""
    return next((dim // width for width in (4, 2) if dim % width == 0), dim)
