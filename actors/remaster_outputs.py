"""The remaster's output files: staged, written frame by frame, closed, published into place.

A staging file sits beside its target (local) or in a temporary folder (object
store) and is removed whatever happens; only a whole file is renamed into
place or uploaded in one PUT. The master holds RGB at the source's depth:
``bgr0`` for 8 bits, else planar RGB of the next depth FFV1 stores, with the
source's bits below the 8 that restoration works on added back; the access
copy holds yuv420p BT.709 (H.264 or AV1), padded to even sides.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import av
import cv2
import fsspec
import numpy as np
from av.video.reformatter import ColorRange, Colorspace

from actors.remaster_audio import Track

_CHUNK = 8 << 20


class RemasterError(RuntimeError):
    """An asset that decodes but cannot be remastered as asked (no frames, frames lost on the way)."""


@dataclass
class Output:
    """One output file being encoded: its container, video stream and audio tracks by source index."""

    kind: str
    uri: str
    staging: str
    container: Any
    video: Any
    audio: dict[int, Track]
    codec: str
    pix_fmt: str
    width: int = 0
    height: int = 0
    frames: int = 0
    sha256: str = ""
    upscale: int = 1
    field_order: str = "progressive"


def is_local(uri: str) -> bool:
    fs, _ = fsspec.core.url_to_fs(uri)
    return "file" in (fs.protocol if isinstance(fs.protocol, tuple) else (fs.protocol,))


def file_sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def even(frame: np.ndarray) -> np.ndarray:
    """Pads an odd width or height by one repeated column or row, as yuv420p requires even sides."""
    pad_rows, pad_cols = frame.shape[0] % 2, frame.shape[1] % 2
    if not (pad_rows or pad_cols):
        return frame
    return np.pad(frame, ((0, pad_rows), (0, pad_cols), (0, 0)), mode="edge")


def bit_depth(pix_fmt: str | None) -> int:
    """Bits per component of a pixel format (8 where unknown)."""
    try:
        return max(c.bits for c in av.VideoFormat(pix_fmt).components) if pix_fmt else 8
    except (ValueError, TypeError):
        return 8


def master_pix_fmt(depth: int) -> str:
    """FFV1's RGB layout holding ``depth`` bits: 8-bit ``bgr0``, else the next planar RGB up."""
    for bits in (8, 10, 12, 16):
        if depth <= bits:
            return "bgr0" if bits == 8 else f"gbrp{bits}le"
    return "gbrp16le"


def ratio(value: Fraction | None) -> str | None:
    return f"{value.numerator}:{value.denominator}" if value else None


def write_frame(
    output: Output, frame: np.ndarray, pts: int, time_base: Fraction, residual: np.ndarray | None = None
) -> None:
    """Encodes one RGB uint8 frame into ``output``; ``residual``: the deep source's bits below 8."""
    if output.kind == "master" and residual is not None:
        height, width = frame.shape[:2]
        if residual.shape[:2] != (height, width):
            residual = cv2.resize(residual, (width, height), interpolation=cv2.INTER_LINEAR)
        deep = np.clip(frame.astype(np.float32) * 257 + residual + 0.5, 0, 65535).astype(np.uint16)
        video_frame = av.VideoFrame.from_ndarray(deep, format="rgb48le").reformat(format=output.pix_fmt)
    elif output.kind == "master":
        video_frame = av.VideoFrame.from_ndarray(frame, format="rgb24").reformat(format="bgr0")
    else:
        video_frame = av.VideoFrame.from_ndarray(even(frame), format="rgb24").reformat(
            format="yuv420p", dst_colorspace=Colorspace.ITU709, dst_color_range=ColorRange.MPEG
        )
    video_frame.pts, video_frame.time_base = pts, time_base
    output.container.mux(output.video.encode(video_frame))
    output.frames += 1


@contextmanager
def staged_outputs(
    out_root: str,
    asset_id: str,
    master_fmt: str,
    *,
    local: bool,
    work_dir: str | None = None,
    access_codec: str = "h264",
) -> Iterator[list[Output]]:
    """Staging files for both outputs, removed whatever happens (published ones were moved away);
    ``access_codec`` is the access copy's video codec (``h264`` or ``av1``), both in MP4."""
    with ExitStack() as stack:
        directory = (
            None
            if local
            else stack.enter_context(tempfile.TemporaryDirectory(prefix="remaster-", dir=work_dir))
        )
        outputs = []
        for kind, name, fmt, codec, pix_fmt in (
            ("master", "master.mkv", "matroska", "ffv1", master_fmt),
            ("access", "access.mp4", "mp4", access_codec, "yuv420p"),
        ):
            uri = f"{out_root}/{asset_id}/{name}"
            if directory is None:
                _, path = fsspec.core.url_to_fs(uri)
                os.makedirs(os.path.dirname(path), exist_ok=True)
                staging = os.path.join(os.path.dirname(path), f".{name}.{uuid.uuid4().hex}.part")
            else:
                staging = os.path.join(directory, name)
            stack.callback(_remove_if_there, staging)
            options = {"movflags": "+faststart"} if fmt == "mp4" else {}
            container = av.open(staging, "w", format=fmt, options=options)
            stack.callback(container.close)
            outputs.append(Output(kind, uri, staging, container, None, {}, codec, pix_fmt))
        yield outputs


def audio_refused(step: str, output: Output, audio: list[Any], exc: Exception) -> RemasterError:
    """The error of a muxer that refuses the source's audio, naming the file and the tracks."""
    codecs = ", ".join(f"#{s.index} {s.codec_context.name}" for s in audio) or "none"
    return RemasterError(
        f"cannot {step} the {output.kind} file ({output.codec}) with the source's audio "
        f"(audio {codecs}): {exc}"
    )


def close(output: Output, audio: list[Any]) -> None:
    """Writes the trailer, where a muxer finally refuses what it cannot store."""
    try:
        output.container.close()
    except av.FFmpegError as exc:
        raise audio_refused("finish", output, audio, exc) from exc


def publish(staging: str, uri: str, storage_options: dict[str, Any], *, local: bool) -> None:
    """Into place in one step: a rename beside the target, or a single upload to the store."""
    fs, path = fsspec.core.url_to_fs(uri, **storage_options)
    if local:
        with open(staging, "rb") as handle:
            os.fsync(handle.fileno())
        os.replace(staging, path)
    else:
        fs.put_file(staging, path)


def _remove_if_there(path: str) -> None:
    if os.path.exists(path):
        os.remove(path)
