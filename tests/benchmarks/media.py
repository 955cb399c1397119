"""Keyframes of the bundled media, named stably, for the search and near-duplicate benchmarks.

A video shot is named ``clip:start-end`` by its natural frame range (found by
inspection; see ``bench_shots.py``) and stands for its middle frame; a still is
named ``still:name`` after its ``skimage.data`` function. Both benchmarks build
their sets from these, so a name in ``data/text_queries.yaml`` always means
the same picture.
"""

from __future__ import annotations

import io
import os
import sys
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from PIL import Image

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # model hubs are out of reach: never try them
REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from jobs.samples import sample_file  # noqa: E402

VIDEO_SHOTS = {
    "bikes.mp4": [(0, 30), (30, 76), (76, 137), (137, 187), (187, 242)],
    "bigbuckbunny.mp4": [(0, 132)],
    "carphone_pristine.mp4": [(0, 120)],
}
STILLS = (
    "astronaut", "brick", "camera", "cell", "chelsea", "clock", "coffee", "coins", "colorwheel", "grass",
    "gravel", "horse", "hubble_deep_field", "immunohistochemistry", "logo", "moon", "page", "retina",
    "rocket", "stereo_motorcycle", "text",
)


def video_frames(clip: str) -> list[np.ndarray]:
    """Every frame of a sample clip, RGB (the clips are a few seconds long)."""
    with av.open(str(sample_file(clip))) as container:
        return [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]


def still(name: str) -> np.ndarray:
    import skimage.data

    image = getattr(skimage.data, name)()
    if isinstance(image, tuple):  # stereo_motorcycle: (left, right, disparity)
        image = image[0]
    image = np.asarray(image)
    if image.dtype == bool:
        image = image.astype(np.uint8) * 255
    if image.ndim == 2:
        image = np.dstack([image] * 3)
    return np.ascontiguousarray(image[..., :3])


def keyframes() -> dict[str, tuple[np.ndarray, list[np.ndarray]]]:
    """Every named keyframe with the frames around it (for a realistic re-encode), in a fixed order."""
    found: dict[str, tuple[np.ndarray, list[np.ndarray]]] = {}
    for clip, shots in VIDEO_SHOTS.items():
        frames = video_frames(clip)
        for start, end in shots:
            middle = (start + end) // 2
            found[f"{clip}:{start}-{end}"] = (frames[middle], frames[middle - 2 : middle + 3])
    for name in STILLS:
        image = still(name)
        found[f"still:{name}"] = (image, [image] * 5)
    return found


def jpeg(image: np.ndarray, quality: int = 90) -> bytes:
    """What the segment stage stores as ``keyframe_jpeg``."""
    out = io.BytesIO()
    Image.fromarray(image).save(out, format="JPEG", quality=quality)
    return out.getvalue()


def h264_roundtrip(frames: list[np.ndarray], crf: int) -> np.ndarray:
    """The middle frame after encoding the frames with libx264 at ``crf`` and decoding them again."""
    height, width = (d - d % 2 for d in frames[0].shape[:2])
    buffer = io.BytesIO()
    with av.open(buffer, "w", format="mp4") as out:
        stream = out.add_stream("libx264", rate=25, options={"crf": str(crf), "preset": "veryfast"})
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.time_base = Fraction(1, 25)
        for frame in frames:
            out.mux(stream.encode(av.VideoFrame.from_ndarray(frame[:height, :width], format="rgb24")))
        out.mux(stream.encode(None))
    buffer.seek(0)
    with av.open(buffer) as container:
        decoded = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    return decoded[len(decoded) // 2]
