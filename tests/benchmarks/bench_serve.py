"""HTTP service benchmark: text search through `archivist serve` under 32 concurrent clients.

Run ``python tests/benchmarks/bench_serve.py`` (``--json`` for machine-readable output,
``--home PATH`` to serve an existing archive home, e.g. after ``make demo``, instead of the
synthetic one; ``--requests`` and ``--seconds`` bound the run, ``--clients`` the concurrency).

The archive. Without ``--home``, a catalog of ``--shots`` synthetic shots (3000) over 60 assets is
written straight into the tables: captions, and 384-d ``text`` and ``concept`` vectors drawn
around 40 topic directions, both spaces indexed by ``build_index`` as a run would. The vectors
are not MiniLM's, but a query costs the same whatever the vectors say: one MiniLM encoding, a
search of each index, fusion, filters, folding and the catalog join.

The service is ``archivist serve --workers N`` started as a subprocess on a free loopback port,
with its real text encoder (MiniLM), once for each ``--workers`` value (1 and 2 by default). It
is ready when ``/health`` says ``ok``, which it does only once the encoder is loaded; the first
search after that is timed on its own (``first_search_ms``: it must not wait for the encoder).
This script is the second process: ``--clients`` asyncio workers (httpx, one
keep-alive connection each) send ``GET /search?q=…&top=10`` back to back, every query a different
three-word phrase from a small vocabulary, until ``--requests`` answers or ``--seconds`` have
passed, whichever is first. Latency is per request, from sending to the whole body read, so it
includes waiting in the server's queue: with 32 clients and a handful of cores, that wait is most
of it. Throughput is answers over the wall-clock time of the run. The machine is shared (2 cores,
other engineers' jobs), so the load average is printed beside the figures; the client and the
server compete for the same cores.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import httpx  # noqa: E402

from catalog import schema  # noqa: E402
from catalog.iceberg import open_catalog, replace_all, replace_assets  # noqa: E402
from catalog.settings import Settings  # noqa: E402
from indexes.build import build_index  # noqa: E402

DIM, TOPICS, ASSETS = 384, 40, 60
VOCABULARY = (
    "dog cat horse street car bus train beach sea boat city night market crowd forest river mountain snow "
    "rain child dancer singer parade factory field harbour bridge kitchen"
)
WORDS = VOCABULARY.split()
START_TIMEOUT = 600.0


def synthetic_home(folder: Path, shots: int, seed: int = 0) -> Settings:
    """An archive of `shots` shots with captions and indexed text and concept vectors."""
    settings = Settings(home=str(folder / "home"), catalog_url=None)
    catalog = open_catalog(settings)
    rng = np.random.default_rng(seed)
    topics = rng.normal(size=(TOPICS, DIM)).astype(np.float32)
    label = rng.integers(0, TOPICS, shots)
    stamp = {"run_id": "bench", "pipeline_version": "bench"}
    asset_ids = [f"{a:064x}" for a in range(1, ASSETS + 1)]
    rows: dict[str, list[dict]] = {"shots": [], "captions": [], "embeddings": []}
    for i in range(shots):
        aid = asset_ids[i % ASSETS]
        sid = schema.shot_id(aid, i, i + 1)
        rows["shots"].append(
            {
                "asset_id": aid,
                "shot_id": sid,
                "shot_index": i // ASSETS,
                "start_frame": i,
                "end_frame": i + 1,
                "start_s": float(i),
                "end_s": i + 2.0,
                **stamp,
            }
        )
        words = " ".join(rng.choice(WORDS, 3))
        rows["captions"].append(
            {
                "shot_id": sid,
                "asset_id": aid,
                "caption": f"A shot of {words}.",
                "method": "bench",
                "description": words,
                **stamp,
            }
        )
        for space in ("text", "concept"):
            vector = topics[label[i]] + 0.8 * rng.normal(size=DIM)
            rows["embeddings"].append(
                {
                    "shot_id": sid,
                    "asset_id": aid,
                    "space": space,
                    "model": "bench",
                    "dim": DIM,
                    "vector": vector.astype(np.float32).tolist(),
                    **stamp,
                }
            )
    assets = [
        {
            "asset_id": aid,
            "uri": f"/footage/{n}.mp4",
            "size_bytes": 1,
            "status": "ok",
            "shot_count": shots // ASSETS,
            **stamp,
        }
        for n, aid in enumerate(asset_ids)
    ]
    for name, table_rows in (("assets", assets), *rows.items()):
        replace_assets(
            catalog,
            name,
            pa.Table.from_pylist(table_rows, schema=schema.TABLES[name]),
            asset_ids,
            run_id="bench",
        )
    groups = [
        {"shot_id": r["shot_id"], "dup_group": r["shot_id"], "group_size": 1, "run_id": "bench"}
        for r in rows["shots"]
    ]
    replace_all(catalog, "dup_groups", pa.Table.from_pylist(groups, schema=schema.DUP_GROUPS), run_id="bench")
    for space in ("text", "concept"):
        build_index(catalog, settings, space=space)
    return settings


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_service(home: str, port: int, log: Path, workers: int) -> subprocess.Popen:
    env = {**os.environ, "ARCHIVIST_HOME": home}
    command = ["serve", "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers)]
    with log.open("wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "jobs.cli", *command],
            cwd=REPO,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def wait_until_ready(base: str, service: subprocess.Popen, log: Path) -> tuple[float, float]:
    """Seconds until the service says it is ready (`/health`: catalog, indexes and text encoder
    loaded), and the milliseconds of the first text search after that."""
    started = time.monotonic()
    while time.monotonic() - started < START_TIMEOUT:
        if service.poll() is not None:
            raise RuntimeError(
                f"archivist serve exited with {service.returncode}:\n{log.read_text()[-3000:]}"
            )
        try:
            if httpx.get(f"{base}/health", timeout=START_TIMEOUT).json()["status"] == "ok":
                ready = time.monotonic() - started
                sent = time.perf_counter()
                response = httpx.get(f"{base}/search", params={"q": "warm up"}, timeout=START_TIMEOUT)
                response.raise_for_status()
                return ready, (time.perf_counter() - sent) * 1000
        except httpx.TransportError:
            pass
        time.sleep(0.5)
    raise TimeoutError(f"archivist serve was not ready within {START_TIMEOUT:.0f} s")


async def drive(base: str, clients: int, requests: int, seconds: float) -> tuple[list[float], int, float]:
    """Latencies (ms) of the answers, the count of failures, and the wall-clock seconds."""
    latencies: list[float] = []
    failures = 0
    issued = 0
    rng = np.random.default_rng(1)
    phrases = [" ".join(rng.choice(WORDS, 3)) + f" {i}" for i in range(requests)]
    deadline = time.monotonic() + seconds

    async def client() -> None:
        nonlocal failures, issued
        async with httpx.AsyncClient(base_url=base, timeout=60.0) as http:
            while issued < requests and time.monotonic() < deadline:
                phrase = phrases[issued]
                issued += 1
                sent = time.perf_counter()
                try:
                    response = await http.get("/search", params={"q": phrase, "top": 10})
                    ok = response.status_code == 200 and len(response.json()["hits"]) == 10
                except httpx.HTTPError:
                    ok = False
                if ok:
                    latencies.append((time.perf_counter() - sent) * 1000)
                else:
                    failures += 1

    started = time.monotonic()
    await asyncio.gather(*(client() for _ in range(clients)))
    return latencies, failures, time.monotonic() - started


def measure(home: str, folder: Path, workers: int, args: argparse.Namespace) -> dict:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log = folder / f"serve-{workers}.log"
    service = start_service(home, port, log, workers)
    try:
        ready, first_ms = wait_until_ready(base, service, log)
        load_at_start = os.getloadavg()[0]
        latencies, failures, wall = asyncio.run(drive(base, args.clients, args.requests, args.seconds))
    finally:
        service.terminate()
        service.wait(timeout=60)
    ms = np.asarray(latencies)
    return {
        "workers": workers,
        "answered": len(latencies),
        "failed": failures,
        "seconds": round(wall, 2),
        "requests_per_second": round(len(latencies) / wall, 1) if wall else 0.0,
        "p50_ms": round(float(np.percentile(ms, 50)), 1) if len(ms) else None,
        "p99_ms": round(float(np.percentile(ms, 99)), 1) if len(ms) else None,
        "ready_after_s": round(ready, 1),
        "first_search_ms": round(first_ms, 1),
        "load_average": [round(load_at_start, 1), round(os.getloadavg()[0], 1)],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", help="serve this archive home instead of a synthetic one")
    parser.add_argument("--shots", type=int, default=3000)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--workers", default="1,2", help="server processes to compare, comma-separated")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-serve-") as scratch:
        folder = Path(scratch)
        home = args.home or synthetic_home(folder, args.shots).home
        runs = [measure(home, folder, int(w), args) for w in args.workers.split(",")]
    figures = {"shots": args.shots if not args.home else None, "home": args.home, "clients": args.clients}
    figures["runs"] = runs
    if args.json:
        print(json.dumps(figures, indent=2))
        return
    print(f"text search via archivist serve: {args.clients} clients, on {os.cpu_count()} cores")
    for run in runs:
        print(
            f"  {run['workers']} worker(s): {run['answered']} answers ({run['failed']} failed) in "
            f"{run['seconds']} s, {run['requests_per_second']} requests/s, p50 {run['p50_ms']} ms, "
            f"p99 {run['p99_ms']} ms; ready after {run['ready_after_s']} s, first search "
            f"{run['first_search_ms']} ms; load average {run['load_average'][0]} → {run['load_average'][1]}"
        )
    base = runs[0]["requests_per_second"]
    for run in runs[1:]:
        ratio = run["requests_per_second"] / base if base else float("nan")
        print(f"  {run['workers']} workers / {runs[0]['workers']}: {ratio:.2f}× the requests per second")


if __name__ == "__main__":
    main()
