"""The project's own artefact-removal and denoising network, run tile by tile on one frame and its neighbours.

No pretrained restoration model can be had offline, so the project trains a
small one itself (``jobs/train_restorer.py``, weights committed beside the
upscaler's) on real codec round trips (``codec_damage``). It is a residual CNN
of the DnCNN/FFDNet family: it predicts the damage and subtracts it, which
converges in minutes where predicting the picture would not, and an untrained
(zero) last layer leaves a frame exactly as it was. As in FFDNet it works on
a half-resolution stack of pixel-unshuffled planes: four times fewer
positions for the same receptive field, which is what makes it usable on a
CPU. It is blind (it estimates the damage itself): the planner's measurements
decide whether it runs and with what ``strength`` its correction is applied.

It sees the frame to restore and its two neighbours, warped onto it by the
restore stage's own optical flow (``motion.warp_to``): codec noise and grain
differ between frames while the picture does not, so aligned neighbours tell
the two apart, and where the flow fails (occlusions) the network learns from
real clips to trust the current frame. Colour goes in as full-range YCrCb,
so chroma bleeding and chroma blocks are repaired too.

Tiles are cut with a margin wider than the receptive field from a frame
padded once, all the same size so they run as a batch; only their cores are
kept, so tiled output equals whole-frame output and memory is bounded by the
tile, not the frame.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from actors.models import load_checkpoint, pick_device
from actors.restore.motion import warp_to
from actors.restore.pixels import to_uint8

MODEL_NAME = "archivist-restorer"
DEFAULT_WEIGHTS = Path(__file__).resolve().parents[1] / "data" / "restorer.pt"
NEIGHBOURS = 1
"""Frames either side the network sees (its op's radius)."""


class RestorerNet(nn.Module):
    """Residual CNN over a window of aligned YCrCb frames at half resolution (pixel-unshuffled)."""

    def __init__(self, channels: int = 32, blocks: int = 4, frames: int = 2 * NEIGHBOURS + 1) -> None:
        super().__init__()
        self.config = {"channels": channels, "blocks": blocks, "frames": frames}
        self.frames = frames
        self.head = nn.Conv2d(3 * frames * 4, channels, 3, padding=1)
        # Residual blocks rather than DnCNN's plain chain with batch norm: they train in a few thousand
        # steps without it, and nothing depends on batch statistics when tiles are batched at inference.
        self.body = nn.ModuleList(
            nn.Sequential(
                nn.Conv2d(channels, channels, 3, padding=1),
                nn.ReLU(inplace=True),
                nn.Conv2d(channels, channels, 3, padding=1),
            )
            for _ in range(blocks)
        )
        self.tail = nn.Conv2d(channels, 3 * 4, 3, padding=1)

    @property
    def receptive_radius(self) -> int:
        """Full-resolution pixels on each side that influence one output pixel (2 per half-res 3×3 conv)."""
        return 2 * (2 * len(self.body) + 2) + 1

    def forward(self, window: torch.Tensor) -> torch.Tensor:
        """``window``: (N, 3 × frames, H, W) in 0..1, the frame to restore in the middle three planes,
        H and W even; returns its restored (N, 3, H, W) YCrCb, not clamped."""
        centre = window[:, 3 * (self.frames // 2) : 3 * (self.frames // 2) + 3]
        features = F.relu(self.head(F.pixel_unshuffle(window, 2)))
        for block in self.body:
            features = features + block(features)
        return centre + F.pixel_shuffle(self.tail(features), 2)


def load_network(path: str | Path | None = None) -> tuple[RestorerNet, str]:
    """The network and its version (the weights' sha256 prefix); a clear error naming the file."""
    path = Path(path) if path is not None else DEFAULT_WEIGHTS
    net, version = load_checkpoint(path, RestorerNet, model=MODEL_NAME, trainer="archivist train restorer")
    assert isinstance(net, RestorerNet)
    return net, version


def aligned_window(frames: Sequence[np.ndarray], i: int, radius: int = NEIGHBOURS) -> list[np.ndarray]:
    """Frame ``i`` and ``radius`` neighbours either side warped onto it, RGB uint8, in time order.

    At the ends of a shot (or for a still) a missing neighbour is the frame
    itself: the network has seen that in training and treats it as no help.
    """
    centre = frames[i]
    window = []
    for j in range(i - radius, i + radius + 1):
        if j == i or not 0 <= j < len(frames):
            window.append(centre)
        else:
            window.append(warp_to(centre, frames[j]))
    return window


def to_planes(window: Sequence[np.ndarray]) -> np.ndarray:
    """A window of RGB uint8 frames as one (H, W, 3 × frames) float32 YCrCb stack in 0..1."""
    return np.concatenate(
        [cv2.cvtColor(frame, cv2.COLOR_RGB2YCrCb).astype(np.float32) / 255.0 for frame in window], axis=2
    )


class ArtefactRemover:
    """The loaded network on a device, restoring frames tile by tile; loaded once, used for many shots.

    ``device`` is ``None``/``"auto"`` (CUDA when torch sees one), ``"cpu"`` or
    ``"cuda[:n]"``; ``tile`` is the core size of a tile in pixels (even),
    ``batch`` how many tiles go through together.
    """

    def __init__(
        self,
        weights: str | Path | None = None,
        *,
        device: str | None = None,
        tile: int | None = None,
        batch: int = 4,
    ) -> None:
        self.device = pick_device(device)
        net, self.version = load_network(weights)
        self.net = net.to(self.device)
        self.radius = (net.frames - 1) // 2
        # Bigger tiles amortise kernel launches on a GPU; on a CPU they only cost memory.
        self.tile = tile or (512 if self.device.type == "cuda" else 256)
        if self.tile % 2 or self.tile < 16:
            raise ValueError(f"restorer tile must be an even number of pixels >= 16, not {self.tile}")
        self.batch = max(1, batch)
        self.margin = self.net.receptive_radius + self.net.receptive_radius % 2

    def restore(self, frames: Sequence[np.ndarray], i: int, strength: float = 1.0) -> np.ndarray:
        """Frame ``i`` of a window of RGB (or grey) uint8 frames, restored; ``strength`` scales the repair."""
        grey = frames[i].ndim == 2
        rgb = [np.dstack([f] * 3) if f.ndim == 2 else f for f in frames]
        window = aligned_window(rgb, i, self.radius)
        restored = self.restore_planes(to_planes(window), strength)
        out = cv2.cvtColor(to_uint8(restored * 255.0), cv2.COLOR_YCrCb2RGB)
        return cv2.cvtColor(out, cv2.COLOR_RGB2GRAY) if grey else out

    @torch.inference_mode()
    def restore_planes(self, planes: np.ndarray, strength: float = 1.0) -> np.ndarray:
        """The restored centre frame (H, W, 3) YCrCb in 0..1 from an (H, W, 3 × frames) stack."""
        height, width = planes.shape[:2]
        tile, margin = self.tile, self.margin
        rows, cols = -(-height // tile), -(-width // tile)
        bottom, right = rows * tile - height + margin, cols * tile - width + margin
        padded = np.pad(planes, ((margin, bottom), (margin, right), (0, 0)), mode="reflect")
        source = torch.from_numpy(np.ascontiguousarray(padded.transpose(2, 0, 1)))
        centre = 3 * (self.net.frames // 2)
        out = np.empty((rows * tile, cols * tile, 3), np.float32)
        origins = [(r * tile, c * tile) for r in range(rows) for c in range(cols)]
        for start in range(0, len(origins), self.batch):
            chunk = origins[start : start + self.batch]
            side = tile + 2 * margin
            inputs = torch.stack([source[:, y : y + side, x : x + side] for y, x in chunk]).to(self.device)
            result = self.net(inputs)
            if strength != 1.0:
                base = inputs[:, centre : centre + 3]
                result = base + strength * (result - base)
            cores = result[:, :, margin : margin + tile, margin : margin + tile].float().cpu().numpy()
            for (y, x), core in zip(chunk, cores, strict=True):
                out[y : y + tile, x : x + tile] = core.transpose(1, 2, 0)
        return out[:height, :width]


@functools.lru_cache(maxsize=2)
def shared_remover(weights: str | None = None, device: str | None = None) -> ArtefactRemover:
    """One loaded network per worker process and device, shared by every shot's plan that uses it."""
    return ArtefactRemover(weights, device=device)
