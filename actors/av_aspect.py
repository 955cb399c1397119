"""Setting an output stream's sample aspect ratio where the muxer reads it: ``AVStream.sample_aspect_ratio``.

Matroska's muxer writes DisplayWidth/DisplayHeight from the *stream's* sample
aspect ratio, not from the codec parameters, and PyAV offers no way to set
the stream's (PyAV issues #764 and #1001: ``stream.sample_aspect_ratio`` is a
read-only guess). Without it an anamorphic PAL master (SAR 64:45) plays as a
5:4 picture. MP4 reads the codec parameters, which the codec context's
sample aspect ratio fills, so only Matroska needs this.

``set_stream_sar`` writes the field through the stream's ``AVStream`` pointer.
It finds the pointer in PyAV's object and only writes after checking that the
struct it points at is that stream (its index, time base and disposition
where FFmpeg's ``AVStream`` layout puts them); on any mismatch (another PyAV
or FFmpeg) it writes nothing and says so, and the caller records that the
container carries no aspect ratio.
"""

from __future__ import annotations

import ctypes
import logging
from fractions import Fraction
from typing import Any

log = logging.getLogger(__name__)

_POINTER_AT = 3 * ctypes.sizeof(ctypes.c_void_p)
"""PyAV's Stream: PyObject header (refcount, type), Cython's vtable pointer, then ``AVStream *ptr``."""


class _AVStreamHead(ctypes.Structure):
    """The first fields of FFmpeg's AVStream (libavformat 59 onwards, FFmpeg 5.0 to 8.x)."""

    _fields_ = [
        ("av_class", ctypes.c_void_p),
        ("index", ctypes.c_int),
        ("id", ctypes.c_int),
        ("codecpar", ctypes.c_void_p),
        ("priv_data", ctypes.c_void_p),
        ("time_base_num", ctypes.c_int),
        ("time_base_den", ctypes.c_int),
        ("start_time", ctypes.c_int64),
        ("duration", ctypes.c_int64),
        ("nb_frames", ctypes.c_int64),
        ("disposition", ctypes.c_int),
        ("discard", ctypes.c_int),
        ("sar_num", ctypes.c_int),
        ("sar_den", ctypes.c_int),
    ]


def _head(stream: Any) -> _AVStreamHead | None:
    address = ctypes.c_void_p.from_address(id(stream) + _POINTER_AT).value
    if not address:
        return None
    head = _AVStreamHead.from_address(address)
    time_base = Fraction(stream.time_base) if stream.time_base else None
    if head.index != stream.index or int(head.disposition) != int(stream.disposition):
        return None
    if time_base is not None and (
        head.time_base_den <= 0 or Fraction(head.time_base_num, head.time_base_den) != time_base
    ):
        return None
    return head


def set_stream_sar(stream: Any, sar: Fraction) -> bool:
    """Sets the muxer-visible sample aspect ratio of an output stream; False where it could not."""
    try:
        head = _head(stream)
    except (ValueError, TypeError, OSError):
        head = None
    if head is None:
        log.warning("cannot set the sample aspect ratio of %r: not the PyAV/FFmpeg layout known", stream)
        return False
    head.sar_num, head.sar_den = sar.numerator, sar.denominator
    return True
