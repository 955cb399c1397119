"""Measuring a shot: how noisy, flickery, blocky, compressed, soft, dusty, scratched, flat, colourless.

The ``auto`` planner decides from these numbers, and the remaster stage
reports the same numbers before and after, so each one is defined once here.
All work on uint8 RGB frames; luma is full-range BT.601, 0..255.

``ShotMeter`` takes the frames of a shot one at a time and keeps only the
three most recent, so measuring a feature film costs the memory of a clip.
"""

from __future__ import annotations

from collections import Counter, deque
from typing import Any

import cv2
import numpy as np
from scipy import ndimage
from scipy.fft import dctn

from actors.restore.motion import warp_to
from actors.restore.pixels import luma

_NOISE_KERNEL = np.array([[1, -2, 1], [-2, 4, -2], [1, -2, 1]], np.float32)
_MAD_TO_SIGMA = 1.4826
THUMB_WIDTH = 64
"""Flicker and cut detection look at thumbnails this wide: brightness needs no detail."""


def noise_sigma(gray: np.ndarray) -> float:
    """Noise standard deviation of a luma plane (Immerkær's Laplacian-difference, median form).

    The 3×3 kernel cancels planes and ramps, so what remains is mostly noise;
    taking the median of its magnitude instead of the mean keeps edges and
    texture, which are sparse, from counting as noise.
    """
    if min(gray.shape) < 3:
        return 0.0
    response = cv2.filter2D(gray.astype(np.float32), -1, _NOISE_KERNEL)[1:-1, 1:-1]
    return float(np.median(np.abs(response)) * _MAD_TO_SIGMA / 6.0)


def sharpness(gray: np.ndarray) -> float:
    """Variance of the Laplacian: the same figure the shots table reports."""
    return float(cv2.Laplacian(gray, cv2.CV_64F).var())


def block_grid(gray: np.ndarray, period: int = 8) -> tuple[float, int, int]:
    """Blockiness and the grid offsets (x, y) where block edges sit.

    Blockiness is the mean luma step across the strongest grid's columns and
    rows divided by the mean step elsewhere: about 1 for natural images, above
    1.3 where a codec's blocks show.
    """
    plane = gray.astype(np.float32)
    ratios, offsets = [], []
    for steps in (np.abs(np.diff(plane, axis=1)).mean(axis=0), np.abs(np.diff(plane, axis=0)).mean(axis=1)):
        usable = len(steps) // period * period
        if usable < 2 * period:
            ratios.append(1.0)
            offsets.append(0)
            continue
        phase = steps[:usable].reshape(-1, period).mean(axis=0)  # phase k: step between x=k and x=k+1
        best = int(np.argmax(phase))
        # Half a level added to both keeps flat synthetic pictures from reading as infinitely blocky.
        ratios.append(float((phase[best] + 0.5) / (np.delete(phase, best).mean() + 0.5)))
        offsets.append((best + 1) % period)  # first column of a block
    return float(np.mean(ratios)), offsets[0], offsets[1]


_FREQUENCY = np.add.outer(np.arange(8), np.arange(8))  # u + v of each 8×8 DCT coefficient


def hf_loss(gray: np.ndarray) -> float:
    """Share of the finest DCT frequencies quantised away in textured 8×8 blocks (0..1; clean 0.1-0.35).

    A codec at a low rate keeps a textured block's coarse frequencies and
    zeroes its fine ones, wherever its own transform grid lies (H.264's 4×4
    blocks and in-loop filter included); a camera's picture keeps some of
    both, its noise floor alone fills the fine ones. Only blocks with real
    texture count, so flat sky does not read as compressed. Smooth, noise-free
    pictures (animation, some scans) also read high: alone, this is evidence,
    not proof, which is why the planner prefers the source's bits per pixel.
    """
    plane = gray.astype(np.float32)
    shares = []
    for offset in (0, 4):  # two grid phases: the codec's grid is not known
        height, width = ((side - offset) // 8 * 8 for side in plane.shape)
        if height < 8 or width < 8:
            continue
        blocks = plane[offset : offset + height, offset : offset + width]
        blocks = blocks.reshape(height // 8, 8, width // 8, 8).transpose(0, 2, 1, 3).reshape(-1, 8, 8)
        coefficients = dctn(blocks, axes=(1, 2), norm="ortho")
        coarse = (coefficients[:, (_FREQUENCY >= 1) & (_FREQUENCY <= 4)] ** 2).mean(axis=1)
        textured = coarse > 16.0  # coarse detail of 4 levels or more
        if textured.sum() >= 20:
            shares.append(float((np.abs(coefficients[textured][:, _FREQUENCY >= 7]) < 0.75).mean()))
    return float(np.mean(shares)) if shares else 0.0


def _gradient(plane: np.ndarray) -> np.ndarray:
    return np.hypot(cv2.Sobel(plane, cv2.CV_32F, 1, 0), cv2.Sobel(plane, cv2.CV_32F, 0, 1))


def _strong_edges(gray: np.ndarray, gradient: np.ndarray) -> np.ndarray:
    """Canny edges among the stronger half of them: outlines, not texture."""
    edges = cv2.Canny(gray, 100, 200) > 0
    if edges.sum() < 50:
        return np.zeros_like(edges)
    return edges & (gradient >= np.percentile(gradient[edges], 50))


def ringing(gray: np.ndarray) -> float:
    """Fine ripple beside strong edges over the same ripple away from them (about 1 without ringing).

    A codec's quantised edges overshoot and ripple (Gibbs ringing, mosquito
    noise) in the few pixels beside them, where the picture itself is smooth;
    noise and texture are as strong there as anywhere. Only low-gradient
    pixels count on both sides, so the edges' own slopes are left out.
    """
    plane = gray.astype(np.float32)
    gradient = _gradient(plane)
    strong = _strong_edges(gray, gradient).astype(np.uint8)
    if not strong.any():
        return 1.0
    near = cv2.dilate(strong, np.ones((11, 11), np.uint8)) > 0
    band = near & ~(cv2.dilate(strong, np.ones((5, 5), np.uint8)) > 0)
    far = ~(cv2.dilate(strong, np.ones((21, 21), np.uint8)) > 0)
    smooth = gradient < np.percentile(gradient, 75)
    ripple = np.abs(cv2.filter2D(plane, -1, _NOISE_KERNEL))
    if (band & smooth).sum() < 50 or (far & smooth).sum() < 50:
        return 1.0
    return float((ripple[band & smooth].mean() + 1.0) / (ripple[far & smooth].mean() + 1.0))


EDGE_PROBE_SIGMA = 1.5


def edge_width(gray: np.ndarray) -> float:
    """Gaussian sigma, in pixels, of the strongest edges' spread (sharp video 0.5-0.8; soft focus above 1.2).

    A step edge blurred by a Gaussian of sigma s has a peak gradient
    proportional to 1/s; blurred once more by a known sigma t it drops by
    s / sqrt(s² + t²). The median of that ratio over the strongest edges
    gives s without knowing the edges' contrast: the edge spread function
    read off the picture, which is also the point spread deblurring inverts.
    """
    plane = gray.astype(np.float32)
    gradient = _gradient(plane)
    strong = _strong_edges(gray, gradient)
    if strong.sum() < 20:
        return 0.0
    blurred = _gradient(cv2.GaussianBlur(plane, (0, 0), EDGE_PROBE_SIGMA))
    ratio = float(np.clip(np.median(blurred[strong] / np.maximum(gradient[strong], 1e-3)), 0.0, 0.99))
    return EDGE_PROBE_SIGMA * ratio / float(np.sqrt(1.0 - ratio * ratio))


def source_rate(
    codec: str | None, bit_rate: float | None, width: int, height: int, fps: float | None
) -> dict[str, Any]:
    """What the planner reads of the file itself: its video codec and the bits it spends per pixel.

    The remaster stage merges this into the shot's measurement; without a
    known rate (``{}``) the planner judges compression from the picture alone.
    """
    if not codec or not bit_rate or not fps or width <= 0 or height <= 0:
        return {}
    return {"source_codec": codec, "source_bpp": round(float(bit_rate) / (width * height * fps), 4)}


def levels(gray: np.ndarray) -> tuple[float, float]:
    """The 0.5th and 99.5th luma percentiles: where black and white actually sit."""
    low, high = np.percentile(gray, (0.5, 99.5))
    return float(low), float(high)


def colour_stats(frame: np.ndarray) -> tuple[float, list[float]]:
    """Chroma spread (near 0 for black-and-white, even tinted) and per-channel edge strength.

    The colour of a scene's edges is a steadier estimate of the illuminant
    than the colour of its area (grey-edge rather than grey-world, van de
    Weijer et al. 2007): a meadow is green on average, its edges much less so.
    """
    if frame.ndim == 2:
        return 0.0, [1.0, 1.0, 1.0]
    ycrcb = cv2.cvtColor(frame, cv2.COLOR_RGB2YCrCb)
    spread = float(np.sqrt(ycrcb[..., 1].astype(np.float32).var() + ycrcb[..., 2].astype(np.float32).var()))
    edges = []
    for channel in cv2.split(frame.astype(np.float32)):
        edges.append(
            float(
                np.abs(cv2.Sobel(channel, cv2.CV_32F, 1, 0)).mean()
                + np.abs(cv2.Sobel(channel, cv2.CV_32F, 0, 1)).mean()
            )
        )
    return spread, edges


def match_brightness(image: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """``image`` with the mean and spread of ``reference``: flicker must not read as change."""
    return (image - image.mean()) * (reference.std() / max(float(image.std()), 1e-3)) + reference.mean()


def temporal_noise(cur: np.ndarray, warped: np.ndarray) -> float:
    """Noise sigma from the difference with a motion-compensated neighbour (float32 luma).

    Grain and sensor noise are new on every frame while the picture is not, so
    the robust spread of the difference is √2 σ whatever the noise's texture;
    a spatial estimate misses grain that is coarser than a pixel or that a
    codec has smeared into blotches.
    """
    difference = cur - match_brightness(warped, cur)
    deviation = np.median(np.abs(difference - np.median(difference)))
    return float(deviation * _MAD_TO_SIGMA / np.sqrt(2.0))


def dust_mask(prev: np.ndarray, cur: np.ndarray, nxt: np.ndarray, threshold: float) -> np.ndarray:
    """Pixels of ``cur`` that stand out from both motion-compensated neighbours and their surroundings.

    Dust and dirt sit on one frame only: real content is in the neighbours
    too, and where motion compensation failed the two neighbours disagree. A
    speck is also unlike the pixels around it, which motion errors often are
    not. All three are float32 luma, the neighbours already warped onto ``cur``.
    """
    prev, nxt = match_brightness(prev, cur), match_brightness(nxt, cur)
    before, after = cur - prev, cur - nxt
    surroundings = cv2.medianBlur(np.clip(cur, 0, 255).astype(np.uint8), 11).astype(np.float32)
    return (
        (np.sign(before) == np.sign(after))
        & (np.minimum(np.abs(before), np.abs(after)) > threshold)
        & (np.abs(prev - nxt) < threshold)
        & (np.abs(cur - surroundings) > threshold)
    )


def dust_threshold(sigma: float) -> float:
    """Far enough above the noise that grain alone rarely crosses it on both sides."""
    return max(24.0, 4.0 * sigma)


def scratch_threshold(sigma: float) -> float:
    return max(12.0, 2.5 * sigma)


def scratch_excess(gray: np.ndarray, coverage: float = 0.6) -> np.ndarray:
    """Per column, how far a thin vertical line there stands out, in luma levels (0 where none).

    A film scratch is a line one to a few pixels wide, brighter or darker than
    the picture beside it, down most of the frame. A horizontal top-hat (or
    black-hat) keeps exactly such thin lines and ignores edges; the value that
    ``coverage`` of a column exceeds says whether a line runs down it, and
    subtracting the same figure for the columns around discounts texture such
    as grass, which is everywhere rather than in one column.
    """
    plane = gray.astype(np.float32)
    kernel = cv2.getStructuringElement(cv2.MORPH_RECT, (7, 1))
    excess = np.zeros(plane.shape[1], np.float32)
    for response in (
        plane - cv2.morphologyEx(plane, cv2.MORPH_OPEN, kernel),
        cv2.morphologyEx(plane, cv2.MORPH_CLOSE, kernel) - plane,
    ):
        profile = np.percentile(response, 100 * (1 - coverage), axis=0)
        excess = np.maximum(excess, profile - ndimage.median_filter(profile, size=15, mode="nearest"))
    return excess


def scratch_columns(gray: np.ndarray, threshold: float, coverage: float = 0.6) -> np.ndarray:
    """Columns holding a scratch: a thin line standing out by more than ``threshold`` levels."""
    return np.flatnonzero(scratch_excess(gray, coverage) > threshold)


class FlickerMeter:
    """Mean frame-to-frame brightness instability, in luma levels, in O(1) memory.

    Each frame's mean luma is compared with the median of the five frames
    around it: a median follows cuts and fades (steps and ramps) exactly, so
    only brightness that jumps back and forth counts.
    """

    def __init__(self) -> None:
        self.window: deque[float] = deque(maxlen=5)
        self.total = 0.0
        self.count = 0

    def add(self, mean_luma: float) -> None:
        self.window.append(mean_luma)
        if len(self.window) == 5:
            self.total += abs(self.window[2] - float(np.median(self.window)))
            self.count += 1

    @property
    def value(self) -> float:
        return self.total / self.count if self.count else 0.0


def thumbnail(gray: np.ndarray) -> np.ndarray:
    height, width = gray.shape
    size = (min(THUMB_WIDTH, width), max(1, round(height * min(THUMB_WIDTH, width) / width)))
    return cv2.resize(gray, size, interpolation=cv2.INTER_AREA).astype(np.float32)


class ShotMeter:
    """Accumulates a shot's measurements frame by frame; ``result()`` gives the means.

    Brightness (for flicker) is taken on every frame; the rest on every
    ``stride``-th frame, which bounds the cost on long shots. Noise and dust
    compare a frame with its neighbours, so the last three frames are kept;
    a shot of one frame falls back to the spatial noise estimate.
    """

    def __init__(self, stride: int = 1) -> None:
        self.stride = max(1, stride)
        self.flicker = FlickerMeter()
        self.recent: deque[np.ndarray] = deque(maxlen=3)
        self.index = 0
        self.sums: dict[str, float] = {}
        self.counts: dict[str, int] = {}
        self.channel_edges = np.zeros(3)
        self.block_offsets: Counter[tuple[int, int]] = Counter()
        self.scratches = np.zeros(0, np.intp)  # scratch columns of the last frame measured spatially

    def _add(self, key: str, value: float) -> None:
        self.sums[key] = self.sums.get(key, 0.0) + value
        self.counts[key] = self.counts.get(key, 0) + 1

    def add(self, frame: np.ndarray) -> None:
        gray = luma(frame)
        self.flicker.add(float(thumbnail(gray).mean()))
        self.recent.append(gray)
        if len(self.recent) == 3 and (self.index - 1) % self.stride == 0:
            self._measure_temporal(*self.recent)  # on the middle frame, measured spatially last time
        if self.index % self.stride == 0:
            self._measure(frame, gray)
        self.index += 1

    def _measure(self, frame: np.ndarray, gray: np.ndarray) -> None:
        blockiness, offset_x, offset_y = block_grid(gray)
        self.block_offsets[offset_x, offset_y] += 1
        black, white = levels(gray)
        spread, edges = colour_stats(frame)
        self.channel_edges += edges
        columns = self.scratches = scratch_columns(gray, scratch_threshold(noise_sigma(gray)))
        for key, value in (
            ("spatial_noise", noise_sigma(gray)),
            ("sharpness", sharpness(gray)),
            ("blockiness", blockiness),
            ("hf_loss", hf_loss(gray)),
            ("ringing", ringing(gray)),
            ("edge_width", edge_width(gray)),
            ("black", black),
            ("white", white),
            ("chroma_spread", spread),
            ("contrast", float(gray.std())),
            ("scratch_columns", float(len(columns))),
            ("scratched", float(len(columns) > 0)),
        ):
            self._add(key, value)

    def _measure_temporal(self, prev: np.ndarray, cur: np.ndarray, nxt: np.ndarray) -> None:
        current = cur.astype(np.float32)
        before = warp_to(cur, prev).astype(np.float32)
        after = warp_to(cur, nxt).astype(np.float32)
        sigma = temporal_noise(current, before)
        mask = dust_mask(before, current, after, dust_threshold(sigma))
        for column in self.scratches:  # a wandering scratch is new on each frame too, but is not dust
            mask[:, max(column - 2, 0) : column + 3] = False
        # Specks of dust cover a few pixels together; isolated outliers of grain do not count.
        _, _, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
        areas = stats[1:, cv2.CC_STAT_AREA]
        self._add("temporal_noise", sigma)
        self._add("dust_ppm", 1e6 * float(areas[areas >= 5].sum()) / mask.size)

    def result(self) -> dict[str, Any]:
        """JSON-ready figures; those a short shot cannot give (dust needs three frames) read 0."""
        mean = {key: self.sums[key] / self.counts[key] for key in self.sums}
        measured = self.counts.get("sharpness", 0)
        edges = self.channel_edges / max(measured, 1)
        grey = float(edges.mean()) if measured else 0.0
        (offset_x, offset_y), _ = self.block_offsets.most_common(1)[0] if measured else ((0, 0), 0)
        noise = mean.get("temporal_noise", mean.get("spatial_noise", 0.0))
        result: dict[str, Any] = {
            "frames": self.index,
            "measured_frames": measured,
            "flicker": self.flicker.value,
            "noise": noise,
            "sharpness": mean.get("sharpness", 0.0),
            "blockiness": mean.get("blockiness", 1.0),
            "hf_loss": mean.get("hf_loss", 0.0),
            "ringing": mean.get("ringing", 1.0),
            "edge_width": mean.get("edge_width", 0.0),
            "block_offset_x": offset_x,
            "block_offset_y": offset_y,
            "dust_ppm": mean.get("dust_ppm", 0.0),
            "scratch_columns": mean.get("scratch_columns", 0.0),
            "scratched_share": mean.get("scratched", 0.0),
            "black": mean.get("black", 0.0),
            "white": mean.get("white", 255.0),
            "contrast": mean.get("contrast", 0.0),
            "chroma_spread": mean.get("chroma_spread", 0.0),
            "monochrome": mean.get("chroma_spread", 0.0) < 4.0,
            "channel_edges": [round(float(e), 3) for e in edges],
            "colour_cast": float(max(abs(e / grey - 1) for e in edges)) if grey > 0 else 0.0,
        }
        return {key: round(value, 4) if isinstance(value, float) else value for key, value in result.items()}
