"""Text on screen: captions, titles, signs and slates read from each keyframe.

RapidOCR 3.x runs PaddleOCR's PP-OCRv6 (small) detector and recogniser as
ONNX, offline; the recogniser reads Latin and Chinese script. One text line
becomes one row: the text, the recogniser's confidence and the line's box in
keyframe pixels.

Small text. The recogniser sees each line scaled to 48 px high; a keyframe
whose shorter side is under ``upscale_below`` is first enlarged 2x (bicubic),
so lines 10-15 px high are not read from a handful of pixels. On
``skimage.data.page()`` (384x191) that turns "zeros like" into the printed
"zeros_like"; the segment stage's keyframes (384 px on the longer side) are
always enlarged, and a caption 7 px high in them is still read.

Detector size. rapidocr's default enlarges every picture until its shorter
side is 736 px before detection, which turns a 640x272 keyframe into
1732x736 and costs 2-4 s. Here the detector sees the (2x enlarged) keyframe
reduced to at most ``det_side`` = 736 px on its longer side instead. On the
test images (the page, a caption on a photo, a 7-px-high line on a
bikes.mp4 frame, a 12-px line on a 1280x720 Big Buck Bunny frame) caps of
960, 736 and 640 px read exactly the same lines; 736 takes ~40 % less CPU
than 960 and keeps a margin for small text on HD frames that 640 would not.

Cost and the early exit. OCR is the slowest understanding stage, about 0.4
CPU-seconds per 384-px keyframe, nearly all of it in the detector. Before
the models run, ``has_text_edges`` looks for what every legible line is
made of: a few strong, compact, character-sized edge blobs. A keyframe with
none (black, faded, flat, far out of focus) gets an empty list at once, in
about a millisecond. The gate was checked against full OCR on the
benchmark's 31 keyframes (``bench_keyframe_stages.py --gate``) and the
tests' text images: it hid no text. It is deliberately permissive, so it
also skipped none of those 31 (every real picture has such edges): its
saving is on the black leaders, fades and soft frames archives are full of.

The direction classifier (0/180 degrees) is off by default: upside-down text
is rare on screen and it adds a model pass per line.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pyarrow as pa
from pydantic import Field

from actors.keyframes import KeyframeStage
from actors.models import ModelLoadError, clip_box, model_file, onnx_providers
from actors.stage import RUNTIME, ModelParams, Owned
from catalog.rows import tag_rows
from catalog.schema import ONSCREEN_TEXT, ONSCREEN_TEXT_TAG

DEFAULT_MODEL = "pp-ocrv6-small"
PACKAGE = "rapidocr"
# The files rapidocr 3.10 ships; passed explicitly so that rapidocr never tries to download.
_DET_FILE = "PP-OCRv6_det_small.onnx"
_REC_FILE = "PP-OCRv6_rec_small.onnx"
_CLS_FILE = "ch_ppocr_mobile_v2.0_cls_mobile.onnx"

MAX_LINE_HEIGHT = 0.5
"""A detected line taller than this share of the keyframe is dropped. On some busy pictures
(coffee, after JPEG) the detector boxes the whole frame and the recogniser then "reads" a
single glyph in it with high confidence; no caption or title line is that tall."""

GATE_WIDTH = 640
"""The gate looks at the keyframe reduced to this width: enough for 8-px text, and cheap."""
GATE_EDGE_LEVEL = 40
"""Morphological-gradient level (luma) that counts as a strong edge. Legible text on a
background differs by far more than 40 levels; JPEG noise and soft gradients stay under it."""
GATE_MIN_BLOBS = 3
"""Edge blobs of character size needed before OCR runs: a word has at least a few."""


def has_text_edges(image: np.ndarray) -> bool:
    """Whether a keyframe could hold legible text: a few strong, character-sized edge blobs.

    A character seen through a 3x3 morphological gradient is a compact blob
    of strong edges 4-80 px tall (at GATE_WIDTH); smooth or out-of-focus
    pictures have no strong edges at all, and flat frames nothing.
    Deliberately permissive: a false "yes" costs one OCR pass, a false "no"
    loses text.
    """
    gray = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY) if image.ndim == 3 else image
    height, width = gray.shape
    if width > GATE_WIDTH:
        size = (GATE_WIDTH, max(1, round(height * GATE_WIDTH / width)))
        gray = cv2.resize(gray, size, interpolation=cv2.INTER_AREA)
    gradient = cv2.morphologyEx(gray, cv2.MORPH_GRADIENT, np.ones((3, 3), np.uint8))
    strong = (gradient >= GATE_EDGE_LEVEL).astype(np.uint8)
    if int(strong.sum()) < 20:
        return False
    _, _, stats, _ = cv2.connectedComponentsWithStats(strong, connectivity=8)
    heights, widths = stats[1:, cv2.CC_STAT_HEIGHT], stats[1:, cv2.CC_STAT_WIDTH]
    sized = (heights >= 4) & (heights <= 80) & (widths >= 2) & (widths <= 4 * heights + 8)
    return int(sized.sum()) >= GATE_MIN_BLOBS


class OcrParams(ModelParams):
    model: str = DEFAULT_MODEL
    det_weights: str | None = Field(None, description="a PP-OCR text detector (ONNX)")
    rec_weights: str | None = Field(None, description="a PP-OCR recogniser (ONNX), its characters inside")
    min_score: float = Field(0.8, ge=0, le=1, description="least confidence of a line kept")
    upscale_below: int = Field(720, ge=0, description="keyframes smaller than this are upscaled 2x first")
    det_side: int = Field(736, ge=32, description="longest side the detector sees")
    early_exit: bool = Field(True, description="skip keyframes with no text-like edges")
    use_direction_classifier: bool = False
    threads: int | None = Field(None, ge=1, description="onnxruntime threads", json_schema_extra=RUNTIME)


class TextReader(KeyframeStage):
    """Adds ``texts`` (text, confidence, box) and ``text_model`` per keyframe.

    ``det_weights`` / ``rec_weights`` swap in other PP-OCR ONNX models (e.g.
    the medium ones, or a recogniser for another script; its character list
    travels inside the ONNX file). ``early_exit=False`` runs OCR on every
    keyframe; ``threads`` caps onnxruntime's threads for an actor given a CPU share.
    """

    name = "ocr"
    Params = OcrParams
    writes = ONSCREEN_TEXT
    owns = (Owned("tags", where=("kind", (ONSCREEN_TEXT_TAG,))),)

    def setup(
        self,
        *,
        model: str,
        det_weights: str | None,
        rec_weights: str | None,
        min_score: float,
        upscale_below: int,
        det_side: int,
        early_exit: bool,
        use_direction_classifier: bool,
        device: str | None,
        threads: int | None,
    ) -> None:
        self.min_score = min_score
        self.upscale_below = upscale_below
        self.early_exit = early_exit
        self.use_cls = use_direction_classifier
        det = model_file(
            det_weights,
            "rapidocr",
            "models",
            _DET_FILE,
            model=model,
            package=PACKAGE,
            default_model=DEFAULT_MODEL,
        )
        rec = model_file(
            rec_weights,
            "rapidocr",
            "models",
            _REC_FILE,
            model=model,
            package=PACKAGE,
            default_model=DEFAULT_MODEL,
        )
        cls = None
        if self.use_cls:
            cls = model_file(None, "rapidocr", "models", _CLS_FILE, model=model, package=PACKAGE)
        swapped = det_weights is not None or rec_weights is not None
        self.text_model = model if not swapped else f"{model}/{Path(rec_weights or det_weights or '').stem}"
        use_cuda = onnx_providers(device)[0] != "CPUExecutionProvider"
        try:
            from rapidocr import RapidOCR
        except ImportError as exc:
            raise ModelLoadError(model, None, package=PACKAGE, reason=str(exc)) from exc
        params: dict[str, Any] = {
            "Global.log_level": "error",  # rapidocr warns on every frame without text
            "Global.use_cls": self.use_cls,
            "Global.text_score": min_score,
            "Det.model_path": str(det),
            "Det.limit_type": "max",
            "Det.limit_side_len": det_side,
            "Rec.model_path": str(rec),
            "EngineConfig.onnxruntime.use_cuda": use_cuda,
            "EngineConfig.onnxruntime.intra_op_num_threads": threads or -1,
        }
        if cls is not None:
            params["Cls.model_path"] = str(cls)
        try:
            self.engine = RapidOCR(params=params)
            # rapidocr loads its sessions on first use; load them now, so a bad file fails here.
            self.engine._load_det_model()
            self.engine._load_rec_model()
            if self.use_cls:
                self.engine._load_cls_model()
        except Exception as exc:
            raise ModelLoadError(
                model, f"{det} + {rec}", package=PACKAGE, reason=f"{type(exc).__name__}: {exc}"[:500]
            ) from exc

    @classmethod
    def catalog_rows(cls, rows: pa.Table) -> dict[str, pa.Table]:
        return {"tags": tag_rows(rows, "texts", ONSCREEN_TEXT_TAG, "text_model")}

    def read(self, image: np.ndarray) -> list[dict[str, Any]]:
        """Text lines on one RGB image, top to bottom; empty when there are none."""
        if self.early_exit and not has_text_edges(image):
            return []
        height, width = image.shape[:2]
        scale = 2.0 if min(height, width) < self.upscale_below else 1.0
        bgr = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
        if scale != 1.0:
            bgr = cv2.resize(bgr, None, fx=scale, fy=scale, interpolation=cv2.INTER_CUBIC)
        from rapidocr.utils.output import RapidOCROutput  # loaded with the engine, in setup

        result = self.engine(bgr)
        if not isinstance(result, RapidOCROutput) or result.txts is None or result.boxes is None:
            return []  # nothing detected: rapidocr then gives an output without texts
        assert result.scores is not None  # recognised texts come with their scores
        lines: list[dict[str, Any]] = []
        for quad, text, score in zip(result.boxes, result.txts, result.scores, strict=True):
            text = text.strip()
            if not text or score < self.min_score:
                continue
            quad = np.asarray(quad, dtype=np.float32).reshape(-1, 2)
            x0, y0 = quad.min(axis=0)
            x1, y1 = quad.max(axis=0)
            box = clip_box((x0, y0, x1, y1), width, height, scale)
            if box[3] - box[1] > MAX_LINE_HEIGHT * height:
                continue  # the detector's whole-picture false box on busy photos, not a line of text
            lines.append({"label": text, "score": round(float(score), 4), "box": box})
        lines.sort(key=lambda line: (line["box"][1], line["box"][0]))
        return lines

    def annotate(self, images: Sequence[np.ndarray | None]) -> dict[str, list[Any]]:
        texts = [None if image is None else self.read(image) for image in images]
        names = [None if image is None else self.text_model for image in images]
        return {"texts": texts, "text_model": names}
