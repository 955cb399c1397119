"""Long takes: does a picture that appears only late in a take find it, and what does it cost?

Run ``python tests/benchmarks/bench_long_takes.py`` (``--json`` for the figures as JSON).

Each take is 40 s of one shot with no cut: a still held for 14 s (a little sensor noise on
every frame), a 12 s cross-fade to a second still (too slow for any transition test: the
camera turning, a light changing), the second still held for 14 s. The stills are
``skimage.data`` photographs, which no model here was trained on (EfficientNet-Lite0 saw
ImageNet). A query is the photograph itself, re-scaled and re-cropped (a copy found elsewhere),
embedded by the visual stage, ranked against every take by the best of its keyframes.

Two configurations run on the same files: ``one keyframe`` (``long_take_s: 0``, archivist
before long takes) and ``long takes`` (the defaults). Reported: shots and keyframes per take,
recall@1 and MRR for queries of the take's first and second picture, and the seconds segment
and the visual stage took (the cost of describing the further keyframes).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import av
import cv2
import numpy as np
import pyarrow as pa
from media import still

from actors.segment import Segmenter
from actors.visual import VisualTagger
from catalog.schema import ASSET_REF

FPS, W, H = 10, 320, 180
PAIRS = [
    ("astronaut", "coffee"),
    ("chelsea", "rocket"),
    ("horse", "clock"),
    ("coins", "stereo_motorcycle"),
    ("hubble_deep_field", "page"),
    ("retina", "colorwheel"),
    ("brick", "camera"),
    ("immunohistochemistry", "logo"),
]
HOLD_S, FADE_S = 14, 12


def frame_of(name: str) -> np.ndarray:
    """The still as a 16:9 BGR frame (centre crop)."""
    image = still(name)
    h, w = image.shape[:2]
    crop_h = min(h, round(w * H / W))
    crop_w = round(crop_h * W / H)
    top, left = (h - crop_h) // 2, (w - crop_w) // 2
    rgb = cv2.resize(image[top : top + crop_h, left : left + crop_w], (W, H), interpolation=cv2.INTER_AREA)
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)


def take(first: str, second: str, rng: np.random.Generator) -> list[np.ndarray]:
    a, b = frame_of(first).astype(np.float32), frame_of(second).astype(np.float32)
    frames = [a] * (HOLD_S * FPS)
    n = FADE_S * FPS
    frames += [a * (1 - (i + 1) / (n + 1)) + b * ((i + 1) / (n + 1)) for i in range(n)]
    frames += [b] * (HOLD_S * FPS)
    return [np.clip(f + rng.normal(0, 2, f.shape), 0, 255).astype(np.uint8) for f in frames]


def write(path: Path, frames: list[np.ndarray]) -> None:
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=FPS)
        stream.width, stream.height, stream.pix_fmt = W, H, "yuv420p"
        stream.options = {"crf": "20", "preset": "ultrafast"}
        for img in frames:
            out.mux(stream.encode(av.VideoFrame.from_ndarray(img, format="bgr24")))
        out.mux(stream.encode())


def query_image(name: str) -> np.ndarray:
    """The photograph as found elsewhere: its own framing (not the take's crop), scaled down."""
    image = still(name)
    h, w = image.shape[:2]
    return cv2.resize(image, (max(1, w * 200 // max(h, w)), max(1, h * 200 // max(h, w))))


def ranks(take_vectors: list[np.ndarray], queries: np.ndarray) -> list[int]:
    """1-based rank of query i's take (take i), scoring a take by its best keyframe."""
    scores = np.stack([(queries @ v.T).max(axis=1) for v in take_vectors], axis=1)
    return [int((scores[i] > scores[i, i]).sum()) + 1 for i in range(len(queries))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    folder = Path(tempfile.mkdtemp(prefix="bench-long-takes-"))
    refs = []
    for i, (first, second) in enumerate(PAIRS):
        path = folder / f"take-{i}.mp4"
        write(path, take(first, second, rng))
        refs.append({"asset_id": f"{i:064d}", "uri": str(path), "size_bytes": path.stat().st_size})
    batch = pa.Table.from_pylist(refs, schema=pa.schema(ASSET_REF))
    visual = VisualTagger(device="cpu")
    queries = {
        which: visual.embed_images([query_image(pair[k]) for pair in PAIRS])[0]
        for k, which in enumerate(("first picture", "second picture"))
    }
    report = {}
    for label, params in (("one keyframe", {"long_take_s": 0}), ("long takes", {})):
        started = time.perf_counter()
        rows = Segmenter(**params)(batch)
        segment_s = time.perf_counter() - started
        started = time.perf_counter()
        described = visual(rows)
        visual_s = time.perf_counter() - started
        by_take: list[np.ndarray] = []
        shots = []
        for ref in refs:
            mine = described.filter(pa.compute.equal(described["asset_id"], ref["asset_id"]))
            shots.append(len(set(mine["shot_id"].to_pylist())))
            by_take.append(np.asarray(mine["visual_embedding"].to_pylist(), np.float32))
        figures = {
            "shots_per_take": float(np.mean(shots)),
            "keyframes_per_take": float(np.mean([len(v) for v in by_take])),
            "segment_s": round(segment_s, 2),
            "visual_s": round(visual_s, 2),
        }
        for which, vectors in queries.items():
            found = ranks(by_take, vectors)
            figures[f"{which}: recall@1"] = round(float(np.mean([r == 1 for r in found])), 3)
            figures[f"{which}: MRR"] = round(float(np.mean([1 / r for r in found])), 3)
        report[label] = figures
    base, long = report["one keyframe"], report["long takes"]
    report["visual cost ratio"] = round(long["visual_s"] / max(base["visual_s"], 1e-9), 2)
    report["segment cost ratio"] = round(long["segment_s"] / max(base["segment_s"], 1e-9), 2)
    if args.json:
        print(json.dumps(report, indent=2))
        return
    print(f"{len(PAIRS)} takes of {2 * HOLD_S + FADE_S} s, no cut; queries: each take's two photographs")
    for label in ("one keyframe", "long takes"):
        print(f"\n{label}:")
        for key, value in report[label].items():
            print(f"  {key:28} {value}")
    print(f"\nvisual stage time, long takes / one keyframe: {report['visual cost ratio']}x")
    print(f"segment time, long takes / one keyframe:      {report['segment cost ratio']}x")


if __name__ == "__main__":
    main()
