"""Presentation timestamps for decoded frames, made the way a player makes them.

Most containers give each decoded frame a rising ``pts``. Some do not: AVI
has no timestamps at all, only a frame index, and a DivX-era AVI with packed
B-frames hands the decoder chunks whose index-derived times come out of the
decoder in decode order (2, 4, 3, 6, 5, ...); raw DV and elementary streams
may carry none. None of that is damage. ``Timeline`` looks at the first
frames of an asset: if their ``pts`` rise, it uses them (variable frame rate
kept), stamping only a frame whose ``pts`` is missing or does not rise one
frame period after the one before; if they do not, it stamps every frame from
its index at the stream's rate, from the stream's start, as players do for
AVI. Either way it counts what it stamped, for the manifest.
"""

from __future__ import annotations

from collections.abc import Sequence
from fractions import Fraction
from itertools import pairwise
from typing import Any


def frame_rate(stream: Any) -> Fraction:
    """The stream's frame rate: the first plausible of its average, guessed, base and codec rates.

    Raw DV, for one, reports an average rate of 60000 (its time base), which no footage has.
    """
    for rate in (
        stream.average_rate,
        stream.guessed_rate,
        stream.base_rate,
        getattr(getattr(stream, "codec_context", None), "framerate", None),
    ):
        if rate and 0 < Fraction(rate) <= 1000:
            return Fraction(rate)
    return Fraction(25)


def _rising(values: Sequence[int | None]) -> bool:
    present = [v for v in values if v is not None]
    return len(present) == len(values) and all(b > a for a, b in pairwise(present))


class Timeline:
    """Assigns each decoded frame, in the order decoded, the timestamp to write it with."""

    def __init__(self, stream: Any, sample_pts: Sequence[int | None]) -> None:
        self.time_base = Fraction(stream.time_base)
        self.rate = frame_rate(stream)
        self.frame_ticks = 1 / (self.rate * self.time_base)  # one frame period in time_base units
        self.from_index = not _rising(list(sample_pts))
        firsts = [p for p in sample_pts if p is not None]
        start = stream.start_time if stream.start_time is not None else (min(firsts) if firsts else 0)
        self.start = int(start)
        self.index = 0
        self.last: int | None = None
        self.restamped = 0

    def stamp(self, pts: int | None) -> int:
        if self.from_index:
            value = self.start + round(self.index * self.frame_ticks)
            self.restamped += int(pts != value)
        elif pts is None or (self.last is not None and pts <= self.last):
            value = (self.last if self.last is not None else self.start) + max(1, round(self.frame_ticks))
            if self.last is None:
                value = self.start
            self.restamped += 1
        else:
            value = int(pts)
        self.index += 1
        self.last = value
        return value

    def manifest(self) -> dict[str, Any]:
        if self.from_index:
            how = (
                f"stamped from the frame index at {float(self.rate):g} fps: the container's timestamps "
                "are not in presentation order (decode-order times, e.g. packed B-frames in AVI)"
            )
        elif self.restamped:
            how = "the frames' own timestamps; missing or repeated ones stamped one frame period on"
        else:
            how = "the frames' own timestamps"
        return {"timestamps": how, "restamped_frames": self.restamped, "frames": self.index}
