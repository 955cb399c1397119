"""Synthetic archive damage with known ground truth, for tests and benchmarks.

Restoration can only be measured against a clean original, and archives do
not ship one; so clean footage is damaged the way film and tape are (flicker,
dust, scratches, grain, codec blocking) and the restored result is compared
with the clean frames. Each defect also returns where it was planted, so tests
can check that exactly those pixels were repaired.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import cv2
import numpy as np

from actors.restore.pixels import to_uint8


def add_noise(frame: np.ndarray, sigma: float, rng: np.random.Generator) -> np.ndarray:
    """Film-grain-like noise: mostly in luma, a little per channel, slightly soft."""
    shape = frame.shape[:2]
    grain = np.asarray(cv2.GaussianBlur(rng.normal(0, 1, shape).astype(np.float32), (0, 0), 0.5))
    grain = grain * (sigma / max(float(grain.std()), 1e-6))
    noise = grain[..., None] * 0.8 + rng.normal(0, sigma * 0.6, frame.shape) if frame.ndim == 3 else grain
    return to_uint8(frame.astype(np.float32) + noise)


def add_flicker(frame: np.ndarray, gain: float, offset: float) -> np.ndarray:
    return to_uint8(frame.astype(np.float32) * gain + offset)


def add_dust(frame: np.ndarray, count: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Dark and bright specks of 1-3 pixels radius; returns the frame and the speck mask."""
    mask = np.zeros(frame.shape[:2], np.uint8)
    height, width = frame.shape[:2]
    out = frame.copy()
    for _ in range(count):
        speck = np.zeros_like(mask)
        centre = (int(rng.integers(4, width - 4)), int(rng.integers(4, height - 4)))
        cv2.circle(speck, centre, int(rng.integers(1, 4)), 1, -1)
        out[speck > 0] = 15 if rng.random() < 0.6 else 240
        mask |= speck
    return out, mask.astype(bool)


def add_scratch(
    frame: np.ndarray,
    column: int,
    brightness: float,
    width: int = 1,
) -> tuple[np.ndarray, np.ndarray]:
    """A vertical line scratch down the whole frame, ``brightness`` levels above or below the picture."""
    mask = np.zeros(frame.shape[:2], bool)
    mask[:, column : column + width] = True
    out = frame.astype(np.float32)
    out[mask] += brightness
    return to_uint8(out), mask


def jpeg_roundtrip(frame: np.ndarray, quality: int) -> np.ndarray:
    """An RGB frame through JPEG at ``quality`` (4:2:0): the blocking of DV, MPEG-2 and early
    web video, and the recompression a manipulated picture has been through."""
    bgr = cv2.cvtColor(frame, cv2.COLOR_RGB2BGR)
    ok, encoded = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, quality])
    decoded = cv2.imdecode(encoded, cv2.IMREAD_COLOR) if ok else None
    if decoded is None:
        raise ValueError(f"a {frame.shape} {frame.dtype} frame could not go through JPEG")
    return cv2.cvtColor(decoded, cv2.COLOR_BGR2RGB)


@dataclass
class ArchiveDamage:
    """Damage for a stream of frames, seeded; scratches stay put and wander a pixel, as on film.

    A zero turns a defect off. Applied in the order the damage happens:
    exposure flicker and dirt on the film, scratches, grain, then the codec.
    """

    flicker: float = 0.0  # standard deviation of the per-frame gain
    dust: int = 0  # specks per frame
    scratches: int = 0  # number of scratch lines
    noise: float = 0.0  # grain sigma in levels
    jpeg_quality: int = 0  # 0 = no blocking
    seed: int = 0

    def apply(self, frames: Iterable[np.ndarray]) -> Iterator[np.ndarray]:
        rng = np.random.default_rng(self.seed)
        columns: np.ndarray | None = None
        for frame in frames:
            out = frame
            if self.flicker:
                out = add_flicker(out, 1.0 + rng.normal(0, self.flicker), rng.normal(0, self.flicker * 40))
            if self.dust:
                out, _ = add_dust(out, self.dust, rng)
            if self.scratches:
                width = out.shape[1]
                if columns is None:
                    columns = rng.integers(width // 8, width - width // 8, self.scratches)
                columns = np.clip(columns + rng.integers(-1, 2, len(columns)), 2, width - 3)
                for k, column in enumerate(columns):
                    out, _ = add_scratch(out, int(column), 45.0 if k % 2 == 0 else -40.0)
            if self.noise:
                out = add_noise(out, self.noise, rng)
            if self.jpeg_quality:
                out = jpeg_roundtrip(out, self.jpeg_quality)
            yield out
