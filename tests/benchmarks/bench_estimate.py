"""`archivist estimate` against a real run: calibrate on small runs, predict a larger one, run it.

Two small calibration runs (2 and 4 clips, so the fixed part of a run and its per-hour part
can be told apart) go into one catalog; the estimate made from them predicts a run over more
clips on this machine's CPUs; that run is then made in a fresh archive and each stage's busy
seconds, the shots, and the run's wall time are compared with the prediction (goal: the total
within 25%). Ray is restarted before every run, as a user's run would start it. For contrast,
the prediction from the 4-clip run alone (fixed part only, no overhead fitted) is printed too.

    python tests/benchmarks/bench_estimate.py [--clips 12] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from conftest import write_clip  # noqa: E402

from catalog.settings import Settings  # noqa: E402
from jobs.estimate import Estimate, calibration_from_runs, estimate, recorded_runs  # noqa: E402
from jobs.run import run_job  # noqa: E402
from jobs.spec import default_spec  # noqa: E402

CLIP_SECONDS = 4


def footage(folder: Path, clips: int, seed: int) -> Path:
    folder.mkdir(parents=True)
    for i in range(clips):
        write_clip(folder / f"tape{i:02d}.mp4", seconds=CLIP_SECONDS, size=(480, 270), cuts=3, seed=seed + i)
    return folder


def run(source: Path, home: Path) -> dict:
    """One run of the default pipeline, from a fresh Ray, as `archivist run` would make it."""
    import ray

    if ray.is_initialized():
        ray.shutdown()
    settings = Settings(home=str(home))
    started = time.perf_counter()
    summary = run_job(default_spec(str(source), name="bench-estimate"), settings=settings)
    summary["wall"] = time.perf_counter() - started
    return summary


def compare(predicted: Estimate, measured: dict, hours: float) -> dict:
    """Per stage busy seconds and in total wall seconds, predicted against measured."""
    shots = predicted.hours * predicted.calibration.shots_per_hour
    rows = {}
    for stage in predicted.stages:
        units = hours if stage.per == "hour" else shots
        rows[stage.name] = (
            stage.seconds_per_unit * units,
            measured["seconds"].get(f"{stage.name} (busy)", 0.0),
        )
    driver = predicted.driver_hours  # the steps the driver ran itself, as the calibration runs recorded them
    rows["start + stages (wall)"] = (
        (predicted.startup_hours + predicted.pipeline_hours) * 3600,
        measured["seconds"].get("start ray", 0.0) + measured["seconds"]["process"],
    )
    rows["driver steps (wall)"] = (
        sum(predicted.driver_hours.values()) * 3600,
        sum(measured["seconds"].get(step, 0.0) for step in driver),
    )
    rows["total (wall)"] = (predicted.wall_hours * 3600, measured["seconds"]["total"])
    rows["shots"] = (shots, float(measured["shots"]))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--clips", type=int, default=12, help="clips in the run predicted")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    cpus = os.cpu_count() or 1
    with tempfile.TemporaryDirectory(prefix="bench-estimate-") as tmp:
        root = Path(tmp)
        calibration_home = root / "calibration"
        small = [run(footage(root / f"small{n}", n, seed=300 + 10 * n), calibration_home) for n in (2, 4)]
        settings = Settings(home=str(calibration_home))
        figures = recorded_runs(settings)
        both = calibration_from_runs(figures, source="calibration runs of 2 and 4 clips", machine_cpus=cpus)
        alone = calibration_from_runs(
            [f for f in figures if f.record.run_id == small[1]["run_id"]], source="4 clips", machine_cpus=cpus
        )
        hours = args.clips * CLIP_SECONDS / 3600
        predicted = estimate(both, hours=hours, cpus=cpus)
        predicted_alone = estimate(alone, hours=hours, cpus=cpus)
        measured = run(footage(root / "large", args.clips, seed=500), root / "measured")
    rows = compare(predicted, measured, hours)
    total_error = rows["total (wall)"][0] / rows["total (wall)"][1] - 1
    report = {
        "clips": args.clips,
        "cpus": cpus,
        "load_average": os.getloadavg(),
        "calibration": {
            "startup_s": both.startup_seconds,
            "overhead": both.overhead,
            "runs": list(both.runs),
        },
        "rows": {k: {"predicted": round(p, 3), "measured": round(m, 3)} for k, (p, m) in rows.items()},
        "total_error": round(total_error, 3),
        "total_from_one_run": round(predicted_alone.wall_hours * 3600, 2),
        "within_25_percent": abs(total_error) <= 0.25,
    }
    if args.json:
        print(json.dumps(report, indent=2))
        return
    print(
        f"\npredicting {args.clips} clips ({hours * 3600:.0f} s of footage) on {cpus} CPUs; "
        f"load average {report['load_average']}"
    )
    print(f"calibration: startup {both.startup_seconds:.1f} s, pipeline overhead ×{both.overhead:.2f}")
    print(f"{'':24} {'predicted':>10} {'measured':>10} {'error':>7}")
    for name, (p, m) in rows.items():
        error = f"{p / m - 1:+.0%}" if m > 0 else ""
        print(f"{name:24} {p:10.2f} {m:10.2f} {error:>7}")
    print(f"from the 4-clip run alone the total would be {report['total_from_one_run']:.1f} s")
    verdict = "within" if report["within_25_percent"] else "NOT within"
    print(f"total {verdict} 25% ({total_error:+.0%})")


if __name__ == "__main__":
    main()
