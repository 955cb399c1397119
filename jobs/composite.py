"""Several stages in one actor, built from (class, arguments) pairs.

Ray builds an actor's stage from a class and keyword arguments; these wrappers
let one actor host a sequence of stages (so cheap steps do not each cost an
actor and a copy of the batch) or a suite of keyframe models over one decode.
Both report what each part cost in `last_seconds`.
"""

from __future__ import annotations

import time
from typing import Any

import pyarrow as pa

from actors.keyframes import KeyframeSuite

Part = tuple[str, type, dict[str, Any]]


class StageChain:
    """Stages applied one after another to each batch."""

    def __init__(self, parts: list[Part]) -> None:
        self.parts = [(name, stage(**kwargs)) for name, stage, kwargs in parts]
        self.last_seconds: dict[str, float] = {}

    def __call__(self, batch: pa.Table) -> pa.Table:
        self.last_seconds = {}
        for name, stage in self.parts:
            started = time.perf_counter()
            batch = stage(batch)
            self.last_seconds[name] = time.perf_counter() - started
        return batch


class KeyframeModels:
    """The enabled keyframe models, loaded once, sharing one decode per batch."""

    def __init__(self, parts: list[Part]) -> None:
        self.suite = KeyframeSuite({name: stage(**kwargs) for name, stage, kwargs in parts})

    @property
    def last_seconds(self) -> dict[str, float]:
        return self.suite.last_seconds

    def __call__(self, batch: pa.Table) -> pa.Table:
        return self.suite(batch)
