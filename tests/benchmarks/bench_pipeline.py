"""Understanding throughput: the whole pipeline on Ray against the same stages called one
after another in one process.

Both paths run the same stage classes with the same parameters (speech, segment, the
keyframe models in one suite, text) over the same synthetic footage; the figure is
keyframes (shots) per second of wall time, and the Ray pipeline's speed-up. On this
2-core machine the pipeline can overlap decoding, the keyframe models and the text
stage, which is where its gain comes from.

    python tests/benchmarks/bench_pipeline.py [--clips 8] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import pyarrow as pa

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from conftest import write_clip  # noqa: E402

from catalog.settings import Settings  # noqa: E402
from jobs.plan import ASSET_ROWS, StageActor, plan_steps  # noqa: E402
from jobs.run import run_job  # noqa: E402
from jobs.spec import default_spec  # noqa: E402


def footage(folder: Path, clips: int) -> Path:
    folder.mkdir(parents=True)
    for i in range(clips):
        write_clip(folder / f"tape{i:02d}.mp4", seconds=4, size=(480, 270), cuts=3, seed=200 + i)
    return folder


def sequential(source: Path, home: Path) -> tuple[float, int]:
    """The same stages, built once, called one after another per asset in this process."""
    import hashlib

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
    shots = 0
    for path in sorted(source.glob("*.mp4")):
        data = path.read_bytes()
        batch = pa.Table.from_pylist([{"asset_id": hashlib.sha256(data).hexdigest(), "uri": str(path),
                                       "size_bytes": len(data), ASSET_ROWS: 1}])
        for stage in stages:
            batch = stage(batch)
        shots += sum(1 for s in batch["shot_id"].to_pylist() if s)
    return time.perf_counter() - started, shots


def on_ray(source: Path, home: Path) -> tuple[float, int, float]:
    os.environ["ARCHIVIST_HOME"] = str(home)
    started = time.perf_counter()
    summary = run_job(default_spec(str(source)))
    wall = time.perf_counter() - started
    return summary["seconds"]["process"], summary["shots"], wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clips", type=int, default=8)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        source = footage(Path(tmp) / "tapes", args.clips)
        seq_seconds, seq_shots = sequential(source, Path(tmp) / "seq")
        ray_seconds, ray_shots, ray_wall = on_ray(source, Path(tmp) / "ray")
    figures = {
        "clips": args.clips,
        "keyframes": ray_shots,
        "sequential_s": round(seq_seconds, 2),
        "sequential_keyframes_per_s": round(seq_shots / seq_seconds, 3),
        "ray_describe_s": round(ray_seconds, 2),
        "ray_keyframes_per_s": round(ray_shots / ray_seconds, 3),
        "ray_whole_run_s": round(ray_wall, 2),
        "speedup": round(seq_seconds / ray_seconds, 2),
    }
    assert seq_shots == ray_shots, (seq_shots, ray_shots)
    if args.json:
        print(json.dumps(figures, indent=2))
        return
    width = max(map(len, figures))
    for key, value in figures.items():
        print(f"{key:<{width}}  {value}")
    print("(Ray: the plan from first asset in to last row out; both sides include loading the models;"
          " Ray's own start-up is not counted)")


if __name__ == "__main__":
    main()
