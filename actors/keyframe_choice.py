"""Keyframe choice: which decoded frame of a shot becomes its keyframe, in bounded memory.

A shot's end is known only once a later boundary is found, and a boundary may be placed late,
so the keyframe cannot be chosen as frames go by. This module keeps a few candidates per shot
(the sharpest frame of each stretch of it), hands them between shots when a boundary moves,
and picks one in the middle of the shot at the end. Its only job is that choice; what a frame
scores and how memory is bounded per asset are the segment run's.

A long take (an interview, a surveillance camera, news rushes) is more than one picture: one
keyframe would leave whoever walks in later unfindable. So a shot longer than a bound also
gets further keyframes among the same candidates, each one whose picture differs from every
keyframe already chosen (a small luma thumbnail's correlation and a colour histogram, the
features shot detection measures anyway), never two within a minimum gap. A static take
stays one keyframe: more pictures of the same thing would only repeat it in search.
"""

from __future__ import annotations

from dataclasses import dataclass

import av
import numpy as np


class KeyframeCandidate:
    """A keyframe candidate: the decoded frame itself until memory asks for a small copy,
    with what its picture looks like in small (``unit``: mean-removed unit-norm luma thumbnail;
    ``hist``: hue/saturation histogram summing to 1)."""

    __slots__ = ("frame", "hist", "idx", "image", "pts", "score", "unit")

    def __init__(
        self,
        idx: int,
        score: float,
        frame: av.VideoFrame,
        unit: np.ndarray | None = None,
        hist: np.ndarray | None = None,
    ) -> None:
        self.idx, self.score = idx, score
        self.pts: int | None = frame.pts if frame is not None else None
        self.frame: av.VideoFrame | None = frame  # None once released or turned into ``image``
        self.image: np.ndarray | None = None
        self.unit, self.hist = unit, hist

    def change(self, other: KeyframeCandidate) -> float:
        """How different the two pictures are, 0 (alike) to 1: the larger of the structural
        change (1 - correlation of the thumbnails) and half the histograms' L1 distance."""
        if self.unit is None or other.unit is None or self.hist is None or other.hist is None:
            return 0.0
        structure = 1.0 - float(np.dot(self.unit, other.unit))
        colour = 0.5 * float(np.abs(self.hist - other.hist).sum())
        return min(1.0, max(structure, colour))


@dataclass(slots=True)
class _Stretch:
    first: int
    last: int
    best: KeyframeCandidate


class KeyframePicker:
    """Keeps the sharpest frame of each of at most ``capacity`` consecutive runs of a shot.

    Runs double in length when they are all full, so a shot of any length is covered evenly by
    a few candidates and the keyframe can be chosen near its middle once its end is known.
    Methods return the candidates they let go of, so their decoded frames can be released.
    """

    def __init__(self, capacity: int = 8, size: int = 1) -> None:
        self.capacity, self.size = capacity, size
        self.bins: list[_Stretch] = []

    def add(self, cand: KeyframeCandidate) -> list[KeyframeCandidate]:
        last = self.bins[-1] if self.bins else None
        if last is not None and last.last - last.first + 1 < self.size:
            last.last = cand.idx
            if cand.score > last.best.score:
                old, last.best = last.best, cand
                return [old]
            return [cand]
        self.bins.append(_Stretch(cand.idx, cand.idx, cand))
        return self._shrink()

    def _shrink(self) -> list[KeyframeCandidate]:
        # Pair all bins but the newest (still filling), keeping the sharper of each pair.
        released: list[KeyframeCandidate] = []
        while len(self.bins) > self.capacity:
            head, newest = self.bins[:-1], self.bins[-1]
            merged: list[_Stretch] = []
            for a, b in zip(head[0::2], head[1::2], strict=False):
                keep, drop = (a.best, b.best) if a.best.score >= b.best.score else (b.best, a.best)
                merged.append(_Stretch(a.first, b.last, keep))
                released.append(drop)
            if len(head) % 2:
                merged.append(head[-1])
            self.bins = [*merged, newest]
            self.size *= 2
        return released

    def split(self, at: int) -> KeyframePicker:
        """Hand the candidates from frame ``at`` on to a new picker (a boundary placed late)."""
        other = KeyframePicker(self.capacity, self.size)
        keep: list[_Stretch] = []
        for b in self.bins:
            if b.best.idx >= at:
                b.first = max(b.first, at)
                other.bins.append(b)
            else:
                b.last = min(b.last, at - 1)
                keep.append(b)
        self.bins = keep
        return other

    def absorb(self, other: KeyframePicker) -> list[KeyframeCandidate]:
        self.bins.extend(other.bins)
        self.size = max(self.size, other.size)
        return self._shrink()

    def choose(self, start: int, end: int) -> KeyframeCandidate | None:
        """The sharpest candidate in the middle 60 % of [start, end), else the most central."""
        if not self.bins:
            return None
        n = end - start
        lo, hi = start + 0.2 * n, end - 0.2 * n
        central = [b.best for b in self.bins if lo <= b.best.idx < hi]
        if central:
            return max(central, key=lambda c: c.score)
        mid = start + n / 2
        return min((b.best for b in self.bins), key=lambda c: abs(c.idx - mid))

    def spread(
        self, start: int, end: int, taken: list[KeyframeCandidate], most: int
    ) -> list[KeyframeCandidate]:
        """Up to ``most`` candidates besides ``taken``, spread over [start, end): for each of
        ``most`` evenly spaced points, the nearest candidate not picked yet; in time order. These
        are the frames a face is followed through (`track_frames`): a shot's sharpest frames near
        its quarters see more of who passes than its keyframe alone."""
        pool = [b.best for b in self.bins if all(b.best is not t for t in taken)]
        picked: list[KeyframeCandidate] = []
        for i in range(most):
            if not pool:
                break
            point = start + (i + 0.5) * (end - start) / most
            near = min(pool, key=lambda c: abs(c.idx - point))
            pool.remove(near)
            picked.append(near)
        return sorted(picked, key=lambda c: c.idx)

    def further(
        self, chosen: KeyframeCandidate, *, most: int, least_change: float, least_gap: int
    ) -> list[KeyframeCandidate]:
        """Up to ``most`` more keyframes besides ``chosen``, in time order: each candidate that
        differs by at least ``least_change`` from every keyframe taken so far and lies at least
        ``least_gap`` frames from each. Candidates are tried most different first, so a take
        that changes once gets its two pictures before any in-between."""
        taken = [chosen]
        pool = [b.best for b in self.bins if b.best is not chosen]
        while pool and len(taken) <= most:
            distance = {id(c): min(c.change(t) for t in taken) for c in pool}
            best = max(pool, key=lambda c: (distance[id(c)], c.score))
            if distance[id(best)] < least_change:
                break
            pool.remove(best)
            if all(abs(best.idx - t.idx) >= least_gap for t in taken):
                taken.append(best)
        return sorted(taken[1:], key=lambda c: c.idx)
