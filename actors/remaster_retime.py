"""The access copy at its true speed: the rate footage was shot at, and the rate it is shown at.

Silent-era film was shot at 16-20 frames a second and scanned into files that
say 24 or 25, so it plays too fast; a viewer's player wants 24 or 25. The
preservation master keeps the source's frames and timestamps untouched (it is
the scan, not a new work); the access copy, the one people watch, is the one
converted: each frame stands at ``i / shot rate`` seconds, and the frames a
target rate needs between two of them are made by motion-compensated
interpolation (``actors.restore.retime``). The manifest records both rates,
where the shot rate came from and what the conversion did.

The shot rate is the container's unless the job spec names it for the asset
(``source_fps``: patterns of the asset's URI, as ``fnmatch`` reads them, to a
rate), since many scans carry a wrong one. Two inputs are refused rather than
guessed at: timestamps that vary from frame to frame (a variable-rate capture
has no one rate to stand frames at), and a sound track when the shot rate is
not the container's (the picture would grow longer and its sound would not).
"""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping, Sequence
from fractions import Fraction
from typing import Any

import numpy as np

from actors.remaster_outputs import RemasterError
from actors.restore.retime import Retimer, check_rate

STEADY = 0.02
"""Largest spread of the first frames' steps, relative to their median, of a constant-rate stream
(beyond one tick of the container's clock: Matroska rounds 1/24 s to 41 or 42 ms)."""


class AccessTiming:
    """The access copy's frames and timestamps, when its rate or speed is not the source's."""

    def __init__(self, shot_fps: Fraction, target_fps: Fraction, rate_from: str) -> None:
        self.retimer = Retimer(shot_fps, target_fps)
        self.rate_from = rate_from
        self.time_base = 1 / self.retimer.target_fps

    @property
    def target_fps(self) -> Fraction:
        return self.retimer.target_fps

    @classmethod
    def of(
        cls,
        uri: str,
        *,
        container_fps: Fraction,
        sample_pts: Sequence[int | None],
        audio_streams: int,
        retime_fps: float | None,
        source_fps: Mapping[str, float],
    ) -> AccessTiming | None:
        """How the asset at `uri` is retimed, or None when its access copy keeps the source's timing."""
        named = next((pattern for pattern in source_fps if fnmatch.fnmatchcase(uri, pattern)), None)
        if named is None and retime_fps is None:
            return None
        shot = check_rate(source_fps[named], f"source_fps[{named!r}]") if named else container_fps
        target = check_rate(retime_fps, "retime_fps") if retime_fps is not None else shot
        if named is None and target == shot:
            return None
        steps = np.diff([p for p in sample_pts if p is not None])
        uneven = len(steps) > 1 and float(np.ptp(steps)) > 1 + STEADY * float(np.median(steps))
        if (steps <= 0).any() or uneven:
            raise RemasterError(
                f"{uri}: retiming needs a constant frame rate, and the first frames' timestamps vary"
            )
        if shot != container_fps and audio_streams:
            raise RemasterError(
                f"{uri}: source_fps {float(shot):g} is not the container's {float(container_fps):g} fps and "
                "the file has sound: the picture would last longer and its sound would not follow"
            )
        rate_from = f"the job spec (source_fps {named!r})" if named else "the container"
        return cls(shot, target, rate_from)

    def push(self, picture: np.ndarray, seconds: float) -> list[tuple[np.ndarray, int]]:
        """The access frames `picture` completes, each with its pts in `time_base`."""
        return self._ticks(self.retimer.push(picture, seconds))

    def flush(self) -> list[tuple[np.ndarray, int]]:
        return self._ticks(self.retimer.flush())

    @property
    def frames(self) -> int:
        """Access frames made so far."""
        return int(self.retimer.manifest()["frames_out"])

    def manifest(self) -> dict[str, Any]:
        return {
            **self.retimer.manifest(),
            "shot_rate_from": self.rate_from,
            "master": "kept at the source's frames and timestamps",
        }

    def _ticks(self, frames: list[tuple[np.ndarray, float]]) -> list[tuple[np.ndarray, int]]:
        return [(image, round(seconds / self.time_base)) for image, seconds in frames]
