"""Streaming a shot through a plan's operations with a bounded window per operation.

Frames go in one at a time and come out in the same order, each operation
holding at most ``2 × radius + 1`` frames; output lags input by the sum of
the radii. Nothing grows with the length of the video.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np

from actors.restore.ops import OPS
from actors.restore.plan import Plan


class _Window:
    """One operation over a sliding window: emits frame n once frame n + radius has arrived."""

    def __init__(self, op: Any) -> None:
        self.op = op
        self.radius = int(op.radius)
        self.frames: deque[np.ndarray] = deque(maxlen=2 * self.radius + 1)
        self.received = 0
        self.emitted = 0

    def push(self, frame: np.ndarray) -> list[np.ndarray]:
        self.frames.append(frame)
        self.received += 1
        out = []
        while self.received - 1 >= self.emitted + self.radius:
            out.append(self._emit())
        return out

    def flush(self) -> list[np.ndarray]:
        return [self._emit() for _ in range(self.received - self.emitted)]

    def _emit(self) -> np.ndarray:
        held = list(self.frames)
        center = self.emitted - (self.received - len(held))
        start = max(0, center - self.radius)
        self.emitted += 1
        return self.op.apply(held[start : center + self.radius + 1], center - start)


def build_ops(steps: Sequence[Mapping[str, Any]], storage_options: dict[str, Any] | None = None) -> list[Any]:
    """Operation objects from a plan's ``ops`` list, with any external resources loaded."""
    ops = []
    for step in steps:
        op = OPS[step["op"]](**step.get("params", {}))
        if hasattr(op, "bind"):
            op.bind(storage_options)
        ops.append(op)
    return ops


class Restorer:
    """Applies a plan to a stream of uint8 RGB frames: ``push`` each, then ``flush``."""

    def __init__(
        self,
        plan: Plan | Sequence[Mapping[str, Any]] | Sequence[Any],
        storage_options: dict[str, Any] | None = None,
    ) -> None:
        steps = plan.ops if isinstance(plan, Plan) else list(plan)
        ops = build_ops(steps, storage_options) if steps and isinstance(steps[0], Mapping) else steps
        self.stages = [_Window(op) for op in ops]

    @property
    def latency(self) -> int:
        """Frames pushed before the first one comes out (minus one)."""
        return sum(stage.radius for stage in self.stages)

    def push(self, frame: np.ndarray) -> list[np.ndarray]:
        frames = [frame]
        for stage in self.stages:
            frames = [out for f in frames for out in stage.push(f)]
        return frames

    def flush(self) -> list[np.ndarray]:
        frames: list[np.ndarray] = []
        for stage in self.stages:
            frames = [out for f in frames for out in stage.push(f)] + stage.flush()
        return frames

    def run(self, frames: Iterable[np.ndarray]) -> Iterator[np.ndarray]:
        """Every frame restored, in order, holding only the windows in memory."""
        for frame in frames:
            yield from self.push(frame)
        yield from self.flush()
