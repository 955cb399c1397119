"""Opening media wherever it lives and describing it before anything decodes it.

``segment`` and ``remaster`` both read assets that may sit in a local folder or in an object
store; this module is the one place that knows how to open either with PyAV, and it turns the
many ways a file can be unreadable into one exception type with a message a person can act on.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from fractions import Fraction
from typing import Any

import av
import fsspec

MAX_SIDE = 16384
"""Widest/tallest frame accepted; larger is a corrupt header, not footage."""
MAX_PIXELS = 16384 * 8704


class MediaError(ValueError):
    """The file is not media that archivist can segment (empty, not media, no video, absurd)."""


def _local_path(uri: str) -> str | None:
    """The filesystem path for a local path or ``file://`` URL, else None."""
    if "://" not in uri:
        return uri
    if uri.startswith("file://"):
        return fsspec.core.url_to_fs(uri)[1]
    return None


def _size(uri: str, storage_options: dict[str, Any] | None) -> int | None:
    path = _local_path(uri)
    if path is not None:
        return os.path.getsize(path)  # FileNotFoundError is not a MediaError: the file is absent
    fs, fpath = fsspec.core.url_to_fs(uri, **(storage_options or {}))
    try:
        return int(fs.size(fpath))
    except (NotImplementedError, TypeError):  # a filesystem that cannot tell; av.open will
        return None


@contextmanager
def open_media(
    uri: str, storage_options: dict[str, Any] | None = None
) -> Iterator[av.container.InputContainer]:
    """Open ``uri`` for reading with PyAV: local paths by path (fast, seekable by FFmpeg),
    anything else through an fsspec file object, so the same code reads a folder or S3.

    Raises MediaError for an empty file or one FFmpeg cannot open as media; I/O errors
    (missing file, denied access, network) propagate unchanged so callers can tell them apart.
    """
    size = _size(uri, storage_options)
    if size == 0:
        raise MediaError("file is empty (0 bytes)")
    path = _local_path(uri)
    fileobj = None
    try:
        if path is not None:
            target: Any = path
        else:
            fileobj = fsspec.open(uri, "rb", **(storage_options or {})).open()
            target = fileobj
        try:
            container = av.open(target, mode="r", metadata_errors="ignore")
        except av.FFmpegError as exc:
            if isinstance(exc, OSError) and exc.errno in (2, 13):  # ENOENT, EACCES
                raise
            raise MediaError(
                f"FFmpeg cannot open it as media: damaged, truncated or not a media file "
                f"({type(exc).__name__}: {exc})"
            ) from exc
        try:
            yield container
        finally:
            container.close()
    finally:
        if fileobj is not None:
            fileobj.close()


def _float(value: Any) -> float | None:
    if value is None:
        return None
    try:
        out = float(value)
    except (TypeError, ValueError, ZeroDivisionError):
        return None
    return out if out > 0 else None


def video_stream(container: av.container.InputContainer) -> av.video.stream.VideoStream:
    """The stream to segment: the first video stream that is not a cover picture."""
    cover = av.stream.Disposition.attached_pic
    streams = [s for s in container.streams.video if not (s.disposition & cover)]
    if not streams:
        kinds = sorted({"cover picture" if s.disposition & cover else s.type for s in container.streams})
        raise MediaError(f"no video stream (streams found: {', '.join(kinds) or 'none'})")
    return streams[0]


def probe_container(container: av.container.InputContainer) -> dict[str, Any]:
    """Technical facts of an open container (the ``ASSET_PROBE`` columns but status/error).

    Takes an open container so a stage that goes on to decode opens the file only once.
    """
    stream = video_stream(container)
    ctx = stream.codec_context
    width, height = int(ctx.width or 0), int(ctx.height or 0)
    if width <= 0 or height <= 0:
        raise MediaError(
            f"video stream has no frame size ({width}x{height}): header damaged or codec unknown"
        )
    if width > MAX_SIDE or height > MAX_SIDE or width * height > MAX_PIXELS:
        raise MediaError(f"absurd frame size {width}x{height} (larger than {MAX_SIDE} px a side)")
    fps = _float(stream.average_rate) or _float(stream.guessed_rate) or _float(stream.base_rate)
    if fps is not None and fps > 1000:
        fps = None
    duration = None
    if stream.duration is not None and stream.time_base is not None:
        duration = _float(stream.duration * stream.time_base)
    if duration is None and container.duration is not None:
        duration = _float(Fraction(container.duration, av.time_base))
    frames = int(stream.frames or 0)
    if frames <= 0:
        frames = round(duration * fps) if duration and fps else 0
    audio = list(container.streams.audio)
    return {
        "container": container.format.name,
        "duration_s": duration,
        "fps": fps,
        "width": width,
        "height": height,
        "frame_count": frames or None,
        "video_codec": ctx.name,
        "pix_fmt": ctx.pix_fmt,
        "audio_streams": len(audio),
        "audio_codec": audio[0].codec_context.name if audio else None,
    }


def probe(uri: str, storage_options: dict[str, Any] | None = None) -> dict[str, Any]:
    """A media file's technical facts without decoding it (see ``probe_container``); raises MediaError."""
    with open_media(uri, storage_options) as container:
        return probe_container(container)
