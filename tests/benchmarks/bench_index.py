"""Index benchmark: archivist's chosen index against autofaiss on the same clustered vectors.

Run ``python tests/benchmarks/bench_index.py`` (1,000,000 × 384; ``--n 100000`` for a quick
run, ``--json`` for machine-readable output, ``--budget`` to move the memory budget and so the
index type, ``--no-autofaiss`` to skip the reference).

Data. Uniform noise has no neighbours (every point is about as far from every other), so the
vectors are a seeded Gaussian mixture shaped like real embeddings: ``n / 500`` clusters of
unequal size (Pareto weights: a few large, many small), centred on random unit vectors; each
cluster spreads over a 24-dimensional subspace of its own (spread 0.3-0.8, drawn per cluster),
plus isotropic noise of norm 0.2, and every vector is L2-normalised (cosine = inner product,
as in the catalog). The nearest neighbour of a query is at cosine ≈ 0.86 and the 10th at ≈ 0.80,
a random pair at ≈ 0. The queries are fresh draws of the same mixture, not in the base set.

Ground truth is exact inner-product search (``faiss.knn``, blocked). Recall@10 is the share of
the true ten nearest neighbours among the ten answers, over ``--queries`` queries.

Our index is built the way ``build_index`` builds it: the plan from ``choose_layout`` (the
budget, no GPU), trained and filled in this process, then the search settings calibrated on a
sample of the base vectors. It is written to a file and memory-mapped back, as the query engine
loads it (``read_index_files``), before it is measured. autofaiss (``build_index`` on the same
array) gets the same memory budget (``max_index_memory_usage``, at least 256 MiB) and the latency target
(``max_index_query_time_ms``, which it spends on recall) and 2 cores; its own tuned search settings
are kept.

Latency is one query per ``search`` call, with ``faiss.omp_set_num_threads(1)``, after 100
warm-up queries; p50/p99 over all queries. Builds use both cores. Memory: the peak RSS of the
build above what the process held before it (``VmHWM``, reset through ``/proc/self/clear_refs``,
so it includes the copy of the vectors an index keeps), the serialised index size, and what the
loaded index adds once the queries have run: anonymous memory (``RssAnon``: what must stay in
RAM) and mapped file pages (``RssFile``: page cache, which the kernel drops under pressure and
reads back on the next touch; read-ahead brings in neighbouring rows too, so it overstates what
re-ranking needs). The machine is shared, so the load average is printed beside the figures, and
latency is given both on the wall clock (which includes waiting for a core) and in CPU time of
the searching thread (which does not).
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from indexes.construct import build_in_process, calibrate, recall_at, search_string  # noqa: E402
from indexes.faiss_backend import load_faiss  # noqa: E402
from indexes.layout import DEFAULT_MEMORY_BUDGET, choose_layout  # noqa: E402

faiss = load_faiss()

RANK, PER_CLUSTER, NOISE = 24, 500, 0.01
LATENCY_TARGET_MS = 5.0
WARM_UP = 100
AUTOFAISS_MIN_BUDGET = 256 << 20  # below this autofaiss finds no index to offer


def mixture(n: int, dim: int, clusters: int, seed: int) -> np.ndarray:
    """`n` unit vectors of the Gaussian mixture described in the module docstring."""
    rng = np.random.default_rng(seed)
    layout = np.random.default_rng(12345)  # the clusters: shared by base set and queries
    centres = layout.normal(size=(clusters, dim)).astype(np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    weights = layout.pareto(1.5, clusters) + 1
    spread = layout.uniform(0.3, 0.8, clusters).astype(np.float32)
    label = rng.choice(clusters, size=n, p=weights / weights.sum())
    out = np.empty((n, dim), np.float32)
    order = np.argsort(label, kind="stable")
    bounds = np.searchsorted(label[order], np.arange(clusters + 1))
    for c in range(clusters):
        rows = order[bounds[c] : bounds[c + 1]]
        if not len(rows):
            continue
        basis = np.random.default_rng([12345, c]).normal(size=(RANK, dim)).astype(np.float32) / np.sqrt(dim)
        offsets = rng.standard_normal((len(rows), RANK), dtype=np.float32) * (spread[c] / np.sqrt(RANK))
        out[rows] = (
            centres[c] + offsets @ basis + NOISE * rng.standard_normal((len(rows), dim), dtype=np.float32)
        )
    out /= np.linalg.norm(out, axis=1, keepdims=True)
    return out


def memory_kib(field: str) -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise LookupError(field)


def reset_peak() -> int:
    """Reset the peak RSS to the current RSS, and return it (KiB)."""
    with open("/proc/self/clear_refs", "w") as clear:
        clear.write("5")
    return memory_kib("VmRSS")


def latencies_ms(index: Any, queries: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Single-query wall-clock and CPU times on one thread, and the answers (10 ids per query).
    On a loaded machine the wall clock includes waiting for a core; the CPU time does not."""
    faiss.omp_set_num_threads(1)
    for query in queries[:WARM_UP]:
        index.search(query[None, :], 10)
    found = np.empty((len(queries), 10), np.int64)
    wall = np.empty(len(queries))
    cpu = np.empty(len(queries))
    for i, query in enumerate(queries):
        started, started_cpu = time.perf_counter(), time.thread_time()
        _, found[i : i + 1] = index.search(query[None, :], 10)
        wall[i], cpu[i] = time.perf_counter() - started, time.thread_time() - started_cpu
    faiss.omp_set_num_threads(os.cpu_count() or 1)
    return wall * 1000, cpu * 1000, found


def written(index: Any, folder: str) -> str:
    path = os.path.join(folder, "index.faiss")
    faiss.write_index(index, path)
    return path


def resident_kib() -> tuple[int, int]:
    """Anonymous memory (must stay in RAM) and mapped file pages (page cache the kernel may drop)."""
    return memory_kib("RssAnon"), memory_kib("RssFile")


def mapped(path: str, params: str) -> tuple[Any, tuple[int, int]]:
    """The index memory-mapped back from its file, as the query engine loads it, and the memory before.
    The built copy was freed just before: hand its pages back to the kernel first, or the loaded
    index would reuse them unseen."""
    ctypes.CDLL("libc.so.6").malloc_trim(0)
    before = resident_kib()
    index = faiss.read_index(path, faiss.IO_FLAG_MMAP_IFC | faiss.IO_FLAG_READ_ONLY)
    if params:
        faiss.ParameterSpace().set_index_parameters(index, params)
    return index, before


def measure(
    name: str, loaded: Any, before: tuple[int, int], queries: np.ndarray, truth: np.ndarray
) -> dict[str, Any]:
    wall, cpu, found = latencies_ms(loaded, queries)
    return {
        "name": name,
        "recall@10": round(recall_at(found, truth), 4),
        "p50_ms": round(float(np.percentile(wall, 50)), 3),
        "p99_ms": round(float(np.percentile(wall, 99)), 3),
        "cpu_p50_ms": round(float(np.percentile(cpu, 50)), 3),
        "cpu_p99_ms": round(float(np.percentile(cpu, 99)), 3),
        "loaded_anon_mib": round((resident_kib()[0] - before[0]) / 1024),
        "loaded_file_mib": round((resident_kib()[1] - before[1]) / 1024),
    }


def ours(
    base: np.ndarray, queries: np.ndarray, truth: np.ndarray, budget: int, folder: str
) -> dict[str, Any]:
    plan = choose_layout(len(base), base.shape[1], memory_budget=budget)
    before = reset_peak()
    started = time.perf_counter()
    index = build_in_process(plan, base)
    built = time.perf_counter() - started
    params, calibrated = calibrate(index, base, plan)
    total = time.perf_counter() - started
    peak = memory_kib("VmHWM") - before
    path = written(index, folder)
    del index
    loaded, resident = mapped(path, search_string(params))
    row = measure("archivist", loaded, resident, queries, truth)
    row.update(
        index=plan.factory,
        params=search_string(params),
        build_s=round(total, 1),
        build_without_calibration_s=round(built, 1),
        calibrated_recall=round(calibrated, 4),
        peak_build_rss_mib=round(peak / 1024),
        index_mib=round(os.path.getsize(path) / 2**20),
        planned_resident_mib=round(plan.resident_bytes / 2**20),
    )
    return row


def autofaiss_reference(
    base: np.ndarray, queries: np.ndarray, truth: np.ndarray, budget: int, folder: str
) -> dict[str, Any]:
    import logging

    os.environ.setdefault("TQDM_DISABLE", "1")  # its progress bars would bury the table
    from autofaiss import build_index

    before = reset_peak()
    started = time.perf_counter()
    index, info = build_index(
        base,
        save_on_disk=False,
        metric_type="ip",
        max_index_memory_usage=f"{max(budget, AUTOFAISS_MIN_BUDGET) >> 20}M",
        max_index_query_time_ms=LATENCY_TARGET_MS,
        current_memory_available="16G",
        nb_cores=os.cpu_count(),
        verbose=logging.WARNING,
    )
    total = time.perf_counter() - started
    peak = memory_kib("VmHWM") - before
    path = written(index, folder)
    del index
    loaded, resident = mapped(path, info["index_param"])
    row = measure("autofaiss", loaded, resident, queries, truth)
    row.update(
        index=info["index_key"],
        params=info["index_param"],
        build_s=round(total, 1),
        peak_build_rss_mib=round(peak / 1024),
        index_mib=round(os.path.getsize(path) / 2**20),
    )
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--budget", type=int, default=DEFAULT_MEMORY_BUDGET, help="memory budget, bytes")
    parser.add_argument("--no-autofaiss", action="store_true")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    load_at_start = os.getloadavg()[0]
    started = time.perf_counter()
    clusters = max(args.n // PER_CLUSTER, 8)
    base = mixture(args.n, args.dim, clusters, seed=1)
    queries = mixture(args.queries, args.dim, clusters, seed=2)
    generated = time.perf_counter()
    faiss.omp_set_num_threads(os.cpu_count() or 1)
    _, truth = faiss.knn(queries, base, 10, metric=faiss.METRIC_INNER_PRODUCT)
    exact = time.perf_counter()
    with tempfile.TemporaryDirectory() as folder:
        rows = [ours(base, queries, truth, args.budget, folder)]
        if not args.no_autofaiss:
            rows.append(autofaiss_reference(base, queries, truth, args.budget, folder))
    report = {
        "n": args.n,
        "dim": args.dim,
        "clusters": clusters,
        "queries": args.queries,
        "budget": args.budget,
        "cores": os.cpu_count(),
        "search_threads": 1,
        "load_average": [round(load_at_start, 1), round(os.getloadavg()[0], 1)],
        "seconds": {
            "generate": round(generated - started, 1),
            "exact_truth": round(exact - generated, 1),
            "total": round(time.perf_counter() - started, 1),
        },
        "rows": rows,
    }
    if args.json:
        print(json.dumps(report, indent=2))
        return
    print(
        f"{args.n:,} × {args.dim} vectors in {clusters} clusters, {args.queries} held-out queries; "
        f"budget {args.budget / 2**30:.2f} GiB; {report['cores']} cores, search on 1 thread; "
        f"load average {report['load_average'][0]} → {report['load_average'][1]}"
    )
    seconds = report["seconds"]
    print(
        f"generate {seconds['generate']} s, exact ground truth {seconds['exact_truth']} s, "
        f"total {seconds['total']} s"
    )
    columns = (
        "name",
        "index",
        "params",
        "build_s",
        "peak_build_rss_mib",
        "index_mib",
        "loaded_anon_mib",
        "loaded_file_mib",
        "recall@10",
        "p50_ms",
        "p99_ms",
        "cpu_p50_ms",
        "cpu_p99_ms",
    )
    widths = [max(len(c), *(len(str(r.get(c, ""))) for r in rows)) for c in columns]
    print("  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)))
    for row in rows:
        print("  ".join(str(row.get(c, "")).ljust(w) for c, w in zip(columns, widths, strict=True)))
    mine = rows[0]
    print(
        f"archivist: calibrated recall@10 {mine['calibrated_recall']} on base-vector queries; build "
        f"{mine['build_without_calibration_s']} s + calibration; planned resident "
        f"{mine['planned_resident_mib']} MiB"
    )


if __name__ == "__main__":
    main()
