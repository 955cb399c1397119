"""Which way up a picture is shown: the display matrix phones write instead of turning pixels.

A phone held upright records landscape-coded frames and a display matrix (MP4/MOV ``tkhd``
matrix, FFmpeg's DISPLAYMATRIX side data, once the ``rotate`` tag) saying "turn this 90° when
showing it". Players honour it; analysis and keyframes must too, or a portrait clip's keyframe
lies on its side and its shots are compared sideways. PyAV reads the matrix as
``VideoFrame.rotation``: degrees counter-clockwise, as ``av_display_rotation_get`` gives them.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def quarter_turns(frame: Any) -> int:
    """Counter-clockwise quarter turns (0..3) that put ``frame`` the way it is shown; 0 when
    it carries no display matrix or one that is not a multiple of 90° (not seen from cameras;
    a skewed matrix is left as coded rather than guessed)."""
    degrees = float(getattr(frame, "rotation", 0) or 0)
    turns = round(degrees / 90.0)
    if abs(degrees - 90.0 * turns) > 1.0:
        return 0
    return turns % 4


def upright(image: np.ndarray, turns: int) -> np.ndarray:
    """``image`` (rows, columns[, channels]) turned ``turns`` quarter turns counter-clockwise,
    contiguous (OpenCV wants that)."""
    if turns == 0:
        return image
    return np.ascontiguousarray(np.rot90(image, k=turns))


def shown_size(width: int, height: int, turns: int) -> tuple[int, int]:
    """(width, height) of a ``width``x``height`` picture once turned."""
    return (height, width) if turns % 2 else (width, height)
