"""The video half of the QC record: what the stream declares, and what its decoded frames show.

``stream_facts`` reads the declarations (codec, profile, pixel format, aspect, colour tags,
timecode, frame count) without decoding. ``VideoMeter`` then takes every decoded frame once,
as the decoder hands it over, and keeps only running figures and the spans it found, so its
memory does not grow with the length of the file:

- each frame is scaled to a small picture (``analysis_width`` wide) *in its own pixel format*,
  so that its luma keeps the code values the file holds (a conversion to ``gray`` would stretch
  limited range to full and hide every excursion below 16 or above 235); black frames (like
  ffmpeg's ``blackdetect``), frozen frames (``freezedetect``) and luma outside broadcast range
  (QCTools' BRNG) are measured on it;
- a few runs of consecutive frames are also taken at full height (only the width shrinks, so
  lines stay lines) for the combing measure of ``actors.fields`` (like ffmpeg's ``idet``);
- presentation timestamps are checked for jumps (not after the one before) and gaps (over 1.5
  nominal frame durations).
"""

from __future__ import annotations

import heapq
from fractions import Fraction
from typing import Any

import av
import numpy as np
from av.video.reformatter import VideoReformatter

from actors.fields import FieldMeter, decide, declared_order

PRIMARIES = {
    1: "bt709",
    4: "bt470m",
    5: "bt470bg",
    6: "smpte170m",
    7: "smpte240m",
    8: "film",
    9: "bt2020",
    10: "smpte428",
    11: "smpte431",
    12: "smpte432",
    22: "ebu3213",
}
TRANSFERS = {
    1: "bt709",
    4: "gamma22",
    5: "gamma28",
    6: "smpte170m",
    7: "smpte240m",
    8: "linear",
    9: "log100",
    10: "log316",
    11: "iec61966-2-4",
    12: "bt1361e",
    13: "iec61966-2-1",
    14: "bt2020-10",
    15: "bt2020-12",
    16: "smpte2084",
    17: "smpte428",
    18: "arib-std-b67",
}
MATRICES = {
    0: "gbr",
    1: "bt709",
    4: "fcc",
    5: "bt470bg",
    6: "smpte170m",
    7: "smpte240m",
    8: "ycgco",
    9: "bt2020nc",
    10: "bt2020c",
    11: "smpte2085",
    12: "chroma-derived-nc",
    13: "chroma-derived-c",
    14: "ictcp",
}
RANGES = {1: "tv", 2: "pc"}
FIELD_WIDTH = 360
"""Width of the full-height pictures the combing is measured on."""
FIELD_RUNS = 4
"""How many runs of consecutive frames, spread over the file, the combing is measured on."""
REORDER = 4
"""Timestamps are checked in presentation order over a window of this many frames, as a player
re-stamps them: an AVI of DivX packed B-frames hands frames over with their chunks' numbers
(2, 4, 3, 6, 5, …), its container's normal quirk, not damage."""


def _name(table: dict[int, str], value: Any) -> str:
    try:
        return table.get(int(value), "unknown")
    except (TypeError, ValueError):
        return "unknown"


def _ratio(value: Fraction | None) -> str | None:
    return f"{value.numerator}:{value.denominator}" if value else None


def bit_depth(pix_fmt: str) -> int:
    return int(av.VideoFormat(pix_fmt).components[0].bits)


def chroma_subsampling(pix_fmt: str) -> str:
    """J:a:b of a pixel format ('4:0:0' for luma only, '4:4:4' for RGB)."""
    fmt = av.VideoFormat(pix_fmt, 16, 16)
    if fmt.is_rgb or fmt.has_palette:
        return "4:4:4"
    if len(fmt.components) < 3 or pix_fmt.startswith(("gray", "ya")):
        return "4:0:0"
    across, down = 16 // max(fmt.chroma_width(16), 1), 16 // max(fmt.chroma_height(16), 1)
    return {
        (1, 1): "4:4:4",
        (2, 1): "4:2:2",
        (2, 2): "4:2:0",
        (4, 1): "4:1:1",
        (4, 4): "4:1:0",
        (1, 2): "4:4:0",
    }.get((across, down), f"1/{across}x1/{down}")


def analysis_format(pix_fmt: str) -> tuple[str, bool]:
    """The pixel format a frame is scaled in for analysis, and whether its first plane holds the
    source's luma code values (YUV and grey do; RGB and palettes give a derived luma)."""
    fmt = av.VideoFormat(pix_fmt)
    bits = bit_depth(pix_fmt)
    if fmt.is_rgb or fmt.has_palette:
        return "gray", False
    if fmt.is_planar and pix_fmt.startswith(("yuv", "gray")) and bits in (8, 9, 10, 12, 14, 16):
        return pix_fmt, True
    if pix_fmt.startswith(("gray", "ya")):
        return ("gray" if bits <= 8 else "gray16le"), bits <= 8
    return ("yuv420p" if bits <= 8 else "yuv420p10le" if bits <= 10 else "yuv420p12le"), True


def luma_plane(frame: av.VideoFrame) -> np.ndarray:
    """The first plane of a frame as an array of its code values (a view, no copy)."""
    plane = frame.planes[0]
    dtype = np.dtype(np.uint8 if bit_depth(frame.format.name) <= 8 else np.uint16)
    rows = np.frombuffer(memoryview(plane), dtype).reshape(plane.height, plane.line_size // dtype.itemsize)
    return rows[:, : plane.width]


def timecode(container: Any, stream: Any) -> str | None:
    """The start timecode where the file carries one: in the stream's, a data stream's
    (QuickTime tmcd) or the container's metadata."""
    for source in (stream, *container.streams, container):
        value = (getattr(source, "metadata", None) or {}).get("timecode")
        if value:
            return str(value)
    return None


def stream_facts(container: Any, stream: Any) -> dict[str, Any]:
    """What the video stream declares, before anything is decoded."""
    ctx = stream.codec_context
    pix_fmt = ctx.pix_fmt
    width, height = int(ctx.width or 0), int(ctx.height or 0)
    rates = [float(r) for r in (stream.average_rate, stream.guessed_rate, stream.base_rate) if r]
    fps = next((r for r in rates if 0 < r < 1000), None)  # raw DV's average rate can read 60000
    duration = None
    if stream.duration is not None and stream.time_base is not None:
        duration = float(stream.duration * stream.time_base)
    elif container.duration is not None:
        duration = container.duration / av.time_base
    declared = int(stream.frames or 0) or (round(duration * fps) if duration and fps else None)
    sar = ctx.sample_aspect_ratio or stream.sample_aspect_ratio
    sar = Fraction(sar) if sar and Fraction(sar) > 0 else None
    dar = Fraction(width * (sar or 1), height) if width and height else None
    return {
        "video_codec": ctx.name,
        "video_profile": ctx.profile or None,
        "pix_fmt": pix_fmt,
        "bit_depth": bit_depth(pix_fmt) if pix_fmt else None,
        "chroma_subsampling": chroma_subsampling(pix_fmt) if pix_fmt else None,
        "width": width or None,
        "height": height or None,
        "fps": fps,
        "duration_s": duration,
        "sample_aspect_ratio": _ratio(sar),
        "display_aspect_ratio": _ratio(dar),
        "timecode": timecode(container, stream),
        "frames_declared": declared,
        "color_primaries": _name(PRIMARIES, ctx.color_primaries),
        "color_transfer": _name(TRANSFERS, ctx.color_trc),
        "color_matrix": _name(MATRICES, ctx.colorspace),
        "color_range": _name(RANGES, ctx.color_range),
    }


class Spans:
    """Runs of a condition over time, kept when they last at least ``min_s``; at most ``limit``."""

    def __init__(self, min_s: float, limit: int) -> None:
        self.min_s, self.limit = min_s, limit
        self.spans: list[dict[str, float]] = []
        self.start: float | None = None
        self.end = 0.0

    def add(self, on: bool, start: float, end: float) -> None:
        if on:
            if self.start is None:
                self.start = start
            self.end = end
        else:
            self.close()

    def close(self) -> None:
        start = self.start
        if start is not None and self.end - start >= self.min_s - 1e-6 and len(self.spans) < self.limit:
            self.spans.append({"start_s": round(start, 4), "end_s": round(self.end, 4)})
        self.start = None


class VideoMeter:
    """Takes every decoded frame of the stream once; ``result`` gives the measured columns."""

    def __init__(self, stream: Any, facts: dict[str, Any], params: Any) -> None:
        self.stream, self.params = stream, params
        width, height = facts["width"] or 0, facts["height"] or 0
        self.fps = facts["fps"] or 25.0
        self.step = 1.0 / self.fps
        self.bits = facts["bit_depth"] or 8
        self.scale = float(2 ** (self.bits - 8))
        self.format, self.code_values = analysis_format(facts["pix_fmt"] or "yuv420p")
        self.small = (
            params.analysis_width,
            max(2, round(height * params.analysis_width / max(width, 1) / 2) * 2),
        )
        self.field_size = (min(width, FIELD_WIDTH), height)
        # FFmpeg's grey formats are full range by convention, as are the JPEG (yuvj) ones
        limited = facts["color_range"] != "pc" and not (facts["pix_fmt"] or "").startswith(("yuvj", "gray"))
        self.range_checked = self.code_values and limited
        self.low, self.high = 16 * self.scale, 235 * self.scale  # broadcast range, scaled to the bit depth
        self.black_level = (16 + params.black_luma * 219) if limited else params.black_luma * 255
        self.fields = FieldMeter()
        # one scaler each, kept: its SwsContext is made once, not per frame (as frame.reformat does)
        self.scaler, self.field_scaler = VideoReformatter(), VideoReformatter()
        self.field_starts = self._field_runs(facts["frames_declared"])
        self.flags: list[bool] = []
        self.black = Spans(params.black_min_s, params.max_events)
        self.frozen = Spans(params.freeze_min_s, params.max_events)
        self.previous: np.ndarray | None = None
        self.pending: list[tuple[float, int]] = []
        self.last_at: float | None = None
        self.timestamps: list[dict[str, Any]] = []
        self.gaps = self.jumps = 0
        self.frames = self.outside = self.samples = 0
        self.luma_min: int | None = None
        self.luma_max: int | None = None
        self.end_s = 0.0
        self.corrupt = 0
        self.placeholders = 0  # chunks counted as frames that hold none (set by the decoder loop)

    def _field_runs(self, declared: int | None) -> set[int]:
        run = max(self.params.field_frames // FIELD_RUNS, 2) if self.params.field_frames else 0
        if not run:
            return set()
        if not declared or declared <= run * FIELD_RUNS:
            return set(range(self.params.field_frames))
        starts = [int(declared * k / FIELD_RUNS) for k in range(FIELD_RUNS)]
        return {s + i for s in starts for i in range(run)}

    def add(self, frame: av.VideoFrame) -> bool:
        """Measure one frame; says whether the decoder marked it damaged."""
        index = self.frames
        self.frames += 1
        start = self._time(frame, index)
        end = start + self.step
        self.end_s = max(self.end_s, end)
        small = self.scaler.reformat(
            frame,
            width=self.small[0],
            height=self.small[1],
            format=self.format,
            interpolation="AREA",
            threads=1,
        )
        luma = luma_plane(small)
        lo, hi = int(luma.min()), int(luma.max())
        self.luma_min = lo if self.luma_min is None else min(self.luma_min, lo)
        self.luma_max = hi if self.luma_max is None else max(self.luma_max, hi)
        if self.range_checked:
            self.outside += int(np.count_nonzero((luma < self.low) | (luma > self.high)))
            self.samples += luma.size
        y8 = luma.astype(np.float32) / self.scale if self.code_values else luma.astype(np.float32)
        is_black = float(np.mean(y8 <= self.black_level)) >= self.params.black_share
        self.black.add(is_black, start, end)
        if self.previous is not None:
            still = float(np.mean(np.abs(y8 - self.previous))) < self.params.freeze_diff
            # a frozen span starts with the frame that the next ones repeat
            self.frozen.add(still and not is_black, start - self.step, end)
        self.previous = y8
        if index in self.field_starts:
            self.flags.append(bool(frame.interlaced_frame))
            if index - 1 not in self.field_starts:
                self.fields.previous = None  # a new run: do not weave across the skipped frames
            whole = luma_plane(
                self.field_scaler.reformat(
                    frame, width=self.field_size[0], height=self.field_size[1], format=self.format, threads=1
                )
            )
            self.fields.add(whole.astype(np.float32) / self.scale if self.code_values else whole)
        corrupt = bool(getattr(frame, "is_corrupt", False))
        self.corrupt += corrupt
        return corrupt

    def _time(self, frame: av.VideoFrame, index: int) -> float:
        """The frame's time in seconds; its timestamp joins the reorder window."""
        pts = frame.pts
        if pts is None or frame.time_base is None:
            return index * self.step
        at = float(pts * frame.time_base)
        heapq.heappush(self.pending, (at, index))
        if len(self.pending) > REORDER:
            self._check(*heapq.heappop(self.pending))
        return at

    def _check(self, at: float, index: int) -> None:
        """A timestamp in presentation order: a jump if not after the last, a gap if far after it."""
        if self.last_at is not None:
            delta = at - self.last_at
            kind = "jump" if delta <= 1e-9 else "gap" if delta > 1.5 * self.step else None
            if kind == "jump":
                self.jumps += 1
            elif kind == "gap":
                self.gaps += 1
            if kind is not None and len(self.timestamps) < self.params.max_events:
                self.timestamps.append(
                    {"kind": kind, "frame": index, "at_s": round(at, 4), "delta_s": round(delta, 4)}
                )
        self.last_at = at if self.last_at is None else max(at, self.last_at)

    def result(self) -> dict[str, Any]:
        while self.pending:
            self._check(*heapq.heappop(self.pending))
        self.black.close()
        self.frozen.close()
        measured = self.fields.result()
        declared = declared_order(self.stream, self.flags)
        order, _why = decide(declared, measured["measured"])
        limits = f"{round(self.low)}-{round(self.high)}" if self.range_checked else None
        return {
            "frames_decoded": self.frames,
            "field_order": order,
            "field_order_declared": declared,
            "field_order_measured": measured["measured"],
            "combing": measured["comb"],
            "timestamp_gap_count": self.gaps,
            "timestamp_jump_count": self.jumps,
            "timestamp_issues": self.timestamps,
            "black_spans": self.black.spans,
            "frozen_spans": self.frozen.spans,
            "luma_min": self.luma_min,
            "luma_max": self.luma_max,
            "broadcast_range": limits,
            "luma_out_of_range": round(self.outside / self.samples, 6) if self.samples else None,
        }
