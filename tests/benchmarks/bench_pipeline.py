"""Understanding throughput: the whole pipeline on Ray against the same stages called one
after another in one process, and the Ray run on one core against the same run on two.

Both paths run the same stage classes with the same parameters (speech, segment, the
keyframe models in one suite, text) over the same synthetic footage; the figure is
keyframes per second of wall time, and the Ray pipeline's speed-up. Each measurement is
its own process, one after another: a local Ray counts the cores its process may use, so
the one-core run is the same run under `taskset -c 0` (and so a Ray of one CPU). The
sequential loop keeps every library's default threads (all cores); the Ray actors keep
to their stages' `num_cpus`. The machine is shared: `--repeat` runs the set again and
the spread is printed.

    python tests/benchmarks/bench_pipeline.py [--clips 12] [--repeat 1] [--no-scaling] [--json]
    python tests/benchmarks/bench_pipeline.py --clips 60        # the issue's figure
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]
os.environ.setdefault("HF_HUB_OFFLINE", "1")


def footage(folder: Path, clips: int) -> Path:
    from conftest import write_clip

    folder.mkdir(parents=True)
    for i in range(clips):
        write_clip(folder / f"tape{i:02d}.mp4", seconds=4, size=(480, 270), cuts=3, seed=200 + i)
    return folder


def sequential(source: Path, home: Path) -> dict[str, float]:
    """The same stages, built once, called one after another per asset in this process."""
    import hashlib

    import pyarrow as pa

    from catalog.settings import Settings
    from jobs.plan import ASSET_ROWS, StageActor, plan_steps
    from jobs.spec import default_spec

    settings = Settings(home=str(home))
    spec = default_spec(str(source))
    started = time.perf_counter()  # model loading counts here as it does in the Ray actors
    context = {"keyframe_root": settings.location("keyframes"), "masters_root": settings.location("masters")}
    stages = [
        StageActor(
            [(e.stage, e.params) for e in step.members],
            context,
            grouped=step.members[0].stage.group is not None,
            fans_out=step.fans_out,
        )
        for step in plan_steps(spec.enabled())
    ]
    keyframes = 0
    for path in sorted(source.glob("*.mp4")):
        data = path.read_bytes()
        row = {"asset_id": hashlib.sha256(data).hexdigest(), "uri": str(path), "size_bytes": len(data)}
        batch = pa.Table.from_pylist([{**row, ASSET_ROWS: 1}])
        for stage in stages:
            batch = stage(batch)
        keyframes += sum(1 for s in batch["shot_id"].to_pylist() if s)
    return {"seconds": time.perf_counter() - started, "keyframes": keyframes, "cpu_s": _cpu_seconds()}


def on_ray(source: Path, home: Path) -> dict[str, float]:
    """One run of the default job on a local Ray of this process's cores."""
    from jobs.ray_runtime import machine_cores
    from jobs.run import run_job
    from jobs.spec import default_spec

    os.environ["ARCHIVIST_HOME"] = str(home)
    started = time.perf_counter()
    summary = run_job(default_spec(str(source)))
    whole = time.perf_counter() - started
    return {
        "seconds": summary["seconds"]["process"],
        "keyframes": summary["shots"],
        "whole_run_s": whole,
        "cores": machine_cores(),
        "cpu_s": _cpu_seconds() + _descendants_cpu_seconds(),  # Ray's processes, still running
    }


def _cpu_seconds() -> float:
    """CPU seconds this process spent: on a shared machine, the cost of a run that wall time,
    which depends on everyone else's load, does not show."""
    import resource

    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _descendants_cpu_seconds() -> float:
    """CPU seconds of every live process below this one (a local Ray's raylet, GCS and workers),
    read from /proc before Ray shuts down. Actors that already ended are not counted."""
    parents: dict[int, int] = {}
    spent: dict[int, float] = {}
    tick = os.sysconf("SC_CLK_TCK")
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents[int(entry.name)] = int(fields[1])
        spent[int(entry.name)] = (int(fields[11]) + int(fields[12])) / tick
    mine: set[int] = set()
    frontier = {os.getpid()}
    while frontier:
        frontier = {pid for pid, parent in parents.items() if parent in frontier} - mine
        mine |= frontier
    return sum(spent[pid] for pid in mine)


def measure(kind: str, source: Path, home: Path, cores: str | None = None) -> dict[str, float]:
    """One measurement in a fresh process (`cores`: a taskset CPU list to run it on)."""
    shutil.rmtree(home, ignore_errors=True)
    command = [sys.executable, __file__, "--one", kind, "--source", str(source), "--home", str(home)]
    if cores is not None:
        command = ["taskset", "-c", cores, *command]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode:
        raise SystemExit(f"{kind} run failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clips", type=int, default=12)
    parser.add_argument("--repeat", type=int, default=1, help="run the set this many times")
    parser.add_argument("--no-scaling", action="store_true", help="skip the one-core Ray run")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--one", choices=["sequential", "ray"], help=argparse.SUPPRESS)
    parser.add_argument("--source", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--home", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        figures = (sequential if args.one == "sequential" else on_ray)(args.source, args.home)
        print(json.dumps(figures))
        return
    cores = sorted(os.sched_getaffinity(0))
    rounds: list[dict[str, float]] = []
    with tempfile.TemporaryDirectory() as tmp:
        source = footage(Path(tmp) / "tapes", args.clips)
        for _ in range(args.repeat):
            load = os.getloadavg()[0]
            seq = measure("sequential", source, Path(tmp) / "seq")
            ray = measure("ray", source, Path(tmp) / "ray")
            assert seq["keyframes"] == ray["keyframes"], (seq, ray)
            figures = {
                "sequential_s": seq["seconds"],
                "ray_s": ray["seconds"],
                "speedup": seq["seconds"] / ray["seconds"],
                "sequential_cpu_s": seq["cpu_s"],
                "ray_cpu_s": ray["cpu_s"],
                "load_before": load,
                "keyframes": ray["keyframes"],
            }
            if not args.no_scaling and len(cores) > 1:
                one = measure("ray", source, Path(tmp) / "ray1", cores=str(cores[0]))
                assert one["cores"] == 1, one
                figures |= {"ray_1_core_s": one["seconds"], "scaling": one["seconds"] / ray["seconds"]}
            rounds.append(figures)
            print(_line(figures), file=sys.stderr, flush=True)
    summary = {"clips": args.clips, "cores": len(cores), "rounds": rounds}
    for key in rounds[0]:
        values = [r[key] for r in rounds]
        summary[key] = {"median": statistics.median(values), "min": min(values), "max": max(values)}
    if args.json:
        print(json.dumps(summary, indent=2))
        return
    print(f"{args.clips} clips, {rounds[0]['keyframes']} keyframes, {len(cores)} cores, {args.repeat} rounds")
    keys = ("sequential_s", "ray_s", "speedup", "ray_1_core_s", "scaling", "sequential_cpu_s", "ray_cpu_s")
    for key in (*keys, "load_before"):
        if key in summary:
            s = summary[key]
            print(f"{key:<14} median {s['median']:8.2f}   min {s['min']:8.2f}   max {s['max']:8.2f}")
    print(
        "(Ray: the plan from first asset in to last row out, its actors' model loading included;"
        " sequential: model loading included; scaling: the Ray run on 1 core over the same on all;"
        " cpu_s: CPU seconds of the measurement's processes, Ray's live ones and start-up included;"
        " load_before: the machine's 1-minute load average as the round began)"
    )


def _line(figures: dict[str, float]) -> str:
    return "  ".join(f"{k} {v:.2f}" if isinstance(v, float) else f"{k} {v}" for k, v in figures.items())


if __name__ == "__main__":
    main()
