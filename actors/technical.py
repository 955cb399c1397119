"""Technical tags per shot: colour or black-and-white, grain, blur, exposure, contrast, resolution.

An archivist searches for "the black-and-white reels", "the soft transfers",
"everything still in SD"; these tags make such questions one filter. No
model is involved: each tag comes from one measurement mapped to a score in
0..1 by a linear ramp between two named constants (score 0.5 at their
midpoint), so a threshold can be read, argued with and changed in one place.
For an axis with two ends (colour/monochrome, clean/grainy, sharp/blurry)
exactly one tag is emitted, the one the measurement points to, scored 0.5..1;
the one-sided tags (underexposed, overexposed, low contrast) appear only when
their score reaches 0.5. A flat keyframe (all black, all white, one colour)
gets only ``blank`` (and its resolution): blur, grain or exposure mean
nothing on it.

Where the measurements come from. The segment stage's shot columns are
means over the whole shot, so where a batch carries them they win for the
scale-free figures: ``is_monochrome``, ``is_blank``, ``brightness`` and
``contrast`` (luma levels), and the asset's ``width``/``height`` for the
resolution class. Blur and grain are measured on the keyframe with its
longer side reduced to ``ANALYSIS_SIDE`` (384 px, the segment stage's
default keyframe size, so a deployment with larger keyframes measures the
same way): the Laplacian variance and noise in the shot columns are taken
at the segment's 160-px analysis width, where neither blur nor grain
survives. Without the asset's size (e.g. inside a ``KeyframeSuite``, which
hands stages only images) no resolution tag is given: the keyframe is a
reduced copy, and a wrong "sd" is worse than none.

Limits. A 384-px keyframe at JPEG quality 85 has lost most grain: i.i.d.
noise of sigma 8 levels added at that size reads 1.7-3.7 after the JPEG,
sigma 12 reads 5.7-7.9, so "grainy" here means heavy grain. Grain as the
eye sees it in the full-resolution master needs a noise figure measured
there (the segment stage would be the place).

Thresholds were chosen on keyframes made like the segment stage makes them
(longer side 384, JPEG quality 85) from the bundled stills (astronaut,
coffee, chelsea, rocket, camera, page), frames of the two sample clips, and
copies of them blurred (Gaussian sigma 1-4), noised and darkened to a
fifth; the figures are quoted beside each constant.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import cv2
import numpy as np
import pyarrow as pa

from actors.keyframes import KeyframeStage
from actors.restore import noise_sigma
from actors.stage import Owned
from catalog.rows import tag_rows
from catalog.schema import TECHNICAL, TECHNICAL_TAG

ANALYSIS_SIDE = 384
"""Keyframes larger than this on their longer side are reduced to it (INTER_AREA) before blur and
grain are measured."""
THUMB_WIDTH = 160
"""Colour is judged on a thumbnail: averaging removes chroma grain but keeps coloured areas."""

# Blur: Crété-Roffet's "blur effect" (how little a strong 1x11 re-blur along each axis removes
# from the luma differences along it), 0 = crisp .. 1 = flat; normalised by the picture's own
# edges, so a low-contrast picture is not called blurry. The sharp stills and Big Buck Bunny
# measure 0.15-0.34; the stills blurred at their own size with Gaussian sigma 1 0.27-0.46,
# sigma 2 0.39-0.58, sigma 3 0.48-0.66; bikes.mp4 frames 0.25-0.51 (the top ones are its
# out-of-focus traffic and motion-blurred shots, which do look soft).
BLUR_RAMP = (0.40, 0.60)
# Grain: Immerkær noise sigma of luma (levels). Clean stills and the clips measure 0.25-1.73
# (see "Limits" above for what survives of grain in a keyframe).
GRAIN_RAMP = (2.5, 4.5)
# Monochrome: spread of chroma across the thumbnail *off* its main axis, i.e. the square root
# of the smaller eigenvalue of the Cr/Cb covariance. A neutral or single-tint picture (sepia,
# blue-toned) has its chroma on one line through grey: 0-0.4; colour stills 1.4 (rocket, mostly
# sky) to 7.0, Big Buck Bunny 7.1-7.7, the washed-out bikes.mp4 frames 0.7-3.3 (a grey road in
# a colour clip is truly borderline; the shot's own is_monochrome column wins where present).
MONOCHROME_RAMP = (1.5, 0.75)
# Exposure from mean luma (0..255): the darkened copies measure 18-23, rocket (a night-ish
# sky) 61, ordinary frames 90-135, the white page 171.
UNDEREXPOSED_RAMP = (60.0, 30.0)
OVEREXPOSED_RAMP = (190.0, 220.0)
# Contrast: standard deviation of luma. Chelsea 32, rocket 31, moon 13, the darkened copies 8-15.
LOW_CONTRAST_RAMP = (32.0, 16.0)
# Blank: no more luma variation than JPEG noise on a flat frame.
BLANK_CONTRAST = 2.0
# Resolution class by "lines", max(height, width * 9/16), so 1920x800 scope is fhd and
# 1440x1080 HDV too; with a little slack below each class for cropped transfers.
RESOLUTION_CLASSES = ((2000, "uhd"), (1000, "fhd"), (700, "hd"), (0, "sd"))

METRIC_COLUMNS = ("is_blank", "is_monochrome", "brightness", "contrast", "width", "height")


def ramp(value: float, zero: float, one: float) -> float:
    """0 at ``zero``, 1 at ``one``, linear between (either direction), clamped."""
    return float(np.clip((value - zero) / (one - zero), 0.0, 1.0))


def blur_effect(gray: np.ndarray, size: int = 11) -> float:
    """Crété-Roffet et al. 2007 no-reference blur: 0 crisp .. 1 flat, the worse of the two axes."""
    plane = gray.astype(np.float32)
    worst = 0.0
    for axis, kernel in ((0, (1, size)), (1, (size, 1))):
        reblurred = cv2.blur(plane, kernel)
        before = np.abs(np.diff(plane, axis=axis))
        after = np.abs(np.diff(reblurred, axis=axis))
        total = float(before.sum())
        if total <= 0:
            return 1.0
        kept = float(np.maximum(before - after, 0).sum())
        worst = max(worst, (total - kept) / total)
    return worst


def off_axis_chroma(rgb: np.ndarray) -> float:
    """Chroma spread off its principal axis: ~0 for grey or single-tint pictures."""
    chroma = cv2.cvtColor(rgb, cv2.COLOR_RGB2YCrCb)[..., 1:].reshape(-1, 2).astype(np.float64)
    if len(chroma) < 2:
        return 0.0
    smallest = float(np.linalg.eigvalsh(np.cov(chroma.T))[0])
    return float(np.sqrt(max(smallest, 0.0)))


def resolution_class(width: int, height: int) -> str:
    lines = max(height, width * 9 / 16)
    return next(name for floor, name in RESOLUTION_CLASSES if lines >= floor)


def measure(image: np.ndarray) -> dict[str, float]:
    """The keyframe's own figures, each defined once here (see the module docstring)."""
    height, width = image.shape[:2]
    if max(height, width) > ANALYSIS_SIDE:
        shrink = ANALYSIS_SIDE / max(height, width)
        size = (max(1, round(width * shrink)), max(1, round(height * shrink)))
        image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
    gray = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    thumb_size = (THUMB_WIDTH, max(1, round(image.shape[0] * THUMB_WIDTH / image.shape[1])))
    thumb = cv2.resize(image, thumb_size, interpolation=cv2.INTER_AREA)
    return {
        "blur": blur_effect(gray),
        "noise": noise_sigma(gray) if min(gray.shape) >= 3 else 0.0,
        "chroma": off_axis_chroma(thumb),
        "brightness": float(gray.mean()),
        "contrast": float(gray.std()),
    }


def _tag(label: str, score: float) -> dict[str, Any]:
    return {"label": label, "score": round(score, 3), "box": None}


def technical_tags(image: np.ndarray, shot: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """Tags for one RGB keyframe; ``shot`` may hold the segment columns named in METRIC_COLUMNS."""
    shot = {k: v for k, v in (shot or {}).items() if v is not None}
    figures = measure(image)
    brightness = float(shot.get("brightness", figures["brightness"]))
    contrast = float(shot.get("contrast", figures["contrast"]))
    tags: list[dict[str, Any]] = []
    if "width" in shot and "height" in shot:
        tags.append(_tag(f"resolution:{resolution_class(int(shot['width']), int(shot['height']))}", 1.0))
    if shot.get("is_blank", False) or figures["contrast"] < BLANK_CONTRAST:
        return [_tag("blank", 1.0), *tags]

    def either(p: float, high: str, low: str) -> dict[str, Any]:
        return _tag(high, p) if p >= 0.5 else _tag(low, 1.0 - p)

    if "is_monochrome" in shot:
        tags.append(_tag("monochrome" if shot["is_monochrome"] else "colour", 1.0))
    else:
        tags.append(either(ramp(figures["chroma"], *MONOCHROME_RAMP), "monochrome", "colour"))
    tags.append(either(ramp(figures["noise"], *GRAIN_RAMP), "grainy", "clean"))
    tags.append(either(ramp(figures["blur"], *BLUR_RAMP), "blurry", "sharp"))
    for label, p in (
        ("underexposed", ramp(brightness, *UNDEREXPOSED_RAMP)),
        ("overexposed", ramp(brightness, *OVEREXPOSED_RAMP)),
        ("low contrast", ramp(contrast, *LOW_CONTRAST_RAMP)),
    ):
        if p >= 0.5:
            tags.append(_tag(label, p))
    return tags


class TechnicalTagger(KeyframeStage):
    """Adds ``technical`` tags per keyframe; no model, a few milliseconds a frame.

    Called on a batch it reads the segment columns it finds (METRIC_COLUMNS);
    inside a ``KeyframeSuite`` it sees only images and measures those alone.
    """

    name = "technical"
    writes = TECHNICAL
    uses = METRIC_COLUMNS
    owns = (Owned("tags", where=("kind", (TECHNICAL_TAG,))),)

    @classmethod
    def catalog_rows(cls, rows: pa.Table) -> dict[str, pa.Table]:
        return {"tags": tag_rows(rows, "technical", TECHNICAL_TAG, None)}

    def annotate(
        self, images: Sequence[np.ndarray | None], shots: Sequence[dict[str, Any]] | None = None
    ) -> dict[str, list[Any]]:
        """``shots``, when given, holds one dict of segment columns per image."""
        rows = shots if shots is not None else [None] * len(images)
        return {
            "technical": [
                None if image is None else technical_tags(image, shot)
                for image, shot in zip(images, rows, strict=True)
            ]
        }

    def annotate_batch(self, batch: pa.Table, images: Sequence[np.ndarray | None]) -> dict[str, list[Any]]:
        """Like ``annotate``, with the shot metrics the batch carries."""
        present = [name for name in METRIC_COLUMNS if name in batch.column_names]
        shots = batch.select(present).to_pylist() if present else None
        return self.annotate(images, shots)
