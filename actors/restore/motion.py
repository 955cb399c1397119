"""Motion compensation: bring a neighbouring frame into register with the current one.

Temporal filters (denoise, dust) compare a pixel with "the same point" in
neighbouring frames; without compensation every moving edge would be read as
noise or dirt and smeared or patched. Dense DIS optical flow is fast enough
on a CPU (a few ms at 640×360) and is computed on a frame no wider than
``FLOW_WIDTH``, then scaled up: motion is smooth, detail is not needed.
"""

from __future__ import annotations

import functools

import cv2
import numpy as np

from actors.restore.pixels import luma

FLOW_WIDTH = 960
MIN_SIDE = 16
"""Frames smaller than this (thumbnails, test patterns) are taken as still: DIS needs a pyramid."""


@functools.lru_cache(maxsize=1)
def _flow_engine() -> cv2.DISOpticalFlow:
    return cv2.DISOpticalFlow.create(cv2.DISOPTICAL_FLOW_PRESET_FAST)


def flow_to(center: np.ndarray, neighbour: np.ndarray) -> np.ndarray:
    """Per-pixel (dx, dy) such that ``center[y, x]`` shows what ``neighbour[y + dy, x + dx]`` shows."""
    a, b = luma(center), luma(neighbour)
    height, width = a.shape
    if min(height, width) < MIN_SIDE:
        return np.zeros((height, width, 2), np.float32)
    scale = min(1.0, FLOW_WIDTH / width)
    if scale < 1.0:
        size = (round(width * scale), round(height * scale))
        a = cv2.resize(a, size, interpolation=cv2.INTER_AREA)
        b = cv2.resize(b, size, interpolation=cv2.INTER_AREA)
    flow = _flow_engine().calc(a, b, None)  # type: ignore[call-overload]  # opencv's stubs lack the optional flow
    if scale < 1.0:
        flow = cv2.resize(flow, (width, height), interpolation=cv2.INTER_LINEAR) / scale
    return flow


def warp_to(center: np.ndarray, neighbour: np.ndarray) -> np.ndarray:
    """``neighbour`` resampled onto ``center``'s pixel grid (same dtype and channels)."""
    flow = flow_to(center, neighbour)
    height, width = flow.shape[:2]
    grid_x, grid_y = np.meshgrid(np.arange(width, dtype=np.float32), np.arange(height, dtype=np.float32))
    return cv2.remap(
        neighbour,
        grid_x + flow[..., 0],
        grid_y + flow[..., 1],
        cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_REPLICATE,
    )
