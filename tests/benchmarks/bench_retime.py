"""Retiming benchmark: dropped frames rebuilt by repetition, blending and motion-compensated interpolation.

Run ``python tests/benchmarks/bench_retime.py`` (``--json`` for machine-readable output, ``--repeat``
for the throughput runs). It takes a few minutes on two cores.

Quality. Every other frame of each clip is dropped and rebuilt from its two neighbours at phase 0.5,
the way a 12.5 fps source retimed to 25 fps needs it: (a) repetition (the earlier frame held, what a
player does), (b) blending (the two averaged), (c) ``actors.restore.retime.interpolate``, which is
what the ``Retimer`` emits (motion-compensated, the nearer frame at a cut). Each is compared with the
dropped frame: PSNR over all rebuilt frames and channels (from the mean squared error), SSIM as the
mean over rebuilt frames of luma SSIM. Nothing in the retimer is trained; its few constants (cut
threshold, consistency tolerance, visibility density, sharpening reach) were chosen by looking at the
first group of clips, so the second group was made only after they were fixed and was never looked
at before its figures were printed: that group is the held-out measurement.

- looked at while tuning: three scikit-image photographs filmed by a virtual camera (``astronaut``
  panned right with a disc of ``coins`` crossing left; ``coffee`` zoomed in with a disc of
  ``chelsea`` crossing; ``rocket`` panned diagonally), 21 frames of 384x288 each; and the bundled
  sample clips ``bikes.mp4`` (640x272, 250 frames, five cuts, fast pans and riders crossing),
  ``bigbuckbunny.mp4`` (scaled to 640x360, 132 frames) and ``carphone_pristine.mp4`` (176x144,
  120 frames).
- held out: ``chelsea`` panned left with a disc of ``astronaut`` crossing right, the left
  ``stereo_motorcycle`` image zoomed out with a disc of ``coffee`` falling, and
  ``hubble_deep_field`` tilted down with a disc of ``rocket`` crossing diagonally; same size.

The synthetic clips are rendered from the photographs at or below their own resolution (bicubic
warps), each disc with an antialiased edge, so every rebuilt frame has an exact truth and the discs
cover and uncover the background (occlusions).

Throughput. Interpolated frames per second at 720x576 (frames of ``bigbuckbunny.mp4`` scaled), for
one in-between frame per pair (``interpolate``: flows, cut test and projection) and for a whole
18 -> 24 fps ``Retimer`` stream (output frames per second; three of every four are interpolated),
with OpenCV on one thread and on all cores; best of ``--repeat`` runs, since the machine is shared.

Measured here (2 shared cores, load average 7-13 from other jobs): interpolation over blending
+9.78 dB on the clips looked at (+21.97, +11.91, +20.56 on the three filmed photographs; +0.34 on
``bikes.mp4``, +3.23 on ``bigbuckbunny.mp4``, +0.67 on ``carphone_pristine.mp4``) and +13.26 dB on
the held-out ones (+13.16, +9.95, +16.68). On the real clips alone the mean is +1.41 dB, short of
the +2 dB goal: ``bikes.mp4`` at 12.5 fps moves up to 50 px a frame with motion blur, and
``carphone_pristine.mp4`` is 176x144, too small for DIS's coarse pyramid to follow a moving face.
2.4-2.8 interpolated frames a second at 720x576; the 18 -> 24 stream gives 2.6-3.5 output frames a
second.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import av
import cv2
import numpy as np
from skimage.metrics import structural_similarity

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from actors.restore.retime import FramePair, Retimer, interpolate  # noqa: E402
from jobs.samples import sample_file  # noqa: E402

SIZE = (288, 384)
FRAMES = 21


def photo(name: str) -> np.ndarray:
    import skimage.data

    image = getattr(skimage.data, name)()
    if isinstance(image, tuple):  # stereo_motorcycle: (left, right, disparity)
        image = image[0]
    if image.ndim == 2:
        image = np.dstack([image] * 3)
    return np.ascontiguousarray(image[..., :3])


def disc(name: str, radius: int, centre: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """A round patch of a photograph and its antialiased alpha."""
    cy, cx = centre
    patch = photo(name)[cy - radius : cy + radius, cx - radius : cx + radius].astype(np.float32)
    yy, xx = np.mgrid[-radius:radius, -radius:radius] + 0.5
    return patch, np.clip(radius - np.hypot(yy, xx), 0.0, 1.0).astype(np.float32)


def filmed(
    background: str,
    pan: tuple[float, float] = (0.0, 0.0),
    zoom: float = 0.0,
    sprite: tuple[np.ndarray, np.ndarray] | None = None,
    start: tuple[float, float] = (0.0, 0.0),
    step: tuple[float, float] = (0.0, 0.0),
) -> list[np.ndarray]:
    """A photograph filmed by a camera panning ``pan`` px and zooming ``zoom`` a frame, a disc crossing."""
    image = photo(background)
    height, width = SIZE
    image_height, image_width = image.shape[:2]
    frames = []
    for k in range(FRAMES):
        scale = 1.0 / (1.0 + zoom * k)
        centre_x = image_width / 2 + pan[0] * (k - FRAMES / 2)
        centre_y = image_height / 2 + pan[1] * (k - FRAMES / 2)
        camera = np.array(
            [[scale, 0, centre_x - scale * width / 2], [0, scale, centre_y - scale * height / 2]], np.float32
        )
        frame = cv2.warpAffine(
            image,
            camera,
            (width, height),
            flags=cv2.INTER_CUBIC | cv2.WARP_INVERSE_MAP,
            borderMode=cv2.BORDER_REFLECT,
        ).astype(np.float32)
        if sprite is not None:
            patch, alpha = sprite
            radius = patch.shape[0] // 2
            x, y = start[0] + step[0] * k, start[1] + step[1] * k
            place = np.array([[1, 0, x - radius], [0, 1, y - radius]], np.float32)
            layer = cv2.warpAffine(patch, place, (width, height), flags=cv2.INTER_LINEAR)
            cover = cv2.warpAffine(alpha, place, (width, height), flags=cv2.INTER_LINEAR)[..., None]
            frame = frame * (1 - cover) + layer * cover
        frames.append(np.clip(frame + 0.5, 0, 255).astype(np.uint8))
    return frames


def video(name: str, size: tuple[int, int] | None = None, limit: int | None = None) -> list[np.ndarray]:
    frames = []
    with av.open(str(sample_file(name))) as container:
        for frame in container.decode(video=0):
            image = frame.to_ndarray(format="rgb24")
            frames.append(cv2.resize(image, size, interpolation=cv2.INTER_AREA) if size else image)
            if limit and len(frames) == limit:
                break
    return frames


def tuned_clips() -> dict[str, list[np.ndarray]]:
    return {
        "astronaut pan, coins disc": filmed(
            "astronaut", pan=(5, 1), sprite=disc("coins", 40, (150, 150)), start=(300, 150), step=(-7, 1)
        ),
        "coffee zoom, cat disc": filmed(
            "coffee", zoom=0.012, sprite=disc("chelsea", 45, (110, 230)), start=(60, 60), step=(6, 4)
        ),
        "rocket pan": filmed("rocket", pan=(-3, 4)),
        "bikes.mp4": video("bikes.mp4"),
        "bigbuckbunny.mp4": video("bigbuckbunny.mp4", (640, 360)),
        "carphone_pristine.mp4": video("carphone_pristine.mp4"),
    }


def held_out_clips() -> dict[str, list[np.ndarray]]:
    return {
        "chelsea pan, astronaut disc": filmed(
            "chelsea", pan=(-4, 0), sprite=disc("astronaut", 36, (380, 150)), start=(40, 140), step=(9, -1)
        ),
        "motorcycle zoom out, coffee disc": filmed(
            "stereo_motorcycle",
            zoom=-0.01,
            sprite=disc("coffee", 42, (200, 300)),
            start=(200, 30),
            step=(1, 8),
        ),
        "hubble tilt, rocket disc": filmed(
            "hubble_deep_field",
            pan=(1, 6),
            sprite=disc("rocket", 30, (300, 330)),
            start=(340, 250),
            step=(-8, -6),
        ),
    }


def rebuild(frames: list[np.ndarray]) -> dict[str, dict[str, float]]:
    """PSNR and SSIM of every dropped frame (odd indices) rebuilt by each method."""
    errors: dict[str, list[float]] = {"repeat": [], "blend": [], "interpolate": []}
    ssims: dict[str, list[float]] = {name: [] for name in errors}
    cuts = 0
    for i in range(0, len(frames) - 2, 2):
        a, truth, b = frames[i], frames[i + 1], frames[i + 2]
        pair = FramePair(a, b)
        cuts += pair.is_cut
        made = {
            "repeat": a,
            "blend": ((a.astype(np.uint16) + b + 1) // 2).astype(np.uint8),
            "interpolate": interpolate(a, b, 0.5),
        }
        grey_truth = cv2.cvtColor(truth, cv2.COLOR_RGB2GRAY)
        for name, image in made.items():
            errors[name].append(float(np.mean((image.astype(np.float64) - truth) ** 2)))
            ssims[name].append(structural_similarity(grey_truth, cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)))
    result = {
        name: {
            "psnr": float(10 * np.log10(255.0**2 / max(float(np.mean(errors[name])), 1e-12))),
            "ssim": float(np.mean(ssims[name])),
        }
        for name in errors
    }
    result["pairs"] = {"rebuilt": len(errors["blend"]), "cuts": cuts}
    return result


def quality(title: str, clips: dict[str, list[np.ndarray]]) -> dict[str, dict[str, dict[str, float]]]:
    print(f"\n{title}: PSNR (dB) / SSIM of the dropped frames rebuilt")
    print(f"{'clip':34}{'frames':>7}{'cuts':>5}{'repeat':>17}{'blend':>17}{'interpolate':>17}{'gain':>9}")
    results = {}
    for name, frames in clips.items():
        figures = rebuild(frames)
        results[name] = figures
        cells = "".join(f"{figures[m]['psnr']:>9.2f} {figures[m]['ssim']:.4f}" for m in METHODS)
        gain = figures["interpolate"]["psnr"] - figures["blend"]["psnr"]
        pairs = figures["pairs"]
        print(f"{name:34}{pairs['rebuilt']:>7}{pairs['cuts']:>5}{cells}{gain:>+9.2f}", flush=True)
    means = {
        m: {k: float(np.mean([r[m][k] for r in results.values()])) for k in ("psnr", "ssim")} for m in METHODS
    }
    cells = "".join(f"{means[m]['psnr']:>9.2f} {means[m]['ssim']:.4f}" for m in METHODS)
    gain = means["interpolate"]["psnr"] - means["blend"]["psnr"]
    print(f"{'mean over clips':46}{cells}{gain:>+9.2f}  (goal: +2.00 over blending)")
    results["mean"] = means
    return results


METHODS = ("repeat", "blend", "interpolate")


def throughput(repeat: int) -> dict[str, float]:
    frames = video("bigbuckbunny.mp4", (720, 576), limit=25)
    figures = {}
    for threads in (1, cv2.getNumberOfCPUs()):
        cv2.setNumThreads(threads)
        interpolate(frames[0], frames[2], 0.5)  # warm-up: OpenCV's first calls allocate
        best_pair = best_stream = 0.0
        for _ in range(repeat):
            started = time.perf_counter()
            for i in range(0, 8, 2):
                interpolate(frames[i], frames[i + 2], 0.5)
            best_pair = max(best_pair, 4 / (time.perf_counter() - started))
            started = time.perf_counter()
            retimer = Retimer(18, 24)
            count = sum(1 for _ in retimer.run((frame, i / 18) for i, frame in enumerate(frames[:18])))
            best_stream = max(best_stream, count / (time.perf_counter() - started))
        figures[f"interpolate_fps_720x576_{threads}_threads"] = best_pair
        figures[f"retime_18_to_24_output_fps_720x576_{threads}_threads"] = best_stream
        print(
            f"720x576, {threads} thread(s): {best_pair:.2f} interpolated frames/s; "
            f"18 -> 24 fps stream {best_stream:.2f} output frames/s",
            flush=True,
        )
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    report: dict[str, Any] = {
        "tuned_on": quality("Clips looked at while choosing the constants", tuned_clips()),
        "held_out": quality("Held-out clips, made after the constants were fixed", held_out_clips()),
    }
    print()
    report["throughput"] = throughput(args.repeat)
    if args.json:
        print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
