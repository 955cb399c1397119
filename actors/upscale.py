"""Super-resolution ×2 (and ×4 as two passes) with the project's own small network.

No pretrained super-resolution model can be had offline (docs/models.md), so the
project trains a small one itself (``jobs/train_upscaler.py``) and commits its
weights beside this module. The network sees only luma and predicts a residual
over bicubic: the eye resolves detail in luma, chroma is smooth enough for
bicubic, and learning a correction to a good interpolator converges in minutes
on one CPU core where learning the whole image would not.

Frames of any size go through in tiles. Each tile is cut with a margin at
least as wide as the network's receptive field and only its core is kept, so
tiled output equals untiled output exactly (no seams, nothing to blend) while
memory stays bounded by the tile size, not the frame size.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from actors.models import load_checkpoint, pick_device
from actors.restore.pixels import to_uint8

MODEL_NAME = "archivist-upscaler-x2"
DEFAULT_WEIGHTS = Path(__file__).parent / "data" / "upscaler_x2.pt"
METHODS = ("network", "lanczos")
FACTORS = (1, 2, 4)


class UpscalerNet(nn.Module):
    """Residual CNN on luma: features at low resolution, PixelShuffle, plus bicubic."""

    def __init__(self, channels: int = 32, blocks: int = 3) -> None:
        super().__init__()
        self.config = {"channels": channels, "blocks": blocks}
        self.head = nn.Conv2d(1, channels, 3, padding=1)
        self.body = nn.ModuleList(
            nn.Sequential(
                nn.Conv2d(channels, channels, 3, padding=1),
                nn.ReLU(inplace=True),
                nn.Conv2d(channels, channels, 3, padding=1),
            )
            for _ in range(blocks)
        )
        self.tail = nn.Conv2d(channels, 4, 3, padding=1)

    @property
    def receptive_radius(self) -> int:
        """Low-resolution pixels on each side that influence one output pixel (one per 3×3 conv)."""
        return 2 + 2 * len(self.body)

    def forward(self, luma: torch.Tensor) -> torch.Tensor:
        """``luma``: (N, 1, H, W) in 0..1; returns (N, 1, 2H, 2W), not clamped."""
        features = F.relu(self.head(luma))
        for block in self.body:
            features = features + block(features)
        base = F.interpolate(luma, scale_factor=2, mode="bicubic", align_corners=False)
        return base + F.pixel_shuffle(self.tail(features), 2)


def load_network(path: str | Path | None = None) -> tuple[UpscalerNet, str]:
    """The network and its version (the weights' sha256 prefix); a clear error naming the file."""
    path = Path(path) if path is not None else DEFAULT_WEIGHTS
    net, version = load_checkpoint(path, UpscalerNet, model=MODEL_NAME, trainer="archivist train upscaler")
    assert isinstance(net, UpscalerNet)
    return net, version


class Upscaler:
    """Upscales RGB (or grey) uint8 frames by 1, 2 or 4; the model is loaded once.

    ``method="lanczos"`` is the fallback that needs no weights: use it where
    the network is too slow for the hardware at hand.
    """

    def __init__(
        self,
        factor: int = 2,
        *,
        method: str = "network",
        weights: str | Path | None = None,
        device: str | None = None,
        tile: int | None = None,
    ) -> None:
        if factor not in FACTORS:
            raise ValueError(f"upscale factor must be one of {FACTORS}, not {factor!r}")
        if method not in METHODS:
            raise ValueError(f"upscale method must be one of {METHODS}, not {method!r}")
        self.factor = factor
        self.method = method if factor > 1 else "none"
        self.net: UpscalerNet | None = None
        self.device = torch.device("cpu")
        self.version = ""
        if self.method == "network":
            self.device = pick_device(device)
            net, self.version = load_network(weights)
            self.net = net.to(self.device)
        elif self.method == "lanczos":
            self.version = f"opencv-{cv2.__version__}"
        # Bigger tiles amortise kernel launches on a GPU; on a CPU they only cost memory.
        self.tile = tile or (512 if self.device.type == "cuda" else 192)

    @property
    def model(self) -> str:
        return {"network": MODEL_NAME, "lanczos": "lanczos4", "none": "none"}[self.method]

    def manifest(self) -> dict[str, Any]:
        """What the manifest records of this (a remaster is reproducible from its manifest)."""
        return {
            "model": self.model,
            "version": self.version,
            "factor": self.factor,
            "method": self.method,
            "device": str(self.device),
        }

    def __call__(self, frame: np.ndarray) -> np.ndarray:
        for _ in range({1: 0, 2: 1, 4: 2}[self.factor]):
            frame = self._times_two(frame)
        return frame

    def _times_two(self, frame: np.ndarray) -> np.ndarray:
        height, width = frame.shape[:2]
        if self.net is None:
            return cv2.resize(frame, (2 * width, 2 * height), interpolation=cv2.INTER_LANCZOS4)
        if frame.ndim == 2:
            return to_uint8(self.upscale_luma(frame.astype(np.float32) / 255.0) * 255.0)
        ycrcb = cv2.cvtColor(frame, cv2.COLOR_RGB2YCrCb)
        luma = to_uint8(self.upscale_luma(ycrcb[..., 0].astype(np.float32) / 255.0) * 255.0)
        chroma = cv2.resize(ycrcb[..., 1:], (2 * width, 2 * height), interpolation=cv2.INTER_CUBIC)
        return cv2.cvtColor(np.dstack([luma, chroma]), cv2.COLOR_YCrCb2RGB)

    @torch.inference_mode()
    def upscale_luma(self, luma: np.ndarray) -> np.ndarray:
        """×2 on a float32 luma plane in 0..1, tile by tile; returns float32 (2H, 2W)."""
        assert self.net is not None
        height, width = luma.shape
        margin = self.net.receptive_radius + 2
        out = np.empty((2 * height, 2 * width), np.float32)
        source = torch.from_numpy(np.ascontiguousarray(luma))
        for y0 in range(0, height, self.tile):
            for x0 in range(0, width, self.tile):
                y1, x1 = min(y0 + self.tile, height), min(x0 + self.tile, width)
                top, left = max(y0 - margin, 0), max(x0 - margin, 0)
                bottom, right = min(y1 + margin, height), min(x1 + margin, width)
                patch = source[top:bottom, left:right].to(self.device)[None, None]
                result = self.net(patch)[0, 0]
                core = result[2 * (y0 - top) : 2 * (y1 - top), 2 * (x0 - left) : 2 * (x1 - left)]
                out[2 * y0 : 2 * y1, 2 * x0 : 2 * x1] = core.float().cpu().numpy()
        return out
