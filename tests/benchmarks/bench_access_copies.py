"""Access copies that cost less: bytes at equal VMAF for noisy and grainy sources.

Run ``python tests/benchmarks/bench_access_copies.py`` (``--json`` for machine-readable output,
``--frames N`` and ``--photos a,b`` to change the material). A few minutes on two cores.

Material (held out: nothing here was tuned on it). ``skimage.data`` photographs (by default
``coffee`` and ``rocket``) are panned: a 640x360 window moves two pixels right and one down each
frame over the photograph enlarged to 1.4 times, 16 frames at 25 fps. That panned clip is the
clean original. Two kinds of damage are added to it, new every frame and seeded:

* sensor-like noise: Poisson shot noise (the picture's 0-255 levels as photon counts at a gain
  of 4 counts a level, so the noise grows with brightness: sigma 5.7 levels at mid-grey, 8 at
  white) plus Gaussian read noise of sigma 2, per channel;
* film grain: noise blurred by a Gaussian of sigma 0.9 pixels (grains, not single pixels),
  mostly in luma (chroma at a third), strongest in the mid-tones (sigma 7.5 levels there).

The restore stage has no training data of its own for ``denoise`` (a classical
optical-flow-guided filter); the VMAF model (v0.6.1) was trained by Netflix on other footage.

Variants, each encoded from the damaged clip:

* ``h264``: plain H.264 (libx264, preset medium) of the damaged source: today's access copy;
* ``restored+h264``: ``actors.restore.Restorer`` with the ``denoise`` operation (its parameters
  measured per frame, as ``auto`` would) and then H.264;
* ``restored+av1 grain``: restored, then AV1 (SVT-AV1 at the stage's default preset, 6) with
  film-grain synthesis (``film-grain=10:film-grain-denoise=0``, what the remaster stage writes
  with ``film_grain: 10``);
* ``restored+av1``: restored, then AV1 without grain synthesis, for comparison.

Quality is VMAF of the decoded copy against the clean original (``actors.video_quality``, every
other frame), with PSNR and SSIM beside it; the damaged source itself is scored against the
original too (the "before", the table's ``(source)`` rows). Equal quality: the target is what today's
access copy gives, plain H.264 at the stage's default crf 18 (and, second, at x264's default
23). Against a clean original, VMAF does not always fall as crf rises for a noisy source: a
coarser encode smooths noise away too. So each variant is encoded over a grid of crfs (H.264
12-45 in steps of 3 and the target crfs, AV1 15-63 in steps of 6), and its size at the target
is the smallest the curve gives: where a step between two neighbouring crfs crosses the target
from above, the size is interpolated there (log bytes, linear in VMAF). Plain H.264 gets the
same search, so it may reach its own crf 18 score more cheaply at another crf. A variant that
never reaches the target says so. The goal: restored and encoded at least 30% smaller than the
plain encode. Last, SVT-AV1's speed presets are compared on one restored source at the stage's
default AV1 crf.

Torch runs VMAF on one thread here: on this shared two-core machine two threads were up to
eight times slower than one.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

import av
import cv2
import numpy as np
import torch

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from actors.access_codecs import AV1_CRF, AccessEncoding  # noqa: E402
from actors.restore import Restorer  # noqa: E402
from actors.video_quality import QualityMeter  # noqa: E402
from tests.benchmarks.media import still  # noqa: E402

os.environ.setdefault("SVT_LOG", "1")  # SVT-AV1 prints its configuration at info level otherwise
SIZE = (640, 360)
GRAIN_LEVEL = 10
TARGET_CRFS = (18, 23)
CRF_GRID = {"h264": tuple(sorted({*range(12, 46, 3), *TARGET_CRFS})), "av1": tuple(range(15, 64, 6))}


def panned(photo: str, frames: int) -> list[np.ndarray]:
    image = still(photo)
    scale = max(1.4, (SIZE[0] + 2 * frames) / image.shape[1], (SIZE[1] + frames) / image.shape[0])
    big = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    return [np.ascontiguousarray(big[k : k + SIZE[1], 2 * k : 2 * k + SIZE[0]]) for k in range(frames)]


def sensor_noise(frames: list[np.ndarray], seed: int) -> list[np.ndarray]:
    rng, gain = np.random.default_rng(seed), 4.0
    out = []
    for frame in frames:
        counts = rng.poisson(frame.astype(np.float64) * gain) / gain
        out.append(np.clip(counts + rng.normal(0, 2.0, frame.shape), 0, 255).astype(np.uint8))
    return out


def film_grain(frames: list[np.ndarray], seed: int) -> list[np.ndarray]:
    rng, amplitude = np.random.default_rng(seed), 6.0
    out = []
    for frame in frames:
        height, width = frame.shape[:2]
        grain = cv2.GaussianBlur(rng.normal(0, 1, (height, width)).astype(np.float32), (0, 0), 0.9)
        grain = grain / grain.std()
        chroma = cv2.GaussianBlur(rng.normal(0, 1, (height, width, 3)).astype(np.float32), (0, 0), 0.9)
        chroma = chroma / chroma.std()
        level = frame.astype(np.float32) / 255
        midtones = 4 * level * (1 - level) + 0.25  # grain shows most in the mid-tones
        noisy = frame + amplitude * midtones * (grain[..., None] + chroma / 3)
        out.append(np.clip(noisy, 0, 255).astype(np.uint8))
    return out


def restored(frames: list[np.ndarray]) -> list[np.ndarray]:
    return list(Restorer([{"op": "denoise", "params": {}}]).run(frames))


def encode(frames: list[np.ndarray], encoding: AccessEncoding, path: str) -> tuple[int, list[np.ndarray]]:
    """Bytes of the MP4 access copy and its frames as a player decodes them."""
    with av.open(path, "w", format="mp4", options={"movflags": "+faststart"}) as out:
        stream = cast(av.video.stream.VideoStream, out.add_stream(encoding.encoder, rate=25))
        stream.width, stream.height, stream.pix_fmt = SIZE[0], SIZE[1], "yuv420p"
        stream.codec_context.options = encoding.options()
        stream.codec_context.colorspace = av.video.reformatter.Colorspace.ITU709
        stream.codec_context.color_range = av.video.reformatter.ColorRange.MPEG
        for k, frame in enumerate(frames):
            picture = av.VideoFrame.from_ndarray(frame, format="rgb24").reformat(
                format="yuv420p",
                dst_colorspace=av.video.reformatter.Colorspace.ITU709,
                dst_color_range=av.video.reformatter.ColorRange.MPEG,
            )
            picture.pts = k
            out.mux(stream.encode(picture))
        out.mux(stream.encode())
    with av.open(path) as container:
        decoded = [
            f.reformat(
                format="rgb24",
                src_colorspace=av.video.reformatter.Colorspace.ITU709,
                src_color_range=av.video.reformatter.ColorRange.MPEG,
            ).to_ndarray()
            for f in container.decode(video=0)
        ]
    return os.path.getsize(path), decoded


def score(original: list[np.ndarray], frames: list[np.ndarray]) -> dict[str, float]:
    meter = QualityMeter(stride=2)
    for reference, distorted in zip(original, frames, strict=True):
        meter.add(reference, distorted)
    return meter.result()


class Variant:
    """One way of making the access copy, with its encodes remembered by crf."""

    def __init__(self, name: str, frames: list[np.ndarray], make: Callable[[int], AccessEncoding]) -> None:
        self.name, self.frames, self.make = name, frames, make
        self.codec = make(30).codec
        self.tried: dict[int, dict[str, float]] = {}

    def at(self, crf: int, original: list[np.ndarray], work: str) -> dict[str, float]:
        if crf not in self.tried:
            size, decoded = encode(self.frames, self.make(crf), os.path.join(work, "copy.mp4"))
            self.tried[crf] = {"crf": crf, "bytes": size, **score(original, decoded)}
        return self.tried[crf]

    def bytes_at(self, target: float, original: list[np.ndarray], work: str) -> dict[str, Any]:
        """The smallest size at which the crf grid's curve reaches VMAF ``target``."""
        points = [self.at(crf, original, work) for crf in CRF_GRID[self.codec]]
        best: dict[str, Any] | None = None
        for good, bad in zip(points, points[1:] + [None], strict=True):
            if good["vmaf"] < target:
                continue
            found: dict[str, Any] = {
                "crf": good["crf"],
                "bytes": good["bytes"],
                "vmaf": good["vmaf"],
                "psnr": good["psnr"],
            }
            if bad is not None and bad["vmaf"] < target:  # the curve crosses the target in this step
                share = (good["vmaf"] - target) / (good["vmaf"] - bad["vmaf"])
                found = {
                    "crf": good["crf"] + share * (bad["crf"] - good["crf"]),
                    "bytes": math.exp((1 - share) * math.log(good["bytes"]) + share * math.log(bad["bytes"])),
                    "vmaf": target,
                    "psnr": good["psnr"] + share * (bad["psnr"] - good["psnr"]),
                }
            if best is None or found["bytes"] < best["bytes"]:
                best = found
        if best is None:
            return {"reached": False, "best_vmaf": max(p["vmaf"] for p in points)}
        return {"reached": True, **best}


def variants(noisy: list[np.ndarray]) -> list[Variant]:
    clean = restored(noisy)
    return [
        Variant("h264", noisy, lambda crf: AccessEncoding.of("h264", crf=crf)),
        Variant("restored+h264", clean, lambda crf: AccessEncoding.of("h264", crf=crf)),
        Variant(
            "restored+av1 grain",
            clean,
            lambda crf: AccessEncoding.of("av1", av1_crf=crf, film_grain=GRAIN_LEVEL),
        ),
        Variant("restored+av1", clean, lambda crf: AccessEncoding.of("av1", av1_crf=crf)),
    ]


def run(photos: list[str], frames: int) -> list[dict[str, Any]]:
    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="bench-access-") as work:
        for number, photo in enumerate(photos):
            original = panned(photo, frames)
            for kind, damage in (("sensor", sensor_noise), ("grain", film_grain)):
                started = time.monotonic()
                noisy = damage(original, seed=number)
                source = score(original, noisy)
                candidates = variants(noisy)
                plain = candidates[0]
                for reference_crf in TARGET_CRFS:
                    target = plain.at(reference_crf, original, work)
                    row: dict[str, Any] = {
                        "source": f"{photo}/{kind}",
                        "source_vmaf": source["vmaf"],
                        "source_psnr": source["psnr"],
                        "target": f"h264 crf {reference_crf}",
                        "target_vmaf": target["vmaf"],
                        "variants": {},
                    }
                    for variant in candidates:
                        found = variant.bytes_at(float(target["vmaf"]), original, work)
                        row["variants"][variant.name] = found
                    results.append(row)
                print(f"  {photo}/{kind}: {time.monotonic() - started:.0f} s", file=sys.stderr)
    return results


def table(results: list[dict[str, Any]]) -> None:
    columns = ("crf", 5), ("KiB", 8), ("VMAF", 6), ("PSNR", 6), ("saved", 6)
    print(f"{'source':<16} {'target':<12} {'variant':<20} " + " ".join(f"{n:>{w}}" for n, w in columns))
    savings: dict[str, dict[str, list[float]]] = {}
    for row in results:
        found = row["variants"]
        plain = found["h264"]["bytes"]
        if row["target"] == f"h264 crf {TARGET_CRFS[0]}":  # before: the damaged source itself
            print(
                f"{row['source']:<16} {'(source)':<12} {'damaged, not encoded':<20} {'':>5} {'':>8} "
                f"{row['source_vmaf']:6.1f} {row['source_psnr']:6.2f}"
            )
        for name, item in found.items():
            head = f"{row['source']:<16} {row['target']:<12} {name:<20}"
            if not item["reached"]:
                print(f"{head} never reaches VMAF {row['target_vmaf']:.1f} (best {item['best_vmaf']:.1f})")
                continue
            saved = 1 - item["bytes"] / plain
            savings.setdefault(row["target"], {}).setdefault(name, []).append(saved)
            print(
                f"{head} {item['crf']:5.1f} {item['bytes'] / 1024:8.1f} {item['vmaf']:6.1f} "
                f"{item['psnr']:6.2f} {saved:6.0%}"
            )
    print("\nmean size saved against plain H.264 at equal VMAF (sources where the variant reached it):")
    for target, per_variant in savings.items():
        parts = [f"{name} {np.mean(values):.0%} ({len(values)})" for name, values in per_variant.items()]
        print(f"  at {target}: " + ", ".join(parts))


def presets(photo: str, frames: int, crf: int) -> list[dict[str, Any]]:
    """SVT-AV1's speed presets on one restored source at one crf: size, VMAF and encoding time."""
    original = panned(photo, frames)
    clean = restored(sensor_noise(original, seed=0))
    found = []
    with tempfile.TemporaryDirectory(prefix="bench-access-") as work:
        for preset in (4, 6, 8, 10, 12):
            started = time.monotonic()
            size, decoded = encode(
                clean, AccessEncoding.of("av1", av1_crf=crf, av1_preset=preset), f"{work}/p.mp4"
            )
            seconds = time.monotonic() - started
            found.append({"preset": preset, "bytes": size, "seconds": seconds, **score(original, decoded)})
    return found


def presets_table(found: list[dict[str, Any]], photo: str, crf: int) -> None:
    print(f"\nSVT-AV1 presets, {photo}/sensor restored, crf {crf} (encode time includes decoding it again):")
    print(f"{'preset':>6} {'KiB':>8} {'VMAF':>6} {'s':>6}")
    for item in found:
        print(f"{item['preset']:>6} {item['bytes'] / 1024:8.1f} {item['vmaf']:6.2f} {item['seconds']:6.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", default="coffee,rocket")
    parser.add_argument("--frames", type=int, default=16)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(1)
    results = run(args.photos.split(","), args.frames)
    photo = args.photos.split(",")[0]
    speeds = presets(photo, args.frames, AV1_CRF)
    if args.json:
        print(json.dumps({"access_copies": results, "av1_presets": speeds}, indent=2, default=float))
    else:
        table(results)
        presets_table(speeds, photo, AV1_CRF)


if __name__ == "__main__":
    main()
