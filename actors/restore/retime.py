"""Retiming: footage shot at one frame rate shown at another, at its true speed.

Silent-era films were shot at 16–20 frames per second; played at 24 or 25
every movement is too fast. Showing each frame longer (repetition) judders,
cross-fading neighbours (blending) shows every moving edge twice. Here the
frames between two source frames are made by motion-compensated
interpolation: each point is moved along the optical flow between the two
frames to where it is at the output instant, then taken from the frame in
which it is visible.

How one in-between frame at phase ``t`` (0 at frame ``a``, 1 at ``b``) is made:

1. Dense flow both ways (``motion.flow_to``: DIS, the restore stage's flow).
2. Forward/backward consistency: a pixel of ``a`` whose flow into ``b`` and
   back does not return to it is not visible in ``b`` (it is being covered,
   or leaves the picture), and vice versa.
3. Flow projection: every consistent pixel of ``a`` and ``b`` carries its
   motion to where it is at time ``t`` (a forward splat). Projection, not the
   usual "flow at the same pixel" guess, puts a moving object's motion where
   the object is at ``t``, which is what keeps its outline clean. Where
   nothing lands, the linear estimate from the two flows fills in.
4. Motion edges: DIS blurs motion across an outline, so each pixel may take
   a neighbour's motion where that makes the two frames agree better.
5. Occlusion: how many pixels of ``a`` landed on a point of the output (the
   splat's density) says whether that point is visible in ``a``. A point
   uncovered between ``a`` and ``b`` gets nothing from ``a``, so it is taken
   from ``b`` alone instead of a ghost of whatever covered it in ``a``;
   elsewhere the two warped frames are weighted by nearness in time.

The flow is smooth, so projection runs on a copy no wider than
``PROJECTION_WIDTH``; only the final warps are at full resolution.

A cut between the two frames is not bridged: morphing one shot into the next
is worse than a repeated frame, so the nearer frame is shown (``a`` up to
phase 0.5, ``b`` after). A cut is found as ``Deflicker`` finds one, by the
difference of brightness-normalised thumbnails, averaged with the same
difference after motion compensation, so that a fast pan is not taken for a
cut.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterable, Iterator
from fractions import Fraction
from numbers import Real
from typing import Any

import cv2
import numpy as np

from actors.restore.measure import thumbnail
from actors.restore.motion import flow_to
from actors.restore.pixels import luma, to_uint8

MIN_FPS = 1
MAX_FPS = 120
PROJECTION_WIDTH = 480
"""Width at which motion is projected to the output instant (motion is smooth; detail is not needed)."""
CUT_THRESHOLD = 0.75
"""Mean of the plain and the motion-compensated normalised thumbnail difference above which two
frames are different shots. On ``bikes.mp4`` with every other frame dropped (fast pans, riders
crossing), pairs inside a shot score at most 0.64 and its five cuts at least 0.85."""
CONSISTENT_PX = 0.5
"""Forward/backward flow mismatch (pixels) still counted as agreement: DIS is accurate to about this."""
VISIBLE_DENSITY = 0.5
"""Splat density from a frame above which a point of the output counts as fully visible in it."""
SHARPEN_REACH = 3
"""How far (projection pixels) a motion edge may be moved to where the two frames agree."""
SHARPEN_MARGIN = 1.0
"""Luma levels by which a neighbour's motion must match better before it replaces a pixel's own."""
_DENSITY = 3
"""Channel of a splat that counts every pixel landing (the others: motion x, y, its weight)."""


def _is_number(value: object) -> bool:
    return isinstance(value, Real) and not isinstance(value, bool)


def check_rate(value: float | Fraction, field: str) -> Fraction:
    """A frame rate as an exact fraction, or a ValueError naming the field and the value."""
    if not _is_number(value) or not math.isfinite(float(value)):
        raise ValueError(f"{field} must be a number of frames per second, got {value!r}")
    if not MIN_FPS <= float(value) <= MAX_FPS:
        raise ValueError(f"{field} must be between {MIN_FPS} and {MAX_FPS} frames per second, got {value!r}")
    # 24000/1001 given as a float comes back as 24000/1001, not as a 50-digit binary fraction.
    return Fraction(value).limit_denominator(10_000)


@functools.lru_cache(maxsize=4)
def _grid(height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    gx, gy = np.meshgrid(np.arange(width, dtype=np.float32), np.arange(height, dtype=np.float32))
    gx.setflags(write=False)
    gy.setflags(write=False)
    return gx, gy


def _sample(image: np.ndarray, flow: np.ndarray, scale: float = 1.0) -> np.ndarray:
    """``image`` read at ``p + scale * flow(p)`` for every pixel ``p`` (bilinear, edges replicated)."""
    gx, gy = _grid(*flow.shape[:2])
    return cv2.remap(
        image,
        gx + scale * flow[..., 0],
        gy + scale * flow[..., 1],
        cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_REPLICATE,
    )


def _splat(values: np.ndarray, flow: np.ndarray, scale: float) -> np.ndarray:
    """Each pixel's ``values`` added, with bilinear weights, at ``p + scale * flow(p)``."""
    height, width, channels = values.shape
    count = height * width
    gx, gy = _grid(height, width)
    x = (gx + scale * flow[..., 0]).ravel()
    y = (gy + scale * flow[..., 1]).ravel()
    x0, y0 = np.floor(x), np.floor(y)
    fx, fy = x - x0, y - y0
    x0i, y0i = x0.astype(np.int64), y0.astype(np.int64)
    index = np.empty((4, count), np.int64)
    share = np.empty((4, count), np.float32)
    for tap, (dx, dy, part) in enumerate(
        ((0, 0, (1 - fx) * (1 - fy)), (1, 0, fx * (1 - fy)), (0, 1, (1 - fx) * fy), (1, 1, fx * fy))
    ):
        xi, yi = x0i + dx, y0i + dy
        inside = (xi >= 0) & (xi < width) & (yi >= 0) & (yi < height)
        index[tap] = np.where(inside, yi * width + xi, count)  # outside the picture: one spare bin
        share[tap] = part
    index_flat = index.ravel()
    flat = values.reshape(count, channels)
    out = np.empty((count, channels), np.float32)
    for channel in range(channels):
        weights = (share * flat[:, channel]).ravel()
        out[:, channel] = np.bincount(index_flat, weights=weights, minlength=count + 1)[:count]
    return out.reshape(height, width, channels)


def _normalised_thumbnail(frame: np.ndarray) -> np.ndarray:
    small = thumbnail(luma(frame))
    return (small - small.mean()) / max(float(small.std()), 1e-3)


class FramePair:
    """Two consecutive source frames and the motion between them, measured once for every phase wanted.

    At 18 → 24 fps three output frames fall between some pairs; the flow,
    consistency and cut test do not depend on the phase, so they are kept.
    """

    def __init__(self, a: np.ndarray, b: np.ndarray) -> None:
        if a.shape != b.shape:
            raise ValueError(f"frames to interpolate differ in size: {a.shape} and {b.shape}")
        self.a, self.b = a, b
        self.forward = flow_to(a, b)
        """``a[p]`` shows what ``b[p + forward(p)]`` shows."""
        self.backward = flow_to(b, a)
        compensated = _sample(b, self.forward)
        thumb_a = _normalised_thumbnail(a)
        plain = float(np.abs(thumb_a - _normalised_thumbnail(b)).mean())
        moved = float(np.abs(thumb_a - _normalised_thumbnail(compensated)).mean())
        self.cut_score = (plain + moved) / 2
        self.is_cut = self.cut_score > CUT_THRESHOLD
        height, width = a.shape[:2]
        self.scale = min(1.0, PROJECTION_WIDTH / width)
        size = (max(1, round(width * self.scale)), max(1, round(height * self.scale)))
        # Flows on the projection grid, in its pixels.
        self._forward = cv2.resize(self.forward, size, interpolation=cv2.INTER_AREA) * self.scale
        self._backward = cv2.resize(self.backward, size, interpolation=cv2.INTER_AREA) * self.scale
        self._luma_a = cv2.resize(luma(a), size, interpolation=cv2.INTER_AREA).astype(np.float32)
        self._luma_b = cv2.resize(luma(b), size, interpolation=cv2.INTER_AREA).astype(np.float32)
        self._trust_a = self._trust(self._forward, self._backward)
        self._trust_b = self._trust(self._backward, self._forward)

    def _trust(self, there: np.ndarray, back: np.ndarray) -> np.ndarray:
        """1 where following the flow there and back returns to the pixel, falling off as it misses."""
        round_trip = there + _sample(back, there)
        miss = cv2.magnitude(round_trip[..., 0], round_trip[..., 1]) / self.scale
        return np.exp(-np.maximum(miss - CONSISTENT_PX, 0.0)).astype(np.float32)

    def at(self, t: float) -> np.ndarray:
        """The frame at phase ``t`` in (0, 1); at a cut, the nearer of the two frames."""
        if not 0.0 < t < 1.0:
            raise ValueError(f"phase must be strictly between 0 and 1, got {t!r}")
        if self.is_cut:
            return self.a if t <= 0.5 else self.b
        to_a, to_b, seen_a, seen_b = self._project(t)
        warped_a = _sample(self.a.astype(np.float32), to_a)
        warped_b = _sample(self.b.astype(np.float32), to_b)
        weight_a, weight_b = (1 - t) * seen_a, t * seen_b
        blended = (weight_a[..., None] * warped_a + weight_b[..., None] * warped_b) / (weight_a + weight_b)[
            ..., None
        ]
        return to_uint8(blended)

    def _sharpen(self, to_a: np.ndarray, to_b: np.ndarray, t: float) -> tuple[np.ndarray, np.ndarray]:
        """Motion edges moved to where the picture's edges are.

        DIS blurs motion across an object's outline over several pixels, so a
        band around a moving object gets a motion between its own and the
        background's, and both warps fetch the wrong pixels there. Each pixel
        may take the motion of a neighbour ``SHARPEN_REACH`` away (eight
        directions) when that motion makes ``a`` and ``b`` agree better there.
        """
        motion = to_b - to_a

        def mismatch(candidate: np.ndarray) -> np.ndarray:
            seen_a = _sample(self._luma_a, candidate, -t)
            seen_b = _sample(self._luma_b, candidate, 1 - t)
            return cv2.blur(np.abs(seen_a - seen_b), (5, 5))

        best = mismatch(motion)
        chosen = motion.copy()
        reach = SHARPEN_REACH
        padded = cv2.copyMakeBorder(motion, reach, reach, reach, reach, cv2.BORDER_REPLICATE)
        height, width = motion.shape[:2]
        for dy in (-reach, 0, reach):
            for dx in (-reach, 0, reach):
                if dx == dy == 0:
                    continue
                shifted = padded[reach + dy : reach + dy + height, reach + dx : reach + dx + width]
                candidate = np.ascontiguousarray(shifted)
                error = mismatch(candidate)
                better = error < best - SHARPEN_MARGIN
                best = np.where(better, error, best)
                chosen[better] = candidate[better]
        return -t * chosen, (1 - t) * chosen

    def _project(self, t: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Full-resolution flows from the output instant to ``a`` and to ``b``, and visibility in each."""
        forward, backward = self._forward, self._backward
        ones = np.ones_like(self._trust_a)
        from_a = _splat(np.dstack([forward * self._trust_a[..., None], self._trust_a, ones]), forward, t)
        # A pixel of b moves -backward from a to b; it is at q + (1 - t) * backward at time t.
        from_b = _splat(
            np.dstack([-backward * self._trust_b[..., None], self._trust_b, ones]), backward, 1 - t
        )
        total = from_a + from_b
        density = total[..., 2]
        motion = total[..., :2] / np.maximum(density, 1e-6)[..., None]
        # Where nothing consistent landed, the linear guess of Jiang et al. (Super SloMo, 2018).
        guess_to_a = -(1 - t) * t * forward + t * t * backward
        guess_to_b = (1 - t) ** 2 * forward - t * (1 - t) * backward
        landed = np.clip(density / 0.3, 0.0, 1.0)[..., None]
        to_a = landed * (-t * motion) + (1 - landed) * guess_to_a
        to_b = landed * ((1 - t) * motion) + (1 - landed) * guess_to_b
        to_a, to_b = self._sharpen(to_a, to_b, t)
        height, width = self.a.shape[:2]

        def full(field: np.ndarray, unit: float) -> np.ndarray:
            if self.scale == 1.0:
                return field
            return cv2.resize(field, (width, height), interpolation=cv2.INTER_LINEAR) / unit

        def seen(part: np.ndarray) -> np.ndarray:
            # A small floor keeps a point nobody saw (both densities 0) from dividing by zero.
            return np.clip(cv2.blur(part, (7, 7)) / VISIBLE_DENSITY, 0.0, 1.0) + 1e-3

        return (
            full(to_a, self.scale),
            full(to_b, self.scale),
            full(seen(from_a[..., _DENSITY]), 1.0),
            full(seen(from_b[..., _DENSITY]), 1.0),
        )


def interpolate(a: np.ndarray, b: np.ndarray, t: float) -> np.ndarray:
    """The frame at phase ``t`` in (0, 1) between uint8 RGB frames ``a`` and ``b``, as a retime makes it.

    Motion-compensated with occlusion handling; at a cut, the nearer frame unchanged.
    """
    return FramePair(_checked(a, "a"), _checked(b, "b")).at(t)


def _checked(frame: Any, name: str) -> np.ndarray:
    if not isinstance(frame, np.ndarray) or frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
        described = f"{frame.dtype} {frame.shape}" if isinstance(frame, np.ndarray) else type(frame).__name__
        raise ValueError(f"{name} must be a uint8 RGB frame (height, width, 3), got {described}")
    return frame


class Retimer:
    """A stream of frames at ``source_fps`` in, the same footage at ``target_fps`` out, at true speed.

    ``push(frame, pts_seconds)`` each source frame in order; it returns the
    output frames that are ready, each with its output time; ``flush()`` at
    the end returns the rest. Output frame ``k`` shows the instant
    ``k / target_fps`` after the first frame, and source frame ``i`` stands
    at ``i / source_fps``: the source rate, not the container's timestamps,
    says how far apart the frames are (a 16 fps film scanned into a 24 fps
    file has timestamps that are wrong by exactly what retiming corrects).
    The first frame's ``pts`` is the origin of the output times; the others
    are checked to rise and are otherwise not used.

    An output instant that falls on a source frame gets that frame, untouched
    (the same array): at equal rates every frame passes unchanged. One that
    falls between two frames is interpolated (``FramePair.at``), whether the
    target rate is higher or lower than the source's: going down (30 → 24)
    interpolates too, because dropping frames judders and merging them
    ghosts. Between the two sides of a cut the nearer frame is repeated.

    The output lasts as long as the input: the source's N frames cover
    ``N / source_fps`` seconds, and every output instant inside that span is
    emitted, so the output is ``ceil(N × target / source)`` frames, its
    duration longer by less than one output frame. Instants after the last
    source frame repeat it (there is nothing to interpolate towards).

    Only two source frames are held; output lags input by one frame.
    """

    def __init__(self, source_fps: float | Fraction, target_fps: float | Fraction) -> None:
        self.source_fps = check_rate(source_fps, "source_fps")
        self.target_fps = check_rate(target_fps, "target_fps")
        self._step = self.source_fps / self.target_fps
        """Source frames per output frame."""
        self._previous: np.ndarray | None = None
        self._origin = 0.0
        self._last_pts = -math.inf
        self._received = 0
        self._emitted = 0
        self._flushed = False
        self.counts = {"interpolated": 0, "repeated_at_cuts": 0, "held_at_end": 0, "cuts": 0}

    def push(self, frame: np.ndarray, pts_seconds: float) -> list[tuple[np.ndarray, float]]:
        """Takes the next source frame; returns the output frames (and their times) now complete."""
        if self._flushed:
            raise RuntimeError("this Retimer has been flushed: make a new one for the next stream")
        frame = _checked(frame, "frame")
        if not _is_number(pts_seconds) or not math.isfinite(pts_seconds):
            raise ValueError(f"pts_seconds must be a finite number of seconds, got {pts_seconds!r}")
        if pts_seconds <= self._last_pts:
            raise ValueError(
                f"frame {self._received} has pts {pts_seconds!r} s, "
                f"not after the frame before it ({self._last_pts!r} s)"
            )
        previous = self._previous
        if previous is not None and previous.shape != frame.shape:
            raise ValueError(
                f"frame {self._received} is {frame.shape}, the stream's frames are {previous.shape}"
            )
        if previous is None:
            self._origin = float(pts_seconds)
        self._last_pts = float(pts_seconds)
        self._received += 1
        self._previous = frame
        if previous is None:
            return []
        return self._emit_until(self._received - 1, previous, frame)

    def flush(self) -> list[tuple[np.ndarray, float]]:
        """The output frames after the last source frame (it is repeated up to the input's end)."""
        self._flushed = True
        last = self._previous
        self._previous = None
        if last is None:
            return []
        return self._emit_until(self._received, last, None)

    def run(self, frames: Iterable[tuple[np.ndarray, float]]) -> Iterator[tuple[np.ndarray, float]]:
        """Every output frame with its time, reading ``(frame, pts_seconds)`` pairs lazily."""
        for frame, pts in frames:
            yield from self.push(frame, pts)
        yield from self.flush()

    def _emit_until(self, end: int, a: np.ndarray, b: np.ndarray | None) -> list[tuple[np.ndarray, float]]:
        """Output frames whose instants fall before source frame ``end``, made from ``a`` (frame ``end - 1``)
        and ``b`` (frame ``end``; ``None`` after the last)."""
        out = []
        pair: FramePair | None = None
        start = end - 1
        while (position := self._emitted * self._step) < end:
            phase = position - start
            if phase == 0:
                image = a
            elif b is None:
                image = a
                self.counts["held_at_end"] += 1
            else:
                if pair is None:
                    pair = FramePair(a, b)
                    self.counts["cuts"] += pair.is_cut
                image = pair.at(float(phase))
                self.counts["repeated_at_cuts" if pair.is_cut else "interpolated"] += 1
            out.append((image, self._origin + float(self._emitted / self.target_fps)))
            self._emitted += 1
        return out

    def manifest(self) -> dict[str, Any]:
        """What the retime did, for the remaster manifest: rates, frame counts, durations, method."""
        return {
            "source_fps": str(self.source_fps),
            "target_fps": str(self.target_fps),
            "method": "motion-compensated interpolation (DIS flow, flow projection, "
            "forward/backward consistency for occlusions, nearer frame at cuts)",
            "frames_in": self._received,
            "frames_out": self._emitted,
            "duration_in_s": float(self._received / self.source_fps),
            "duration_out_s": float(self._emitted / self.target_fps),
            **self.counts,
        }
