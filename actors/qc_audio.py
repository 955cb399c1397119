"""The audio half of the QC record: per track, its levels, clipping and silences.

Every decoded audio frame is taken once and folded into running figures (like ffmpeg's
``astats`` and ``silencedetect``): the peak and the mean square over all channels, the samples
at full scale, and silence measured in short windows (the mean square of all channels over
``WINDOW_S``), so memory stays the same whatever the length of the track.
"""

from __future__ import annotations

import math
from typing import Any

import av
import numpy as np

from actors.qc_video import Spans

WINDOW_S = 0.05
"""Length of the windows silence is measured in."""
FLOOR_DBFS = -120.0
"""What digital silence reads as (a log of zero has no value a table or JSON can hold)."""
_SCALE = {np.dtype(np.int16): 32768.0, np.dtype(np.int32): 2147483648.0, np.dtype(np.int64): 2.0**63}


def dbfs(amplitude: float) -> float:
    """An amplitude (1.0: full scale) in dBFS, floored at ``FLOOR_DBFS``."""
    return round(max(20 * math.log10(amplitude), FLOOR_DBFS), 2) if amplitude > 0 else FLOOR_DBFS


def samples(frame: av.AudioFrame) -> np.ndarray:
    """The frame's samples as float32, one row per channel, full scale at ±1."""
    data = frame.to_ndarray()
    channels = max(len(frame.layout.channels), 1)
    if not frame.format.is_planar:
        data = data.reshape(-1, channels).T
    if data.dtype == np.uint8:
        return (data.astype(np.float32) - 128.0) / 128.0
    if data.dtype in _SCALE:
        return (data / _SCALE[data.dtype]).astype(np.float32)
    return data.astype(np.float32, copy=False)


class AudioMeter:
    """Running levels of one audio track."""

    def __init__(self, stream: Any, params: Any) -> None:
        ctx = stream.codec_context
        self.stream, self.params = stream, params
        self.info = {
            "stream": stream.index,
            "codec": ctx.name,
            "sample_format": ctx.format.name if ctx.format else None,
            "channels": ctx.channels if hasattr(ctx, "channels") else len(ctx.layout.channels),
            "layout": ctx.layout.name if ctx.layout else None,
            "sample_rate": ctx.sample_rate or None,
        }
        self.peak = 0.0
        self.square = 0.0
        self.count = 0
        self.clipped = 0
        self.decoded = 0  # samples per channel
        self.start: float | None = None
        self.rate = 0
        self.window = 0
        self.carry = np.zeros(0, np.float32)
        self.windows = 0
        self.silence = Spans(params.silence_min_s, params.max_events)
        self.threshold = 10 ** (params.silence_dbfs / 10)  # a mean square

    def add(self, frame: av.AudioFrame) -> None:
        x = samples(frame)
        if x.size == 0:
            return
        if self.start is None:
            self.start = float(frame.time) if frame.time is not None else 0.0
            self.rate = int(frame.sample_rate or self.info["sample_rate"] or 48000)
            self.window = max(1, round(self.rate * WINDOW_S))
            self.info.update(channels=x.shape[0], sample_rate=self.rate)
        magnitude = np.abs(x)
        self.peak = max(self.peak, float(magnitude.max()))
        self.clipped += int(np.count_nonzero(magnitude >= self.params.clip_level))
        power = np.square(x, dtype=np.float64)
        self.square += float(power.sum())
        self.count += x.size
        self.decoded += x.shape[1]
        per_sample = np.concatenate([self.carry, power.mean(axis=0).astype(np.float32)])
        whole = len(per_sample) // self.window * self.window
        self.carry = per_sample[whole:]
        step = self.window / self.rate
        for mean in per_sample[:whole].reshape(-1, self.window).mean(axis=1):
            at = self.start + self.windows * step
            self.silence.add(bool(mean < self.threshold), at, at + step)
            self.windows += 1

    def result(self) -> dict[str, Any]:
        if self.carry.size and self.rate:
            at = (self.start or 0.0) + self.windows * self.window / self.rate
            self.silence.add(bool(self.carry.mean() < self.threshold), at, at + self.carry.size / self.rate)
        self.silence.close()
        rms = math.sqrt(self.square / self.count) if self.count else 0.0
        return {
            **self.info,
            "duration_s": round(self.decoded / self.rate, 4) if self.rate else 0.0,
            "peak_dbfs": dbfs(self.peak),
            "rms_dbfs": dbfs(rms),
            "clipped_samples": self.clipped,
            "silence_spans": self.silence.spans,
        }
