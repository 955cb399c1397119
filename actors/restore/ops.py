"""The restoration operations, each a small dataclass of its parameters with one ``apply``.

Every op sees a short window of uint8 RGB frames and the index of the frame
to restore in it (``radius`` frames either side at most; fewer at the ends of
a shot), and returns that frame restored. Spatial ops have radius 0. The
parameters are plain numbers, so a plan serialises to JSON as it is and the
same plan rebuilds the same ops.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import cv2
import fsspec
import numpy as np

from actors.restore.measure import (
    dust_mask,
    dust_threshold,
    noise_sigma,
    scratch_excess,
    scratch_threshold,
    temporal_noise,
    thumbnail,
)
from actors.restore.motion import warp_to
from actors.restore.pixels import luma, to_uint8

Frames = Sequence[np.ndarray]


@dataclass
class Deflicker:
    """Temporal brightness stabilisation: each frame's luma mean and contrast pulled to its neighbours'.

    Flicker (uneven exposure, film density, lamp ripple) changes a frame's
    brightness and contrast as a whole. The target is the average over
    ``radius`` frames either side, stopping at a cut so that a new shot's
    brightness is not blended into the old one; fades survive because the
    average of a ramp is the ramp.
    """

    name: ClassVar[str] = "deflicker"
    radius: int = 2
    strength: float = 1.0
    cut_threshold: float = 0.6
    """Mean difference of brightness-normalised thumbnails above which two frames are different shots."""

    def apply(self, frames: Frames, i: int) -> np.ndarray:
        thumbs = [thumbnail(luma(frame)) for frame in frames]
        stats = [(float(t.mean()), max(float(t.std()), 1e-3)) for t in thumbs]
        normalised = [(t - m) / s for t, (m, s) in zip(thumbs, stats, strict=True)]

        def same_shot(a: int, b: int) -> bool:
            return float(np.abs(normalised[a] - normalised[b]).mean()) < self.cut_threshold

        first = i
        while first > 0 and same_shot(first - 1, first):
            first -= 1
        last = i
        while last < len(frames) - 1 and same_shot(last, last + 1):
            last += 1
        mean, std = stats[i]
        target_mean = float(np.mean([m for m, _ in stats[first : last + 1]]))
        target_std = float(np.mean([s for _, s in stats[first : last + 1]]))
        gain = 1.0 + self.strength * (target_std / std - 1.0)
        shift = mean + self.strength * (target_mean - mean)
        if abs(gain - 1.0) < 1e-3 and abs(shift - mean) < 0.05:
            return frames[i]
        return to_uint8((frames[i].astype(np.float32) - mean) * gain + shift)


@dataclass
class Denoise:
    """Spatio-temporal denoising that follows motion instead of smearing it.

    Neighbouring frames are warped onto the current one by optical flow and
    averaged with it, each pixel weighted by how well the warped neighbour
    matches (a mismatch beyond what noise explains means the flow failed
    there, e.g. at an occlusion, and that neighbour is left out). What noise
    remains is taken down by an edge-preserving bilateral filter scaled to it.
    """

    name: ClassVar[str] = "denoise"
    sigma: float | None = None
    """Noise standard deviation in luma levels; ``None`` measures it on each frame."""
    strength: float = 1.0
    radius: int = 2

    def apply(self, frames: Frames, i: int) -> np.ndarray:
        center = frames[i]
        current = center.astype(np.float32)
        neighbours = [warp_to(center, frame).astype(np.float32) for j, frame in enumerate(frames) if j != i]
        sigma = self.sigma
        if sigma is None:
            sigma = (
                temporal_noise(luma(current), luma(neighbours[max(i - 1, 0)]))
                if neighbours
                else noise_sigma(luma(center))
            )
        sigma *= self.strength
        if sigma < 0.5:
            return center
        total = current.copy()
        weights = np.ones(center.shape[:2], np.float32)
        for warped in neighbours:
            distance = np.abs(warped - current)
            distance = cv2.blur(distance.mean(axis=2) if distance.ndim == 3 else distance, (5, 5))
            # 1.13σ is the mean |difference| of two noisy copies of the same pixel.
            excess = np.maximum(distance - 1.13 * sigma, 0.0) / sigma
            weight = np.exp(-(excess**2))
            total += warped * (weight[..., None] if warped.ndim == 3 else weight)
            weights += weight
        averaged = total / (weights[..., None] if total.ndim == 3 else weights)
        residual = sigma / float(np.sqrt(weights.mean()))
        return to_uint8(cv2.bilateralFilter(averaged, 5, 2.5 * residual, 2.0))


@dataclass
class Dust:
    """Dust and dirt: specks on one frame only, refilled from the motion-compensated neighbours."""

    name: ClassVar[str] = "dust"
    radius: ClassVar[int] = 1
    threshold: float | None = None
    """Luma difference from both neighbours that marks a speck; ``None`` sets it from the noise."""
    grow: int = 1
    """Pixels added around each speck, so its soft rim is replaced too."""

    def apply(self, frames: Frames, i: int) -> np.ndarray:
        if i == 0 or i == len(frames) - 1:
            return frames[i]  # a speck is only told from content with a frame on each side
        center = frames[i]
        before, after = warp_to(center, frames[i - 1]), warp_to(center, frames[i + 1])
        gray, gray_before = luma(center).astype(np.float32), luma(before).astype(np.float32)
        threshold = self.threshold
        if threshold is None:
            threshold = dust_threshold(temporal_noise(gray, gray_before))
        mask = dust_mask(gray_before, gray, luma(after).astype(np.float32), threshold)
        if not mask.any():
            return center
        if self.grow > 0:
            mask = cv2.dilate(mask.astype(np.uint8), np.ones((2 * self.grow + 1,) * 2, np.uint8)) > 0
        repaired = center.copy()
        fill = (before.astype(np.uint16) + after.astype(np.uint16) + 1) // 2
        repaired[mask] = fill[mask].astype(np.uint8)
        return repaired


@dataclass
class Scratch:
    """Vertical line scratches: found as long thin lines, filled from the pixels beside them.

    A scratch sits at the same place on many frames, so neighbouring frames
    cannot fill it; the columns either side can, because it is narrow. Each
    row is interpolated straight across the scratch, which for a line a few
    pixels wide beats general inpainting (Telea or Navier-Stokes), since the
    picture is continuous across it.
    """

    name: ClassVar[str] = "scratch"
    radius: ClassVar[int] = 0
    threshold: float | None = None
    """How far a line stands out from its row neighbourhood, in luma levels; ``None`` from the noise."""
    coverage: float = 0.6
    """Share of the frame height a line must cover to count as a scratch."""

    def apply(self, frames: Frames, i: int) -> np.ndarray:
        frame = frames[i]
        gray = luma(frame)
        threshold = self.threshold if self.threshold is not None else scratch_threshold(noise_sigma(gray))
        excess = scratch_excess(gray, self.coverage)
        core = excess > threshold
        if not core.any():
            return frame
        # A scratch's soft rim: columns beside it that stand out by a third as much.
        masked = core | ((excess > threshold / 3) & (np.convolve(core, np.ones(3), mode="same") > 0))
        return _fill_columns(frame, masked)


def _fill_columns(frame: np.ndarray, masked: np.ndarray) -> np.ndarray:
    """Each run of masked columns replaced, row by row, by a straight line between its two sides."""
    out = frame.astype(np.float32)
    edges = np.diff(np.concatenate([[0], masked.astype(np.int8), [0]]))
    width = frame.shape[1]
    for start, stop in zip(
        np.flatnonzero(edges == 1).tolist(), np.flatnonzero(edges == -1).tolist(), strict=True
    ):
        left, right = out[:, max(start - 1, 0)], out[:, min(stop, width - 1)]
        if start == 0:
            left = right
        if stop == width:
            right = left
        for column in range(start, stop):
            t = (column - start + 1) / (stop - start + 1)
            out[:, column] = (1 - t) * left + t * right
    return to_uint8(out)


@dataclass
class Deblock:
    """Compression blocking smoothed away at the block grid only, where no real edge is.

    At each block boundary the step between the two pixels that meet there is
    spread over a ramp ``span`` pixels either side, but only where both sides
    are flat and the step is small (a larger step is an edge of the picture,
    a busy side is texture that hides the block edge anyway and would only be
    blurred). Luma blocks are 8 pixels; 4:2:0 chroma blocks cover 16.
    """

    name: ClassVar[str] = "deblock"
    radius: ClassVar[int] = 0
    threshold: float = 12.0
    """Largest step across a block edge that is treated as blocking, in luma levels."""
    flatness: float = 2.5
    """Largest step between the two pixels on either side of the edge for that side to count as flat."""
    offset_x: int = 0
    offset_y: int = 0
    span: int = 3

    def apply(self, frames: Frames, i: int) -> np.ndarray:
        ycrcb = cv2.cvtColor(frames[i], cv2.COLOR_RGB2YCrCb).astype(np.float32)
        for channel, period in ((0, 8), (1, 16), (2, 16)):
            plane = ycrcb[..., channel]
            self._smooth_edges(plane, period, self.offset_x % period)
            self._smooth_edges(plane.T, period, self.offset_y % period)
        return cv2.cvtColor(to_uint8(ycrcb), cv2.COLOR_YCrCb2RGB)

    def _smooth_edges(self, plane: np.ndarray, period: int, offset: int) -> None:
        """In place: the vertical block edges of ``plane`` (pass a transpose for the horizontal ones)."""
        span, width = self.span, plane.shape[1]
        left = np.arange(offset - 1 if offset else period - 1, width - 1, period)
        left = left[(left - span + 1 >= 0) & (left + span < width)]
        if not len(left):
            return
        p0, q0 = plane[:, left], plane[:, left + 1]
        step = q0 - p0
        ripple = np.maximum(np.abs(plane[:, left - 1] - p0), np.abs(plane[:, left + 2] - q0))
        flat = ripple < self.flatness
        delta = np.where(flat & (np.abs(step) < self.threshold), step, 0.0)
        for d in range(span):
            share = delta * ((span - d) / (2 * span))
            plane[:, left - d] += share
            plane[:, left + 1 + d] -= share


@dataclass
class Artefacts:
    """Codec artefacts and noise taken out by the project's own network (``learned.py``).

    Blocking, ringing, mosquito noise, chroma bleeding and the blotchy noise a
    low-rate codec leaves are repaired together, from the frame and its two
    neighbours aligned by optical flow. The network estimates the damage
    itself; ``strength`` scales its correction (0 leaves the frame alone, 1
    applies it as trained). The weights are loaded once per worker and
    shared by every shot.
    """

    name: ClassVar[str] = "artefacts"
    radius: ClassVar[int] = 1
    strength: float = 1.0
    weights: str = ""
    """Path of the network's weights; empty for the committed ``actors/data/restorer.pt``."""
    device: str = "auto"
    """``auto`` (CUDA when torch sees one), ``cpu`` or ``cuda[:n]``."""

    def __post_init__(self) -> None:
        if not 0.0 <= self.strength <= 2.0:
            raise ValueError(f"artefacts strength must be between 0 and 2, not {self.strength!r}")

    def _remover(self) -> Any:
        from actors.restore.learned import shared_remover  # torch loads only where the network runs

        return shared_remover(self.weights or None, self.device)

    def bind(self, storage_options: dict[str, Any] | None) -> None:
        """Loads the network now, so weights that do not match it fail when the plan is built."""
        self._remover()

    def apply(self, frames: Frames, i: int) -> np.ndarray:
        if self.strength == 0.0:
            return frames[i]
        return np.asarray(self._remover().restore(frames, i, self.strength))


@dataclass
class Deblur:
    """Soft focus undone on luma by inverting a Gaussian point spread (van Cittert iterations, noise-gated).

    The planner reads the point spread off the picture (``measure.edge_width``).
    Each iteration adds back what blurring the estimate by that spread takes
    away from the observed frame; one iteration is unsharp masking with the
    spread's own width, the first term of the inverse filter's series. It is
    chosen over Wiener or Richardson-Lucy because its gain is bounded
    (``1 + iterations × amount`` at most) where theirs grows with the
    frequency, so the noise and codec residue archive footage carries are
    not blown up; detail smaller than ``threshold`` levels is not amplified
    at all. Chroma is left as it is: the eye resolves detail in luma.
    """

    name: ClassVar[str] = "deblur"
    radius: ClassVar[int] = 0
    sigma: float = 1.0
    """Point spread (Gaussian sigma, pixels) to invert."""
    amount: float = 1.0
    iterations: int = 2
    threshold: float = 1.0
    """Detail below this many luma levels (noise) is not sharpened."""

    def __post_init__(self) -> None:
        if not 0.1 <= self.sigma <= 5.0:
            raise ValueError(f"deblur sigma must be between 0.1 and 5 pixels, not {self.sigma!r}")
        if not 1 <= self.iterations <= 10:
            raise ValueError(f"deblur iterations must be between 1 and 10, not {self.iterations!r}")

    def apply(self, frames: Frames, i: int) -> np.ndarray:
        frame = frames[i]
        if self.amount <= 0:
            return frame
        ycrcb = cv2.cvtColor(frame, cv2.COLOR_RGB2YCrCb) if frame.ndim == 3 else frame[..., None]
        observed = ycrcb[..., 0].astype(np.float32)
        estimate = observed.copy()
        for _ in range(self.iterations):
            correction = observed - cv2.GaussianBlur(estimate, (0, 0), self.sigma)
            # Soft coring: small differences are noise, not lost detail.
            gated = np.sign(correction) * np.maximum(np.abs(correction) - self.threshold, 0.0)
            estimate += self.amount * gated
        if frame.ndim == 2:
            return to_uint8(estimate)
        out = ycrcb.copy()
        out[..., 0] = to_uint8(estimate)
        return cv2.cvtColor(out, cv2.COLOR_YCrCb2RGB)


@dataclass
class Contrast:
    """Levels then CLAHE on lightness: fixed per shot so that it cannot flicker.

    ``black`` and ``white`` come from the shot's measured percentiles, not the
    frame's, so a dark frame inside a bright shot is not stretched on its own.
    """

    name: ClassVar[str] = "contrast"
    radius: ClassVar[int] = 0
    black: float = 0.0
    white: float = 255.0
    clip_limit: float = 1.5
    """CLAHE clip limit; 0 applies the levels only."""
    tiles: int = 8

    def apply(self, frames: Frames, i: int) -> np.ndarray:
        scale = 255.0 / max(self.white - self.black, 1.0)
        frame = to_uint8((frames[i].astype(np.float32) - self.black) * scale)
        if self.clip_limit <= 0:
            return frame
        clahe = cv2.createCLAHE(clipLimit=self.clip_limit, tileGridSize=(self.tiles, self.tiles))
        if frame.ndim == 2:
            return clahe.apply(frame)
        lab = cv2.cvtColor(frame, cv2.COLOR_RGB2LAB)
        lab[..., 0] = clahe.apply(lab[..., 0])
        return cv2.cvtColor(lab, cv2.COLOR_LAB2RGB)


@dataclass
class Balance:
    """Colour balance by fixed per-channel gains (grey-world, measured over the shot)."""

    name: ClassVar[str] = "balance"
    radius: ClassVar[int] = 0
    gains: list[float] = field(default_factory=lambda: [1.0, 1.0, 1.0])

    def apply(self, frames: Frames, i: int) -> np.ndarray:
        if frames[i].ndim == 2:
            return frames[i]
        return to_uint8(frames[i].astype(np.float32) * np.asarray(self.gains, np.float32))


@dataclass
class Colorize:
    """Exemplar-based colour transfer onto a black-and-white shot (Welsh, Ashikhmin & Mueller 2002).

    Each pixel takes the average chroma of the reference pixels with the same
    lightness and the same local texture (standard deviation of lightness
    around it), after the reference's lightness is remapped to the shot's. A
    lookup table over (lightness, texture) makes that a per-pixel table read,
    and the table is fixed for the shot, so colours do not flicker. It gives
    plausible, not historically true, colours: it is off unless asked for.
    """

    name: ClassVar[str] = "colorize"
    radius: ClassVar[int] = 0
    reference: str = ""
    """fsspec URI of a colour image of similar content."""
    strength: float = 1.0
    _reference_lab: np.ndarray | None = field(default=None, init=False, repr=False)
    _table: np.ndarray | None = field(default=None, init=False, repr=False)

    LIGHT_BINS: ClassVar[int] = 64
    TEXTURE_BINS: ClassVar[int] = 16
    TEXTURE_MAX: ClassVar[float] = 24.0

    def bind(self, storage_options: dict[str, Any] | None) -> None:
        """Reads the reference image now, so a bad URI fails when the plan is built."""
        if not self.reference:
            raise ValueError("colorize needs a 'reference' image URI")
        try:
            with fsspec.open(self.reference, "rb", **(storage_options or {})) as handle:
                data = np.frombuffer(handle.read(), np.uint8)
            bgr = cv2.imdecode(data, cv2.IMREAD_COLOR)
        except (OSError, ValueError) as exc:
            raise ValueError(f"colorize reference {self.reference!r} cannot be read: {exc}") from exc
        if bgr is None:
            raise ValueError(f"colorize reference {self.reference!r} is not an image")
        self._reference_lab = cv2.cvtColor(bgr, cv2.COLOR_BGR2LAB).astype(np.float32)

    def set_reference(self, rgb: np.ndarray) -> None:
        self._reference_lab = cv2.cvtColor(rgb, cv2.COLOR_RGB2LAB).astype(np.float32)

    @classmethod
    def _features(cls, lightness: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        mean = cv2.blur(lightness, (5, 5))
        texture = np.sqrt(np.maximum(cv2.blur(lightness**2, (5, 5)) - mean**2, 0.0))
        light_bin = np.clip(lightness * (cls.LIGHT_BINS / 256.0), 0, cls.LIGHT_BINS - 1).astype(np.intp)
        texture_bin = np.clip(texture * (cls.TEXTURE_BINS / cls.TEXTURE_MAX), 0, cls.TEXTURE_BINS - 1)
        return light_bin, texture_bin.astype(np.intp)

    def _build_table(self, target_lightness: np.ndarray) -> np.ndarray:
        from scipy import ndimage

        assert self._reference_lab is not None
        ref = self._reference_lab
        ref_l = ref[..., 0]
        standardised = (ref_l - ref_l.mean()) / max(ref_l.std(), 1e-3)
        remapped = standardised * target_lightness.std() + target_lightness.mean()
        light_bin, texture_bin = self._features(remapped)
        shape = (self.LIGHT_BINS, self.TEXTURE_BINS)
        index = np.ravel_multi_index((light_bin.ravel(), texture_bin.ravel()), shape)
        counts = np.bincount(index, minlength=np.prod(shape)).reshape(shape)
        table = (
            np.stack(
                [np.bincount(index, ref[..., c].ravel(), np.prod(shape)).reshape(shape) for c in (1, 2)],
                axis=-1,
            )
            / np.maximum(counts, 1)[..., None]
        )
        # Bins the reference never filled borrow from the nearest filled bin.
        _, nearest = ndimage.distance_transform_edt(counts == 0, return_indices=True)
        return table[nearest[0], nearest[1]]

    def apply(self, frames: Frames, i: int) -> np.ndarray:
        if self._reference_lab is None:
            raise RuntimeError("colorize has no reference image: call bind() or set_reference() first")
        gray = luma(frames[i])
        lightness = cv2.cvtColor(cv2.cvtColor(gray, cv2.COLOR_GRAY2RGB), cv2.COLOR_RGB2LAB)[..., 0]
        lightness = lightness.astype(np.float32)
        if self._table is None:
            self._table = self._build_table(lightness)
        light_bin, texture_bin = self._features(lightness)
        chroma = self._table[light_bin, texture_bin]
        # Chroma is smooth in real images; smoothing hides the table's quantisation.
        chroma = cv2.GaussianBlur(chroma, (0, 0), 3.0)
        chroma = 128.0 + (chroma - 128.0) * self.strength
        lab = np.dstack([lightness, chroma]).astype(np.float32)
        return cv2.cvtColor(to_uint8(lab), cv2.COLOR_LAB2RGB)


OPS: dict[str, type] = {
    op.name: op
    for op in (Deblock, Artefacts, Deflicker, Dust, Scratch, Denoise, Deblur, Contrast, Balance, Colorize)
}
"""Every operation by name, in the order a plan applies them.

Codec damage is undone first, as it was the last damage done: grid blocking,
then the network's repair of the rest (it was trained on codec output, not
on what other operations make of it); brightness is steadied before dust is
looked for, because dust is found by comparing neighbouring frames;
scratches and dust are repaired before denoising, which would otherwise
smear them into their surroundings; deblurring sharpens only what is left
once noise and artefacts are gone; tone and colour come last, on clean frames.
"""
