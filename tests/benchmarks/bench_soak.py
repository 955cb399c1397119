"""Soak: the API under steady load for a long while, as jobs run, commit and swap indexes.

Run ``python tests/benchmarks/bench_soak.py`` (``--minutes 20`` by default; ``--json`` prints the
figures as one JSON document). Everything stays on loopback and stops by itself.

What runs, for ``--minutes``:

- ``archivist serve`` as a subprocess on a free loopback port, over a fresh home;
- a *job loop*: a new clip arrives in the source folder, ``archivist run`` describes it (segment,
  visual, technical, hash and text stages: the keyframe models that make search work), the run
  commits and records a catalog version, ``archivist index build`` swaps the indexes; again;
- ``--clients`` HTTP clients, each sending text searches and reading one hit's shot and
  keyframe, back to back (keep-alive, like a dashboard's users).

Measured: requests and their statuses (goal: no 5xx), latency p50/p99 per interval, the
server's resident memory, open file descriptors and threads per interval (goal: flat), jobs
and index swaps completed, and consistency: every search answer names the catalog version it
was read at (``meta.catalog_version``); at the end each answer's hits are checked against the
shots of that version (goal: none outside it, a "mixed" answer).
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import av
import numpy as np

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import httpx  # noqa: E402

ARCHIVIST = str(Path(sys.executable).with_name("archivist"))
SPEC = """name: soak
source:
  uri: {source}
stages:
  speech: {{enabled: false}}
  keyframes:
    ocr: {{enabled: false}}
    faces: {{enabled: false}}
    objects: {{enabled: false}}
    safety: {{enabled: false}}
"""
WORDS = ("dog", "street", "car", "beach", "sea", "city", "night", "crowd", "forest", "river", "snow", "rain")
INTERVAL_S = 60.0
MAX_SAMPLES = 20_000


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def write_clip(path: Path, seed: int, seconds: float = 4.0, fps: int = 12) -> None:
    """A few shots of moving coloured shapes: different for every seed, cheap to describe."""
    rng = np.random.default_rng(seed)
    frames = int(seconds * fps)
    cut = frames // 2
    with av.open(str(path), "w") as out:
        stream = out.add_stream("mpeg4", rate=fps)
        stream.width, stream.height, stream.pix_fmt = 320, 240, "yuv420p"
        scenes = [rng.integers(0, 256, (6, 8, 3)).astype(np.uint8) for _ in range(2)]
        for i in range(frames):
            base = np.kron(scenes[i >= cut], np.ones((40, 40, 1), np.uint8))
            picture = np.roll(base, i * 3, axis=1)
            out.mux(stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(picture), format="rgb24")))
        out.mux(stream.encode())


@dataclass
class Tally:
    lock: threading.Lock = field(default_factory=threading.Lock)
    statuses: dict[int, int] = field(default_factory=dict)
    latencies: list[tuple[float, float]] = field(default_factory=list)  # (at, seconds)
    answers: list[tuple[int | None, list[str]]] = field(default_factory=list)
    transport_errors: int = 0
    seen: int = 0  # search answers, of which `answers` is a sample

    def sample(self, answer: tuple[int | None, list[str]], rng: np.random.Generator) -> None:
        """Keep a uniform sample of every answer so far (reservoir sampling), so the check at
        the end covers the whole soak, not its first minutes."""
        with self.lock:
            self.seen += 1
            if len(self.answers) < MAX_SAMPLES:
                self.answers.append(answer)
            elif (slot := int(rng.integers(self.seen))) < MAX_SAMPLES:
                self.answers[slot] = answer

    def count(self, status: int, at: float, seconds: float) -> None:
        with self.lock:
            self.statuses[status] = self.statuses.get(status, 0) + 1
            self.latencies.append((at, seconds))


def client(base: str, stop: threading.Event, tally: Tally, seed: int) -> None:
    rng = np.random.default_rng(seed)
    with httpx.Client(base_url=base, timeout=30) as http:
        while not stop.is_set():
            query = " ".join(rng.choice(WORDS, 2))
            started = time.monotonic()
            try:
                answer = http.get("/search", params={"q": query, "top": 10})
                tally.count(answer.status_code, started, time.monotonic() - started)
                if answer.status_code != 200:
                    time.sleep(0.5)  # no index yet, say: do not spin
                    continue
                body = answer.json()
                hits = [hit["shot_id"] for hit in body["hits"]]
                tally.sample((body["meta"].get("catalog_version"), hits), rng)
                if hits:
                    for path in (f"/shots/{hits[0]}", f"/media/keyframes/{hits[0]}"):
                        started = time.monotonic()
                        reply = http.get(path)
                        tally.count(reply.status_code, started, time.monotonic() - started)
            except httpx.HTTPError:
                with tally.lock:
                    tally.transport_errors += 1
                time.sleep(0.5)


def process_figures(pid: int) -> dict[str, float]:
    status = Path(f"/proc/{pid}/status").read_text()
    fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
    return {
        "rss_mb": round(int(fields["VmRSS"].split()[0]) / 1024, 1),
        "threads": int(fields["Threads"]),
        "fds": len(os.listdir(f"/proc/{pid}/fd")),
    }


def job_loop(
    home: Path, source: Path, spec: Path, env: dict[str, str], stop: threading.Event, log: list
) -> None:
    seed = 1000
    while not stop.is_set():
        write_clip(source / f"clip-{seed}.mp4", seed)
        seed += 1
        started = time.monotonic()
        run = subprocess.run([ARCHIVIST, "run", str(spec), "--json"], env=env, capture_output=True, text=True)
        built = subprocess.run([ARCHIVIST, "index", "build"], env=env, capture_output=True, text=True)
        log.append(
            {
                "seconds": round(time.monotonic() - started, 1),
                "run_exit": run.returncode,
                "index_exit": built.returncode,
                "error": (run.stderr or built.stderr).strip().splitlines()[-1:]
                if run.returncode or built.returncode
                else [],
            }
        )


def mixed_answers(home: Path, answers: list[tuple[int | None, list[str]]]) -> tuple[int, int]:
    """(answers checked, answers with a hit outside the version they name)."""
    from sqlalchemy import select
    from sqlalchemy.orm import Session

    from catalog.iceberg import open_catalog, read
    from catalog.settings import Settings
    from catalog.versions import CatalogVersion

    catalog = open_catalog(Settings(home=str(home)))
    with Session(catalog.engine) as session:
        versions = {v.version: v.snapshots for v in session.execute(select(CatalogVersion)).scalars()}
    shots: dict[int, set[str]] = {}
    checked = mixed = 0
    for version, hits in answers:
        if version is None or version not in versions:
            continue
        if version not in shots:
            snapshot = versions[version].get("shots")
            rows = read(catalog, "shots", columns=("shot_id",), snapshot_id=snapshot) if snapshot else None
            shots[version] = set(rows["shot_id"].to_pylist()) if rows is not None else set()
        checked += 1
        mixed += any(hit not in shots[version] for hit in hits)
    return checked, mixed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=20.0)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="archivist-soak-"))
    home, source = root / "home", root / "footage"
    source.mkdir(parents=True)
    spec = root / "soak.yaml"
    spec.write_text(SPEC.format(source=source))
    env = {**os.environ, "ARCHIVIST_HOME": str(home), "HF_HUB_OFFLINE": "1"}
    write_clip(source / "clip-0.mp4", 0)
    first = subprocess.run([ARCHIVIST, "run", str(spec), "--json"], env=env, capture_output=True, text=True)
    if first.returncode:
        sys.exit(f"the first run failed: {first.stderr.strip().splitlines()[-1:]}")
    subprocess.run([ARCHIVIST, "index", "build"], env=env, check=True, capture_output=True)
    port = free_port()
    server = subprocess.Popen(
        [ARCHIVIST, "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{base}/search", params={"q": "warm up"}, timeout=120).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(1)
        stop, tally, jobs = threading.Event(), Tally(), []
        threads = [
            threading.Thread(target=client, args=(base, stop, tally, i), daemon=True)
            for i in range(args.clients)
        ]
        threads.append(
            threading.Thread(target=job_loop, args=(home, source, spec, env, stop, jobs), daemon=True)
        )
        curve = [{"minute": 0.0, **process_figures(server.pid), "requests": 0, "p99_ms": None}]
        started = time.monotonic()
        for thread in threads:
            thread.start()
        end = started + args.minutes * 60
        while time.monotonic() < end:
            time.sleep(min(INTERVAL_S, max(0.0, end - time.monotonic())))
            now = time.monotonic()
            with tally.lock:
                recent = [s for at, s in tally.latencies if at >= now - INTERVAL_S]
            curve.append(
                {
                    "minute": round((now - started) / 60, 1),
                    **process_figures(server.pid),
                    "requests": len(recent),
                    "p99_ms": round(float(np.percentile(recent, 99)) * 1000, 1) if recent else None,
                }
            )
            if not args.json:
                print(json.dumps(curve[-1]), file=sys.stderr)
        stop.set()
        for thread in threads:
            thread.join(600)
    finally:
        server.terminate()
        server.wait(30)
    latencies = [s for _, s in tally.latencies]
    checked, mixed = mixed_answers(home, tally.answers)
    report: dict[str, Any] = {
        "minutes": args.minutes,
        "clients": args.clients,
        "requests": len(latencies),
        "statuses": {str(k): v for k, v in sorted(tally.statuses.items())},
        "server_errors": sum(v for k, v in tally.statuses.items() if k >= 500),
        "transport_errors": tally.transport_errors,
        "p50_ms": round(float(np.percentile(latencies, 50)) * 1000, 1) if latencies else None,
        "p99_ms": round(float(np.percentile(latencies, 99)) * 1000, 1) if latencies else None,
        "jobs": len(jobs),
        "jobs_failed": sum(1 for j in jobs if j["run_exit"] or j["index_exit"]),
        "versions_seen": len({v for v, _ in tally.answers if v is not None}),
        "answers_seen": tally.seen,
        "answers_checked": checked,
        "mixed_answers": mixed,
        "curve": curve,
        "job_log": jobs,
    }
    if args.json:
        print(json.dumps(report))
        return
    print(
        f"soak: {args.minutes} min, {args.clients} clients, "
        f"{report['jobs']} jobs ({report['jobs_failed']} failed)"
    )
    for key in (
        "requests",
        "statuses",
        "server_errors",
        "transport_errors",
        "p50_ms",
        "p99_ms",
        "versions_seen",
    ):
        print(f"  {key:18} {report[key]}")
    print(
        f"  consistency        {mixed} of {checked} answers (sampled from {tally.seen}) had a hit "
        "outside the version they named"
    )
    print("  minute  rss MB  fds  threads  requests  p99 ms")
    for point in curve:
        print(
            f"  {point['minute']:6}  {point['rss_mb']:6}  {point['fds']:3}  {point['threads']:7}  "
            f"{point['requests']:8}  {point['p99_ms']}"
        )


if __name__ == "__main__":
    main()
