"""The two pixel conversions every restoration module needs, defined once so they agree."""

from __future__ import annotations

import cv2
import numpy as np


def luma(frame: np.ndarray) -> np.ndarray:
    """Full-range BT.601 luma of an RGB frame (a grey frame is its own luma), same dtype."""
    return frame if frame.ndim == 2 else cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)


def to_uint8(image: np.ndarray) -> np.ndarray:
    """Rounded and clipped back to 0..255 after float arithmetic."""
    return np.clip(image + 0.5, 0, 255).astype(np.uint8)
