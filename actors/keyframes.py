"""The stages that look at keyframes.

A keyframe stage is a `Stage` of the `keyframes` group: it declares the
columns it adds (`writes`) and implements `annotate(images)` (or
`annotate_batch(batch, images)` when it also reads the shot's other columns);
decoding the JPEGs is done here, once. `KeyframeSuite` runs the group's
stages in one actor over one decode, so the models that share a batch of
keyframes never decode it twice, and only small JPEGs ever travel between
actors.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import cv2
import numpy as np
import pyarrow as pa

from actors.stage import Group, Resources, Stage

Image = np.ndarray  # RGB, uint8, H×W×3


def decode_jpeg(data: bytes | None) -> Image | None:
    """The RGB image of a JPEG; None where there is none or it is corrupt."""
    if not data:
        return None
    bgr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    return None if bgr is None else cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def decode_keyframes(batch: pa.Table, column: str = "keyframe_jpeg") -> list[Image | None]:
    """RGB images of a batch's keyframes; None where a row has none or it is corrupt."""
    return [decode_jpeg(data) for data in batch.column(column).to_pylist()]


KEYFRAMES = Group(
    "keyframes",
    Resources(batch_size=16),
    "every keyframe model in one actor, over one decode of each batch",
)


class KeyframeStage(Stage):
    """Base of the stages that map keyframe images to columns of their own."""

    group: ClassVar[Group | None] = KEYFRAMES
    reads: ClassVar[tuple[str, ...]] = ("keyframe_jpeg",)

    def annotate(self, images: Sequence[Image | None]) -> dict[str, list[Any]]:
        """One value per image for each column of `writes` (null/empty where image is None)."""
        raise NotImplementedError

    def annotate_batch(self, batch: pa.Table, images: Sequence[Image | None]) -> dict[str, list[Any]]:
        """`annotate`, for a stage that needs only the images."""
        return self.annotate(images)

    def __call__(self, batch: pa.Table) -> pa.Table:
        return append_columns(batch, self.writes, self.annotate_batch(batch, decode_keyframes(batch)))


class KeyframeSuite:
    """Several keyframe stages in one actor, sharing one decode of each batch.

    `last_seconds` holds what each stage (and the decode) cost in the latest call,
    so whoever runs the suite can account for the stages one by one."""

    def __init__(self, stages: Mapping[str, KeyframeStage]) -> None:
        self.stages = dict(stages)
        self.last_seconds: dict[str, float] = {}

    def __call__(self, batch: pa.Table) -> pa.Table:
        started = time.perf_counter()
        images = decode_keyframes(batch)
        self.last_seconds = {"decode": time.perf_counter() - started}
        for name, stage in self.stages.items():
            started = time.perf_counter()
            batch = append_columns(batch, stage.writes, stage.annotate_batch(batch, images))
            self.last_seconds[name] = time.perf_counter() - started
        return batch


def append_columns(batch: pa.Table, schema: pa.Schema, values: dict[str, list[Any]]) -> pa.Table:
    """The batch with the stage's columns, replacing any it already had (a stage run twice)."""
    batch = batch.drop_columns([name for name in schema.names if name in batch.column_names])
    for field in schema:
        batch = batch.append_column(field, pa.array(values[field.name], type=field.type))
    return batch
