"""Restoration benchmark: PSNR/SSIM gain on damaged sample footage, restore fps, worker memory.

Run ``python tests/benchmarks/bench_restore.py`` (``--json`` for machine-readable output,
``--skip-memory`` to leave out the slow remaster runs, ``--only-memory`` for just those).

Quality. The sample clips (``bikes.mp4`` at its own 640x272, 250 frames with five cuts, and
``bigbuckbunny.mp4`` scaled to 640x360, 132 frames) are the clean reference. Each is damaged
with ``actors.restore.damage.ArchiveDamage`` (seeded): each defect alone, then all together
(exposure flicker σ 5 %, 20 dust specks a frame, two wandering scratches, grain σ 8, JPEG
q 40 blocking). ``auto`` measures the damaged clip, plans, restores, and the result is compared
with the clean clip: PSNR over all frames and channels (from the mean squared error), SSIM as
the mean over frames of luma SSIM. The table also names the operations ``auto`` chose.

Throughput. Frames per second of the restore pipeline with every spatio-temporal operation on
(deblock, deflicker, dust, scratch, denoise) at 640x360, on one thread (``cv2.setNumThreads(1)``)
and on all cores; best of ``--repeat`` runs, since the machine is shared.

Memory. The whole remaster worker (``actors.remaster.Remasterer``: auto restore, x2 network,
FFV1 + H.264 encode, both passes) runs in a fresh subprocess over a short clip (the first 50
frames of ``bikes.mp4``, 640x272 -> 1280x544, re-encoded) and one five times longer (all 250).
A thread samples the process's resident set size (``VmRSS``, Linux) every 20 ms while it
works; the figures are the RSS with the model loaded and the peak while remastering (not
``ru_maxrss``, which importing torch alone sets higher than the work does). The short clip
is longer than x264's lookahead, so both reach the steady state; peaks must match within 10 %.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
from skimage.metrics import structural_similarity

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from actors.restore import Restorer, ShotMeter, make_plan, parse_ops  # noqa: E402
from actors.restore.damage import ArchiveDamage  # noqa: E402
from jobs.samples import sample_file  # noqa: E402

ALL_DAMAGE = {"flicker": 0.05, "dust": 20, "scratches": 2, "noise": 8.0, "jpeg_quality": 40}
CASES = {
    "flicker": {"flicker": 0.05},
    "dust": {"dust": 20},
    "scratches": {"scratches": 2},
    "grain": {"noise": 8.0},
    "blocking": {"jpeg_quality": 30},
    "all": ALL_DAMAGE,
}
CLIPS = {"bikes.mp4": None, "bigbuckbunny.mp4": (640, 360)}


def load_clip(name: str, size: tuple[int, int] | None, limit: int | None = None) -> list[np.ndarray]:
    frames = []
    with av.open(str(sample_file(name))) as container:
        for frame in container.decode(video=0):
            image = frame.to_ndarray(format="rgb24")
            frames.append(cv2.resize(image, size, interpolation=cv2.INTER_AREA) if size else image)
            if limit and len(frames) == limit:
                break
    return frames


def psnr_ssim(clean: list[np.ndarray], test: list[np.ndarray]) -> tuple[float, float]:
    mse = np.mean([np.mean((c.astype(np.float64) - t) ** 2) for c, t in zip(clean, test, strict=True)])

    def grey(frame: np.ndarray) -> np.ndarray:
        return cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)

    ssim = np.mean([structural_similarity(grey(c), grey(t)) for c, t in zip(clean, test, strict=True)])
    return float(10 * np.log10(255.0**2 / mse)), float(ssim)


def auto_restore(frames: list[np.ndarray]) -> tuple[list[np.ndarray], list[str]]:
    meter = ShotMeter()
    for frame in frames:
        meter.add(frame)
    plan = make_plan(meter.result(), parse_ops("auto"))
    return list(Restorer(plan).run(frames)), [step["op"] for step in plan.ops]


def quality() -> list[dict]:
    results = []
    for name, size in CLIPS.items():
        clean = load_clip(name, size)
        for case, damage in CASES.items():
            damaged = list(ArchiveDamage(seed=0, **damage).apply(clean))
            restored, ops = auto_restore(damaged)
            before, after = psnr_ssim(clean, damaged), psnr_ssim(clean, restored)
            results.append(
                {
                    "clip": name,
                    "damage": case,
                    "ops": ops,
                    "psnr_before": before[0],
                    "psnr_after": after[0],
                    "ssim_before": before[1],
                    "ssim_after": after[1],
                }
            )
            print(
                f"{name:18} {case:10} PSNR {before[0]:6.2f} -> {after[0]:6.2f} dB "
                f"({after[0] - before[0]:+5.2f})  SSIM {before[1]:.4f} -> {after[1]:.4f}  "
                f"auto: {', '.join(ops) or '-'}",
                flush=True,
            )
    return results


def throughput(repeat: int) -> dict[str, float]:
    clean = load_clip("bigbuckbunny.mp4", (640, 360), limit=40)
    damaged = list(ArchiveDamage(seed=0, **ALL_DAMAGE).apply(clean))
    meter = ShotMeter()
    for frame in damaged:
        meter.add(frame)
    plan = make_plan(meter.result(), parse_ops("deblock,deflicker,dust,scratch,denoise"))
    figures = {}
    for threads in (1, cv2.getNumberOfCPUs()):
        cv2.setNumThreads(threads)
        best = 0.0
        for _ in range(repeat):
            started = time.perf_counter()
            count = sum(1 for _ in Restorer(plan).run(damaged))
            best = max(best, count / (time.perf_counter() - started))
        figures[f"restore_fps_640x360_{threads}_threads"] = best
        print(f"restore, all five operations, 640x360, {threads} thread(s): {best:.1f} fps", flush=True)
    return figures


WORKER = """
import sys, threading, time
sys.path.insert(0, {repo!r})
import pyarrow as pa
from actors.remaster import Remasterer


def rss_mb():
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS:")) / 1024


remasterer = Remasterer(out_root={out!r}, restore="auto", upscale=2, device="cpu")
baseline = peak = rss_mb()
done = threading.Event()


def sample():
    global peak
    while not done.is_set():
        peak = max(peak, rss_mb())
        time.sleep(0.02)


sampler = threading.Thread(target=sample, daemon=True)
sampler.start()
started = time.perf_counter()
rows = remasterer(pa.table({{"asset_id": ["clip"], "uri": [{clip!r}]}})).to_pylist()
seconds = time.perf_counter() - started
done.set()
sampler.join()
assert rows[0]["status"] == "ok", rows[0]["error"]
print(baseline, peak, rows[0]["frame_count"], seconds)
"""


def write_clip(path: Path, frames: int) -> None:
    with av.open(str(sample_file("bikes.mp4"))) as source, av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = 640, 272, "yuv420p"
        stream.codec_context.options = {"crf": "18"}
        stream.codec_context.time_base = Fraction(1, 25)
        for index, frame in enumerate(source.decode(video=0)):
            if index == frames:
                break
            frame.pts, frame.time_base = index, Fraction(1, 25)
            out.mux(stream.encode(frame))
        out.mux(stream.encode())


def memory() -> dict[str, float]:
    figures: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for label, frames in (("short", 50), ("long", 250)):
            clip = Path(tmp) / f"{label}.mp4"
            write_clip(clip, frames)
            script = WORKER.format(repo=str(REPO), out=str(Path(tmp) / "out"), clip=str(clip))
            command = [sys.executable, "-c", script]
            output = subprocess.run(command, check=True, capture_output=True, text=True)
            baseline, peak, count, seconds = (float(v) for v in output.stdout.split())
            figures.update({f"{label}_frames": count, f"{label}_rss_loaded_mb": baseline,
                            f"{label}_peak_rss_mb": peak, f"{label}_fps": count / seconds})
            print(f"remaster worker, {label} clip ({count:.0f} frames 640x272 -> 1280x544): "
                  f"peak RSS {peak:.0f} MB ({baseline:.0f} MB with the model loaded, "
                  f"+{peak - baseline:.0f} MB working), "
                  f"{count / seconds:.2f} fps end to end", flush=True)
    ratio = figures["long_peak_rss_mb"] / figures["short_peak_rss_mb"]
    figures["long_over_short"] = ratio
    print(f"peak RSS long / short: {ratio:.3f} ({'within' if abs(ratio - 1) <= 0.10 else 'OUTSIDE'} 10 %)")
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--skip-memory", action="store_true")
    parser.add_argument("--only-memory", action="store_true")
    args = parser.parse_args()
    report = {} if args.only_memory else {"quality": quality(), "throughput": throughput(args.repeat)}
    if not args.skip_memory:
        report["memory"] = memory()
    if args.json:
        print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
