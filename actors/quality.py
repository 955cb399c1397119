"""A no-reference perceptual quality score per keyframe: PIQE, lower is better.

PIQE (Venkatanath et al., "Blind image quality evaluation using perception
based features", NCC 2015) needs no reference picture and no trained model:
it looks at the 16x16 blocks of the picture's luma that carry detail (the
variance of their mean-subtracted, contrast-normalised pixels is above 0.1)
and counts a block as distorted where one of its edges has a flat run of 6
pixels (blocking, a sudden artefact) or where its centre and surround vary
alike (Gaussian noise). The score is the weighted share of distorted detail
blocks, nominally 0 (clean) to 100 (bad); a picture with no detail at all (a
black frame, a test card's flat field) scores 100.

Written here in numpy/OpenCV after MathWorks' `piqe` (Image Processing
Toolbox), including its choices: replicate padding to a multiple of 16,
`rgb2gray` weights, a 7x7 Gaussian of sigma 7/6 and, in the centre-surround
ratio, a surround that leaves out columns 8 and 10 (1-based) of a block.
The PyPI port `pypiqe` 1.2 gives the same scores on a picture whose sides
are multiples of 16 and whose brightest pixel is 255, but stretches every
picture to that maximum, pads by mirroring, reads RGB with BGR weights,
loops over blocks in Python (0.15 s a keyframe against 6-12 ms here) and
requires full `opencv-python`, which cannot share an environment with the
headless build.

PIQE depends on scale, so a keyframe is scored with its longer side shrunk
to at most `max_side` (the segment stage's keyframe size by default), and
`quality_model` names that cap (piqe@384) so scores taken at other scales
are not compared. Measured on seven bundled photos, each degraded at
keyframe size and stored as the segment stage stores keyframes (384 px,
JPEG 85): clean 12-46, blurred (sigma 2) 63-92, JPEG quality 10 50-75,
Gaussian noise (sigma 15) 38-63. Clean scores best on six of the seven; the
exception is noise on a picture with large smooth areas (the astronaut: 46
clean, 38 noisy), since noise gives smooth blocks detail and PIQE judges
only detailed blocks. Noise added at the source's resolution, which the
keyframe's shrinking then averages into fine texture, scores better than
clean on six of the seven (film grain reads as detail). Read a high score
as "blurred or blocky" rather than a low one as "clean".

It needs no model and costs 6-12 ms a 384 px keyframe on one core (the
latter with the machine busy).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import cv2
import numpy as np
import pyarrow as pa
from numpy.lib.stride_tricks import sliding_window_view
from pydantic import Field

from actors.keyframes import KeyframeStage
from actors.stage import Owned, StageParams
from catalog.rows import score_rows

METRIC = "piqe"

QUALITY = pa.schema(
    [
        pa.field("quality_score", pa.float32()),  # PIQE, 0 (clean) .. 100 (bad); null without a keyframe
        pa.field("quality_model", pa.string()),  # the measure and the scale it was taken at: piqe@384
    ]
)

_BLOCK = 16  # side of the blocks judged one by one
_ACTIVITY = 0.1  # a block whose normalised variance is above this carries detail
_IMPAIRED = 0.1  # an edge segment whose deviation is below this is flat: a blocking artefact
_SEGMENT = 6  # pixels in an edge segment
_CENTRE = (7, 8)  # the block's two centre columns (0-based)
_SURROUND_DROPS = (7, 9)  # what the reference removes for the surround (columns 8 and 9 after 8 went)
_GREY = np.array([0.298936021293775, 0.587043074451121, 0.114020904255103])  # MATLAB's rgb2gray


def luma(image: np.ndarray) -> np.ndarray:
    """The 8-bit grey picture PIQE judges, from an RGB or grey uint8 image."""
    if image.ndim == 2:
        return image
    return np.rint(image[..., :3].astype(np.float64) @ _GREY).astype(np.uint8)


def piqe(image: np.ndarray, max_side: int | None = None) -> float:
    """The PIQE score of an RGB or grey uint8 image, 0 (clean) to about 100 (bad), with its
    longer side first shrunk to `max_side` when it is longer."""
    grey = luma(image)
    height, width = grey.shape
    if max_side is not None and max(height, width) > max_side:
        shrink = max_side / max(height, width)
        size = (max(1, round(width * shrink)), max(1, round(height * shrink)))
        grey = cv2.resize(grey, size, interpolation=cv2.INTER_AREA)
        height, width = grey.shape
    pixels = np.pad(grey.astype(np.float64), ((0, -height % _BLOCK), (0, -width % _BLOCK)), mode="edge")

    # Mean-subtracted, contrast-normalised pixels over a 7x7 Gaussian window.
    mean = cv2.GaussianBlur(pixels, (7, 7), 7 / 6, borderType=cv2.BORDER_REPLICATE)
    square = cv2.GaussianBlur(pixels * pixels, (7, 7), 7 / 6, borderType=cv2.BORDER_REPLICATE)
    normalised = (pixels - mean) / (np.sqrt(np.abs(square - mean * mean)) + 1)

    rows, columns = normalised.shape[0] // _BLOCK, normalised.shape[1] // _BLOCK
    blocks = normalised.reshape(rows, _BLOCK, columns, _BLOCK).swapaxes(1, 2).reshape(-1, _BLOCK, _BLOCK)
    variance = blocks.reshape(len(blocks), -1).var(axis=1, ddof=1)
    detailed = variance > _ACTIVITY
    blocks, variance = blocks[detailed], variance[detailed]
    count = len(blocks)
    if count == 0:
        return 100.0  # nothing to judge: the reference's (0 + C) / (C + 0)

    # Noticeable artefacts: a flat run of pixels along any of the block's four edges.
    edges = np.stack([blocks[:, 0, :], blocks[:, :, -1], blocks[:, -1, :], blocks[:, :, 0]], axis=1)
    segments = sliding_window_view(edges, _SEGMENT, axis=2)
    impaired = (segments.std(axis=-1, ddof=1) < _IMPAIRED).any(axis=(1, 2))

    # Noise: the centre columns vary like the surround does.
    centre = blocks[:, :, list(_CENTRE)].reshape(count, -1).std(axis=1, ddof=1)
    surround = np.delete(blocks, list(_SURROUND_DROPS), axis=2).reshape(count, -1).std(axis=1, ddof=1)
    sigma = np.sqrt(variance)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.nan_to_num(centre / surround, nan=0.0, posinf=np.inf)
        beta = np.abs(sigma - ratio) / np.maximum(sigma, ratio)
    noisy = sigma > 2 * beta  # false where beta is undefined, as in the reference

    distortion = float(np.sum(impaired * (1 - variance) + noisy * variance))
    return (distortion + 1) / (count + 1) * 100


class QualityParams(StageParams):
    max_side: int = Field(
        384,
        ge=32,
        le=4096,
        description="score each keyframe with its longer side shrunk to at most this many pixels "
        "(never enlarged): PIQE depends on scale, so one cap keeps an archive's scores comparable",
    )


class QualityScorer(KeyframeStage):
    """Adds ``quality_score`` (PIQE, lower is better) and ``quality_model`` per keyframe.

    Needs no model and no GPU: 6-12 ms a 384 px keyframe on one core."""

    name = "quality"
    Params = QualityParams
    writes = QUALITY
    owns = (Owned("scores", where=("metric", (METRIC,))),)

    def setup(self, *, max_side: int) -> None:
        self.max_side = max_side
        self.model = f"{METRIC}@{max_side}"

    @classmethod
    def catalog_rows(cls, rows: pa.Table) -> dict[str, pa.Table]:
        return {"scores": score_rows(rows, "quality_score", METRIC, "quality_model")}

    def annotate(self, images: Sequence[np.ndarray | None]) -> dict[str, list[Any]]:
        scores = [None if image is None else round(piqe(image, self.max_side), 3) for image in images]
        return {
            "quality_score": scores,
            "quality_model": [None if score is None else self.model for score in scores],
        }
