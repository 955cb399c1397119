"""Interlaced video: which field comes first, measured as well as declared, and a real deinterlacer.

Tape and broadcast video is mostly interlaced: each frame holds two fields
taken half a frame period apart, woven line by line. A stream's flag says so
(``field_order``) when the muxer or encoder bothered; DV never does, and
progressive film is often flagged interlaced on DVD. So, as ffmpeg's ``idet``
does, the picture is measured too: a field woven with a field of the next
frame combs less when the two are the closer in time, which tells top field
first from bottom field first, and a progressive picture combs less than
either weave.

``Deinterlacer`` runs FFmpeg's ``bwdif`` (motion-adaptive, the best of the
wheel's deinterlacers) through PyAV's filter graph, one frame out per frame in
(``send_frame``), so frame count and timestamps stay those of the source.
``FieldRestorer`` restores the two fields of each frame as two half-height
pictures, each in a stream of its own parity, and weaves them back: the
fields stay fields.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator
from fractions import Fraction
from itertools import pairwise
from typing import Any

import av
import numpy as np

# AVFieldOrder: how the stream says its fields are stored and shown (display order wins).
_DECLARED = {0: "unknown", 1: "progressive", 2: "tff", 3: "bff", 4: "bff", 5: "tff"}
_CODEC_DEFAULT = {"dvvideo": "bff"}  # DV25/DVCPRO: bottom field first, by the standard
COMB_LEVEL = 10.0
"""Luma levels a line must stand out by, above and below alike, to count as a comb tooth."""
MOTION_FLOOR = 0.002
"""Share of comb teeth a weave of two frames' fields must reach for the pair to say anything."""


def _luma(frame: np.ndarray) -> np.ndarray:
    if frame.ndim == 2:
        return frame.astype(np.float32)
    rgb = frame.astype(np.float32)
    return 0.299 * rgb[..., 0] + 0.587 * rgb[..., 1] + 0.114 * rgb[..., 2]


def comb(luma: np.ndarray) -> float:
    """Share of pixels that differ from the lines above and below in the same direction (comb teeth)."""
    if luma.shape[0] < 3:
        return 0.0
    mid, above, below = luma[1:-1], luma[:-2], luma[2:]
    return float(np.mean((mid - above) * (mid - below) > COMB_LEVEL * COMB_LEVEL))


def weave(top: np.ndarray, bottom: np.ndarray) -> np.ndarray:
    """The even lines of ``top`` with the odd lines of ``bottom``."""
    out = top.copy()
    out[1::2] = bottom[1::2]
    return out


class FieldMeter:
    """Votes, frame pair by frame pair, for progressive, top field first or bottom field first."""

    def __init__(self) -> None:
        self.previous: np.ndarray | None = None
        self.votes = {"progressive": 0, "tff": 0, "bff": 0, "undetermined": 0}
        self.pairs = 0
        self.comb_sum = 0.0

    def add(self, frame: np.ndarray) -> None:
        luma = _luma(frame)
        if self.previous is not None:
            self._vote(self.previous, luma)
        self.previous = luma

    def _vote(self, cur: np.ndarray, nxt: np.ndarray) -> None:
        c_cur = comb(cur)
        c_tff = comb(weave(nxt, cur))  # top of the next frame with this frame's bottom: close in time if tff
        c_bff = comb(weave(cur, nxt))  # this frame's top with the next frame's bottom: close if bff
        self.pairs += 1
        self.comb_sum += c_cur
        if max(c_tff, c_bff) < MOTION_FLOOR:
            return  # nothing moves: fields of any order look alike
        low = min(c_tff, c_bff)
        if c_cur < 0.4 * low:
            self.votes["progressive"] += 1
        elif c_tff < 0.7 * c_bff:
            self.votes["tff"] += 1
        elif c_bff < 0.7 * c_tff:
            self.votes["bff"] += 1
        else:
            self.votes["undetermined"] += 1

    def result(self) -> dict[str, Any]:
        decided = {k: v for k, v in self.votes.items() if k != "undetermined"}
        total = sum(self.votes.values())
        best = max(decided, key=lambda k: decided[k])
        measured = best if total >= 3 and decided[best] >= 0.6 * total else "undetermined"
        return {
            "measured": measured,
            "votes": dict(self.votes),
            "pairs": self.pairs,
            "comb": round(self.comb_sum / max(self.pairs, 1), 5),
        }


def declared_order(stream: Any, interlaced_flags: Iterable[bool]) -> str:
    """What the stream says: its field order, else the frames' interlaced flag and the codec's norm."""
    declared = _DECLARED.get(int(stream.codec_context.field_order or 0), "unknown")
    if declared == "unknown" and any(interlaced_flags):
        return _CODEC_DEFAULT.get(stream.codec_context.name, "interlaced")
    return declared


def decide(declared: str, measured: str) -> tuple[str, str]:
    """The field order to work with ('progressive', 'tff' or 'bff') and why, in words."""
    if measured in ("tff", "bff"):
        if declared not in (measured, "unknown", "interlaced"):
            return measured, f"the picture combs as {measured}, though the stream says {declared}"
        return measured, f"the picture combs as {measured} (stream says {declared})"
    if measured == "progressive":
        if declared in ("tff", "bff", "interlaced"):
            return "progressive", f"flagged {declared}, but the picture does not comb: progressive content"
        return "progressive", "the picture does not comb"
    if declared in ("tff", "bff"):
        return declared, f"no motion to measure; the stream says {declared}"
    if declared == "interlaced":
        return "tff", "frames flagged interlaced, order unknown and not measurable: top field first assumed"
    return "progressive", f"no motion to measure; the stream says {declared}"


def detect(open_container: Any, stream_picker: Any, frames: int = 24) -> dict[str, Any]:
    """Declared and measured field order of an asset, from its first ``frames`` decoded frames."""
    meter = FieldMeter()
    flags: list[bool] = []
    with open_container() as container:
        stream = stream_picker(container)
        stream.thread_type = "AUTO"
        for index, frame in enumerate(container.decode(stream)):
            flags.append(bool(frame.interlaced_frame))
            meter.add(frame.to_ndarray(format="gray"))
            if index + 1 >= frames:
                break
        declared = declared_order(stream, flags)
    measured = meter.result()
    order, why = decide(declared, measured["measured"])
    return {
        "field_order": order,
        "interlaced": order in ("tff", "bff"),
        "declared": declared,
        "why": why,
        **measured,
    }


class Deinterlacer:
    """bwdif through PyAV's filter graph: RGB frames in, deinterlaced RGB frames out, one for one."""

    def __init__(self, width: int, height: int, order: str, time_base: Fraction = Fraction(1, 25)) -> None:
        self.graph = av.filter.Graph()
        source = self.graph.add_buffer(
            width=width, height=height, format=av.VideoFormat("rgb24"), time_base=time_base
        )
        parity = {"tff": "tff", "bff": "bff"}[order]
        chain = [
            self.graph.add("bwdif", f"mode=send_frame:parity={parity}:deint=all"),
            self.graph.add("format", "rgb24"),
            self.graph.add("buffersink"),
        ]
        source.link_to(chain[0])
        for a, b in pairwise(chain):
            a.link_to(b)
        self.graph.configure()
        self.pushed = 0

    def _drain(self) -> Iterator[np.ndarray]:
        while True:
            try:
                frame = self.graph.vpull()
            except (av.BlockingIOError, av.EOFError):
                return
            yield frame.to_ndarray(format="rgb24")

    def push(self, rgb: np.ndarray) -> list[np.ndarray]:
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
        frame.pts = self.pushed
        self.pushed += 1
        self.graph.push(frame)
        return list(self._drain())

    def flush(self) -> list[np.ndarray]:
        self.graph.push(None)
        return list(self._drain())


class FieldRestorer:
    """A restorer per field parity: each sees its fields as a half-height progressive stream."""

    def __init__(self, make_restorer: Any) -> None:
        self.top, self.bottom = make_restorer(), make_restorer()

    @property
    def latency(self) -> int:
        return int(self.top.latency)

    @staticmethod
    def _weave(tops: list[np.ndarray], bottoms: list[np.ndarray], height: int) -> list[np.ndarray]:
        out = []
        for top, bottom in zip(tops, bottoms, strict=True):
            frame = np.empty((height, *top.shape[1:]), top.dtype)
            frame[0::2], frame[1::2] = top, bottom
            out.append(frame)
        return out

    def push(self, frame: np.ndarray) -> list[np.ndarray]:
        self.height = frame.shape[0]
        return self._weave(
            self.top.push(np.ascontiguousarray(frame[0::2])),
            self.bottom.push(np.ascontiguousarray(frame[1::2])),
            self.height,
        )

    def flush(self) -> list[np.ndarray]:
        if not hasattr(self, "height"):
            return []
        return self._weave(self.top.flush(), self.bottom.flush(), self.height)


class FrameDeinterlacer:
    """bwdif on decoded frames as they come, in their own pixel format: one frame out per frame
    in (``send_frame``), with the source's timestamps, so analysis counts and times frames as
    it would without it. Output lags input by a frame; ``flush`` returns the last ones."""

    def __init__(self, first: av.VideoFrame, order: str, time_base: Fraction | None) -> None:
        self.graph = av.filter.Graph()
        source = self.graph.add_buffer(
            width=first.width,
            height=first.height,
            format=first.format,
            time_base=time_base or Fraction(1, 25),
        )
        parity = {"tff": "tff", "bff": "bff"}[order]
        bwdif = self.graph.add("bwdif", f"mode=send_frame:parity={parity}:deint=all")
        sink = self.graph.add("buffersink")
        source.link_to(bwdif)
        bwdif.link_to(sink)
        self.graph.configure()
        self.pushed = 0

    def _drain(self) -> list[av.VideoFrame]:
        out: list[av.VideoFrame] = []
        while True:
            try:
                out.append(self.graph.vpull())
            except (av.BlockingIOError, av.EOFError):
                return out

    def push(self, frame: av.VideoFrame) -> list[av.VideoFrame]:
        if frame.pts is None:  # the filter wants timestamps; a count stands in for missing ones
            frame.pts = self.pushed
        self.pushed += 1
        self.graph.push(frame)
        return self._drain()

    def flush(self) -> list[av.VideoFrame]:
        self.graph.push(None)
        return self._drain()


def deinterlaced(
    frames: Iterator[av.VideoFrame], stream: Any, probe_frames: int = 24, on_decision: Any = None
) -> Iterator[av.VideoFrame]:
    """``frames`` as analysis should see them: deinterlaced with bwdif when the asset is
    interlaced, else unchanged. Whether it is, and in which field order, is decided as
    ``detect`` does (the stream's flags plus the measured combing of the first ``probe_frames``
    frames), on frames already decoded, so the file is decoded once. ``on_decision`` is called
    with the decision (the ``detect`` dict) before the first frame comes out."""
    try:
        meter = FieldMeter()
        flags: list[bool] = []
        head: list[av.VideoFrame] = []
        for frame in frames:
            head.append(frame)
            flags.append(bool(frame.interlaced_frame))
            meter.add(frame.to_ndarray(format="gray"))
            if len(head) >= probe_frames:
                break
        measured = meter.result()
        order, why = decide(declared_order(stream, flags), measured["measured"])
        decision = {"field_order": order, "interlaced": order in ("tff", "bff"), "why": why, **measured}
        if on_decision is not None:
            on_decision(decision)
        if not head:
            return
        if not decision["interlaced"]:
            yield from head
            yield from frames
            return
        deint = FrameDeinterlacer(head[0], order, stream.time_base)
        shape = (head[0].width, head[0].height, head[0].format.name)
        for frame in itertools.chain(head, frames):
            if (frame.width, frame.height, frame.format.name) != shape:
                # a stream that changes size or format mid-way (a tape's mode switch): the
                # filter graph is built for one, so finish it and start another
                yield from deint.flush()
                deint = FrameDeinterlacer(frame, order, stream.time_base)
                shape = (frame.width, frame.height, frame.format.name)
            yield from deint.push(frame)
        yield from deint.flush()
    finally:  # let go of the decoder now, before its container closes
        close = getattr(frames, "close", None)
        if close is not None:
            close()
