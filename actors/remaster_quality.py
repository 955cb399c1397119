"""How far the access copy, as a player decodes it, stands from its source: VMAF, PSNR, SSIM.

In production there is no pristine original to score against, only the
source, so the figure is the access copy against the source: what restoration,
upscaling and the encoder together moved (a restoration that removes noise
moves the picture too, and scores lower for it; a bad encode scores lower
still). It is taken after the access copy is written, from the staged file
decoded again, so the encoder's losses count; the source is brought to the
access picture's size as the remaster's other figures are (deinterlaced if
interlaced, bicubic), the access copy's even-side padding is cut off, and
pairs larger than 1080p are measured at 1080p (``actors.video_quality``).
Only ``quality_frames`` frames, evenly spaced, are scored: VMAF costs seconds
a frame on a CPU.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import av
import cv2
import numpy as np
from av.video.reformatter import ColorRange, Colorspace

from actors.fields import Deinterlacer
from actors.probe import open_media, video_stream
from actors.video_quality import QualityMeter


def _source_pictures(
    uri: str, storage_options: dict[str, Any], size: tuple[int, int], order: str | None
) -> Iterator[np.ndarray]:
    with open_media(uri, storage_options) as container:
        stream = video_stream(container)
        stream.thread_type = "AUTO"
        width, height = stream.codec_context.width, stream.codec_context.height
        deinterlacer = Deinterlacer(width, height, order) if order else None
        for frame in container.decode(stream):
            rgb = frame.to_ndarray(format="rgb24")
            for picture in deinterlacer.push(rgb) if deinterlacer else [rgb]:
                yield cv2.resize(picture, size, interpolation=cv2.INTER_CUBIC)
        for picture in deinterlacer.flush() if deinterlacer else []:
            yield cv2.resize(picture, size, interpolation=cv2.INTER_CUBIC)


def _access_pictures(path: str, size: tuple[int, int]) -> Iterator[np.ndarray]:
    with av.open(path) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        for frame in container.decode(stream):
            rgb = frame.reformat(
                format="rgb24", src_colorspace=Colorspace.ITU709, src_color_range=ColorRange.MPEG
            ).to_ndarray()
            yield np.ascontiguousarray(rgb[: size[1], : size[0]])


def access_against_source(
    source_uri: str,
    access_path: str,
    *,
    storage_options: dict[str, Any],
    size: tuple[int, int],
    interlaced_order: str | None,
    frames: int,
    quality_frames: int,
) -> dict[str, Any] | None:
    """Mean VMAF, PSNR and SSIM of ``quality_frames`` frames of the staged access copy against the
    source at ``size`` (the access picture's, before padding); ``None`` when asked for none."""
    if quality_frames <= 0:
        return None
    meter = QualityMeter(max(1, frames // quality_frames))
    pairs = zip(
        _source_pictures(source_uri, storage_options, size, interlaced_order),
        _access_pictures(access_path, size),
        strict=True,
    )
    for reference, distorted in pairs:
        meter.add(reference, distorted)
    return {"reference": "source", "method": "vmaf_v0.6.1 (vmaf-torch)", **meter.result()}
