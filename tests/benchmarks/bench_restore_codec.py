"""Learned restoration benchmark: real codec damage repaired, clean footage left alone, speed, memory.

Run ``python tests/benchmarks/bench_restore_codec.py`` (``--json`` for machine-readable output,
``--skip-memory`` to leave out the subprocess runs).

Held-out material, never trained on (``jobs/train_restorer.py``: ``HELD_OUT_STILLS`` and
``HELD_OUT_CLIPS``): eight-frame slow pans (2 px a frame) over the photographs ``chelsea``,
``coffee`` and ``rocket``, eight frames of the last shot of ``bikes.mp4`` (frame 207 on; training
used frames 0-186) and of ``carphone_pristine.mp4`` (never used). Each goes through the fixed
low-rate round trips ``HELD_OUT_DAMAGE`` (libx264 at crf 35 and 40, mpeg2video capped at 0.10
and 0.05 bits per pixel, both with B-frames), real encodes by PyAV's FFmpeg.

Quality. ``--restore auto`` as the remaster stage runs it: the damaged clip is measured, with the
codec and bits per pixel of the copy as the probe reports them (``source_codec``,
``source_bpp``), planned and restored; PSNR over all frames and channels (from the mean squared
error) and SSIM (mean over frames of luma SSIM) of the damaged input and of the restored output
against the original. The table names the operations auto chose. Goal: +1.0 dB on average.

Clean input. The same held-out clips undamaged, planned by auto three ways: no source
information, a lossless source (FFV1), and a good H.264 copy (crf 18, with its real rate): the
PSNR of the output against the original must stay within 0.05 dB of the input's.

Throughput. Frames per second of the network (optical flow to both neighbours, warps, tiled
inference) on 720x576 frames, on one thread and on all cores; best of ``--repeat``.

Memory. A fresh subprocess restores 8 and then, in another, 40 frames of 720x576 footage with the
network, streaming (``Restorer.run``); a thread samples VmRSS every 20 ms. Peaks must match within
10 %: memory is bounded by the tile and the op's window, not by the length.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import torch
from skimage.metrics import structural_similarity

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from actors.restore import Restorer, ShotMeter, make_plan, parse_ops  # noqa: E402
from actors.restore.codec_damage import CodecDamage, Generation  # noqa: E402
from actors.restore.learned import ArtefactRemover  # noqa: E402
from jobs.train_restorer import HELD_OUT_DAMAGE, held_out_clips, load_still, psnr  # noqa: E402


def ssim(clean: list[np.ndarray], test: list[np.ndarray]) -> float:
    def grey(frame: np.ndarray) -> np.ndarray:
        return cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)

    return float(np.mean([structural_similarity(grey(c), grey(t)) for c, t in zip(clean, test, strict=True)]))


def auto_restore(frames: list[np.ndarray], source: dict) -> tuple[list[np.ndarray], list[str]]:
    meter = ShotMeter()
    for frame in frames:
        meter.add(frame)
    plan = make_plan({**meter.result(), **source}, parse_ops("auto"))
    return list(Restorer(plan).run(frames)), [step["op"] for step in plan.ops]


def quality(clips: dict[str, list[np.ndarray]]) -> dict:
    rows, gains = [], []
    for damage_name, damage in HELD_OUT_DAMAGE.items():
        for clip_name, clean in clips.items():
            copy = damage.copy(clean)
            restored, ops = auto_restore(copy.frames, copy.source())
            before, after = psnr(clean, copy.frames), psnr(clean, restored)
            row = {
                "damage": damage_name,
                "clip": clip_name,
                "bits_per_pixel": copy.bits_per_pixel,
                "ops": ops,
                "psnr_before": before,
                "psnr_after": after,
                "ssim_before": ssim(clean, copy.frames),
                "ssim_after": ssim(clean, restored),
            }
            rows.append(row)
            gains.append(after - before)
            print(
                f"{damage_name:15} {clip_name:22} {copy.bits_per_pixel or 0:.3f} bpp  PSNR {before:6.2f} -> "
                f"{after:6.2f} dB ({after - before:+5.2f})  SSIM {row['ssim_before']:.4f} -> "
                f"{row['ssim_after']:.4f}  auto: {', '.join(ops) or '-'}",
                flush=True,
            )
    mean_gain = float(np.mean(gains))
    print(
        f"mean PSNR gain {mean_gain:+.2f} dB over {len(gains)} cases (goal +1.0): "
        f"{'met' if mean_gain >= 1.0 else 'NOT met'}",
        flush=True,
    )
    return {"rows": rows, "mean_gain_db": mean_gain}


def clean_input(clips: dict[str, list[np.ndarray]]) -> dict:
    rows, worst, touched = [], 0.0, 0
    for clip_name, clean in clips.items():
        good = CodecDamage((Generation("h264", 18),)).copy(clean)
        cases = {
            "no source info": (clean, {}),
            "ffv1 source": (clean, {"source_codec": "ffv1", "source_bpp": 6.0}),
            "h264 crf 18 copy": (good.frames, good.source()),
        }
        for case, (frames, source) in cases.items():
            restored, ops = auto_restore(frames, source)
            untouched = all(np.array_equal(r, f) for r, f in zip(restored, frames, strict=True))
            row = {"clip": clip_name, "case": case, "ops": ops, "untouched": untouched}
            if frames is clean:  # the original has no finite PSNR against itself: auto must leave it be
                touched += not untouched
                shown = "untouched" if untouched else f"changed: output {psnr(clean, restored):.2f} dB"
            else:
                row["psnr_change"] = change = psnr(clean, restored) - psnr(clean, frames)
                worst = min(worst, change)
                shown = f"PSNR change {change:+.3f} dB"
            rows.append(row)
            print(f"clean {clip_name:24} {case:17} auto: {', '.join(ops) or '-':24} {shown}", flush=True)
    print(
        f"clean input: {touched} of {2 * len(clips)} originals changed by auto; worst PSNR change on the "
        f"crf 18 copies {worst:+.3f} dB (goal within 0.05): "
        f"{'met' if worst >= -0.05 and not touched else 'NOT met'}",
        flush=True,
    )
    return {"rows": rows, "worst_change_db": worst, "originals_changed": touched}


def pal_frames(count: int) -> list[np.ndarray]:
    """A pan over a held-out photograph at 720x576 (PAL SD), H.264-damaged as a real copy would be."""
    photo = cv2.resize(load_still("rocket.jpg"), (960, 640), interpolation=cv2.INTER_CUBIC)
    frames = [np.ascontiguousarray(photo[32:608, 4 * (k % 50) : 4 * (k % 50) + 720]) for k in range(count)]
    return CodecDamage((Generation("h264", 35),)).apply(frames)


def throughput(repeat: int) -> dict[str, float]:
    frames = pal_frames(6)
    figures = {}
    for threads in (1, torch.get_num_threads()):
        torch.set_num_threads(threads)
        cv2.setNumThreads(threads)
        remover = ArtefactRemover(device="cpu")
        best = 0.0
        for _ in range(repeat):
            started = time.perf_counter()
            for i in range(len(frames)):
                remover.restore(frames, i)
            best = max(best, len(frames) / (time.perf_counter() - started))
        figures[f"fps_720x576_{threads}_threads"] = best
        print(f"network, 720x576, flow + tiled inference, {threads} thread(s): {best:.2f} fps", flush=True)
    if torch.cuda.is_available():
        remover = ArtefactRemover(device="cuda")
        started = time.perf_counter()
        for i in range(len(frames)):
            remover.restore(frames, i)
        figures["fps_720x576_cuda"] = len(frames) / (time.perf_counter() - started)
        print(f"network, 720x576, CUDA: {figures['fps_720x576_cuda']:.2f} fps", flush=True)
    return figures


WORKER = """
import sys, threading
sys.path.insert(0, {repo!r})
sys.path.insert(0, {bench!r})
from bench_restore_codec import pal_frames
from actors.restore import Restorer
from actors.restore.ops import Artefacts


def rss_mb():
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS:")) / 1024


frames = pal_frames(8)
op = Artefacts()
op.bind(None)
restorer = Restorer([op])
baseline = peak = rss_mb()
done = threading.Event()


def sample():
    global peak
    while not done.is_set():
        peak = max(peak, rss_mb())
        done.wait(0.02)


sampler = threading.Thread(target=sample, daemon=True)
sampler.start()
count = sum(1 for _ in restorer.run(frames[k % len(frames)] for k in range({count})))
done.set()
sampler.join()
print(baseline, peak, count)
"""


def memory() -> dict[str, float]:
    figures: dict[str, float] = {}
    for label, count in (("short", 8), ("long", 40)):
        script = WORKER.format(repo=str(REPO), bench=str(Path(__file__).parent), count=count)
        output = subprocess.run([sys.executable, "-c", script], check=True, capture_output=True, text=True)
        baseline, peak, frames = (float(v) for v in output.stdout.split())
        figures.update(
            {f"{label}_frames": frames, f"{label}_rss_loaded_mb": baseline, f"{label}_peak_rss_mb": peak}
        )
        print(
            f"restore worker, {label} ({frames:.0f} frames 720x576): peak RSS {peak:.0f} MB "
            f"({baseline:.0f} MB loaded, +{peak - baseline:.0f} MB working)",
            flush=True,
        )
    ratio = figures["long_peak_rss_mb"] / figures["short_peak_rss_mb"]
    figures["long_over_short"] = ratio
    print(f"peak RSS long / short: {ratio:.3f} ({'within' if abs(ratio - 1) <= 0.10 else 'OUTSIDE'} 10 %)")
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--skip-memory", action="store_true")
    args = parser.parse_args()
    clips = held_out_clips()
    report = {"quality": quality(clips), "clean": clean_input(clips), "throughput": throughput(args.repeat)}
    if not args.skip_memory:
        report["memory"] = memory()
    if args.json:
        print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
