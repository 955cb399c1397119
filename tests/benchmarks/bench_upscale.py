"""Super-resolution benchmark: the committed x2 network against bicubic and Lanczos, and its speed.

Run ``python tests/benchmarks/bench_upscale.py`` (``--json`` for machine-readable output).

Quality. The three scikit-image photographs held out of training (``HELD_OUT`` in
``jobs/train_upscaler.py``: chelsea, coffee, rocket) are downscaled x2 with antialiased bicubic
(the usual SR protocol, MATLAB ``imresize``-like), upscaled back by each method, and compared
with the originals: PSNR and SSIM on BT.601 studio-range luma with a 2-pixel border cropped,
as SR papers report. A second table repeats it with archive-like low-resolution input (grain
σ 3 and JPEG q 75 on the small image) to show what the damaged half of the training buys;
the target is still the clean original. Bicubic and Lanczos are OpenCV's (``INTER_CUBIC``,
``INTER_LANCZOS4``).

Throughput. Frames per second for one 640x360 RGB frame to 1280x720 (a frame of
``bigbuckbunny.mp4``), for the network on one thread and on all cores, and for Lanczos; best
of ``--repeat`` runs after a warm-up, since the machine is shared.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

import av
import cv2
import numpy as np
import torch

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from actors.upscale import Upscaler  # noqa: E402
from jobs.samples import sample_file  # noqa: E402
from jobs.train_upscaler import HELD_OUT, baselines, evaluate  # noqa: E402


def archive_like(upscale: Callable[[np.ndarray], np.ndarray]) -> Callable[[np.ndarray], np.ndarray]:
    """The same method fed a grainy, JPEG-compressed low-resolution image (seeded)."""

    def damaged(small: np.ndarray) -> np.ndarray:
        rng = np.random.default_rng(0)
        noisy = np.clip(small + rng.normal(0, 3.0, small.shape) + 0.5, 0, 255).astype(np.uint8)
        bgr = cv2.cvtColor(noisy, cv2.COLOR_RGB2BGR)
        encoded = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, 75])[1]
        return upscale(cv2.cvtColor(cv2.imdecode(encoded, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB))

    return damaged


def print_table(title: str, results: dict[str, dict[str, dict[str, float]]], target: str = "") -> None:
    print(f"\n{title}")
    names = [*HELD_OUT, "mean"]
    print(f"{'method':10}" + "".join(f"{n:>22}" for n in names))
    for method, per_image in results.items():
        cells = (f"{per_image[n]['psnr']:>12.2f} dB {per_image[n]['ssim']:.4f}" for n in names)
        print(f"{method:10}" + "".join(cells))
    gain = results["network"]["mean"]["psnr"] - results["bicubic"]["mean"]["psnr"]
    print(f"network over bicubic: {gain:+.2f} dB{target}")


def throughput(upscaler: Upscaler, repeat: int) -> dict[str, float]:
    with av.open(str(sample_file("bigbuckbunny.mp4"))) as container:
        frame = next(container.decode(video=0)).to_ndarray(format="rgb24")
    frame = cv2.resize(frame, (640, 360), interpolation=cv2.INTER_AREA)
    lanczos = Upscaler(2, method="lanczos")
    figures = {}
    for label, method, threads in (
        ("network_1_thread", upscaler, 1),
        (f"network_{torch.get_num_threads()}_threads", upscaler, torch.get_num_threads()),
        ("lanczos", lanczos, 1),
    ):
        torch.set_num_threads(threads)
        assert method(frame).shape == (720, 1280, 3)
        best = 0.0
        for _ in range(repeat):
            started = time.perf_counter()
            method(frame)
            best = max(best, 1.0 / (time.perf_counter() - started))
        figures[f"fps_640x360_to_1280x720_{label}"] = best
        print(f"upscale 640x360 -> 1280x720, {label.replace('_', ' ')}: {best:.2f} fps", flush=True)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    upscaler = Upscaler(2, device="cpu")
    print(f"model {upscaler.model} version {upscaler.version}; held out: {', '.join(HELD_OUT)}")
    methods = {"network": upscaler, **baselines()}
    clean = evaluate(methods)
    print_table("x2 from a clean bicubic downscale: PSNR (luma) and SSIM against the original", clean,
                " (target +0.50)")
    damaged = evaluate({name: archive_like(method) for name, method in methods.items()})
    print_table("x2 from a grainy, JPEG-compressed downscale (grain 3, q 75)", damaged)
    report = {"clean": clean, "archive_like": damaged, "throughput": throughput(upscaler, args.repeat)}
    if args.json:
        print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
