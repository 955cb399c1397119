"""Full-reference quality of a video against its reference: VMAF, with PSNR and SSIM beside it.

VMAF (Netflix's Video Multi-Method Assessment Fusion, model vmaf_v0.6.1) is
computed by ``vmaf-torch`` (Aistov and Koroteev 2023, arXiv 2310.15578), a
PyTorch re-implementation of libvmaf's features (VIF at four scales, ADM,
motion) and of its SVM with the v0.6.1 model built in; its authors measured it
within 0.03 points of libvmaf (mean 0.006) on the 79 streams of Netflix's
public data set. libvmaf itself cannot be had here: Debian 12 packages neither
libvmaf nor an FFmpeg built with it, PyAV's wheel has no ``libvmaf`` filter,
and ``pyvmaf`` on PyPI is only a binding that needs the system library. Scores
are clipped to 0..100 as libvmaf's are. VMAF was trained on 1080p viewing, so
a pair larger than 1920x1080 is brought down to fit (area averaging, both
pictures alike) before anything is measured, which also bounds the cost: about
5 s a 1080p frame on one core, 0.4 s at 512x512.

Every measure reads the luma a decoder hands a player: BT.709 Y in the
limited range (16-235) of an 8-bit access copy, from uint8 RGB frames. PSNR
(peak 255) is capped at 100 dB so that identical frames give a finite mean;
SSIM is Wang et al. 2004 (11x11 Gaussian window, sigma 1.5). Identical
frames score PSNR 100, SSIM 1 and VMAF 97.4 to 100: the v0.6.1 model gives
100 only where the reference moves (its motion feature), 97.43 on a still.

VMAF's motion feature of frame n is the smaller of its blurred mean absolute
difference to frames n - 1 and n + 1 of the reference, so the streaming meter
scores a sampled frame once the next one has arrived, keeping only the luma of
the few frames around a sample; memory does not grow with a video's length.
"""

from __future__ import annotations

import math
from typing import Any

import cv2
import numpy as np
import torch

MAX_SIZE = (1920, 1080)
"""Largest picture measured; larger pairs are brought down to fit (VMAF's model is for 1080p)."""
PSNR_CAP = 100.0
_BT709 = np.array([0.2126, 0.7152, 0.0722], dtype=np.float32)
_SSIM_C1 = (0.01 * 255) ** 2
_SSIM_C2 = (0.03 * 255) ** 2
_MODEL: Any = None


def _model() -> Any:
    """The VMAF network, built once per process (its SVM holds the model's support vectors);
    imported on first use, since vmaf-torch brings pandas and only the remaster stage scores."""
    global _MODEL
    if _MODEL is None:
        from vmaf_torch import VMAF

        _MODEL = VMAF(clip_score=True, enable_motion=True).eval()
    return _MODEL


def luma(frame: np.ndarray, size: tuple[int, int] | None = None) -> np.ndarray:
    """Limited-range BT.709 Y (float32) of a uint8 RGB frame, brought down to ``size`` if given."""
    if frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
        raise ValueError(f"quality is measured on uint8 RGB frames, not {frame.dtype} of shape {frame.shape}")
    y: np.ndarray = 16.0 + (219.0 / 255.0) * (frame.astype(np.float32) @ _BT709)
    if size is not None and (y.shape[1], y.shape[0]) != size:
        y = cv2.resize(y, size, interpolation=cv2.INTER_AREA)
    return np.rint(y).astype(np.float32)  # what an 8-bit decoder gives


def measure_size(width: int, height: int) -> tuple[int, int]:
    """The size a ``width`` x ``height`` pair is measured at: as it is, or brought down to fit 1080p."""
    scale = min(1.0, MAX_SIZE[0] / width, MAX_SIZE[1] / height)
    return (max(1, round(width * scale)), max(1, round(height * scale)))


def _check_pair(reference: np.ndarray, distorted: np.ndarray) -> None:
    if reference.shape != distorted.shape:
        raise ValueError(
            f"reference and distorted frames differ in size: {reference.shape[1]}x{reference.shape[0]} "
            f"against {distorted.shape[1]}x{distorted.shape[0]}; bring them to one size first"
        )


def psnr_luma(reference: np.ndarray, distorted: np.ndarray) -> float:
    """PSNR in dB of two lumas, peak 255, capped at ``PSNR_CAP``."""
    mse = float(np.mean((reference.astype(np.float64) - distorted.astype(np.float64)) ** 2))
    return PSNR_CAP if mse <= 255.0**2 * 10 ** (-PSNR_CAP / 10) else 10 * math.log10(255.0**2 / mse)


def ssim_luma(reference: np.ndarray, distorted: np.ndarray) -> float:
    """Mean SSIM of two lumas (Gaussian window 11, sigma 1.5, mirrored borders)."""
    x, y = reference.astype(np.float64), distorted.astype(np.float64)

    def blur(image: np.ndarray) -> np.ndarray:
        return cv2.GaussianBlur(image, (11, 11), 1.5, borderType=cv2.BORDER_REFLECT)

    mx, my = blur(x), blur(y)
    vx, vy, cxy = blur(x * x) - mx * mx, blur(y * y) - my * my, blur(x * y) - mx * my
    ssim = ((2 * mx * my + _SSIM_C1) * (2 * cxy + _SSIM_C2)) / (
        (mx * mx + my * my + _SSIM_C1) * (vx + vy + _SSIM_C2)
    )
    return float(ssim.mean())


def vmaf_luma(
    reference: np.ndarray,
    distorted: np.ndarray,
    previous: np.ndarray | None = None,
    following: np.ndarray | None = None,
) -> float:
    """VMAF (v0.6.1) of one frame's lumas; ``previous``/``following``: the reference's neighbours,
    for the motion feature (none: a still, motion 0)."""
    model = _model()
    with torch.no_grad():
        ref = torch.from_numpy(np.ascontiguousarray(reference, dtype=np.float32))[None, None]
        dist = torch.from_numpy(np.ascontiguousarray(distorted, dtype=np.float32))[None, None]
        if previous is None:
            motion = torch.zeros((1, 1))
        else:
            stack = [previous, reference] + ([following] if following is not None else [])
            frames = torch.from_numpy(np.stack(stack).astype(np.float32))[:, None]
            motion = model.compute_motion2(frames)[1:2]
        score = model.predict(
            model.compute_adm_score(ref, dist), motion, model.compute_vif_features(ref, dist)
        )
    return float(score.item())


def psnr(reference: np.ndarray, distorted: np.ndarray) -> float:
    """Luma PSNR (dB) of two uint8 RGB frames of one size."""
    _check_pair(reference, distorted)
    return psnr_luma(luma(reference), luma(distorted))


def ssim(reference: np.ndarray, distorted: np.ndarray) -> float:
    """Luma SSIM of two uint8 RGB frames of one size."""
    _check_pair(reference, distorted)
    return ssim_luma(luma(reference), luma(distorted))


def vmaf(reference: np.ndarray, distorted: np.ndarray) -> float:
    """VMAF of one still pair of uint8 RGB frames (no motion), measured at ``measure_size``."""
    _check_pair(reference, distorted)
    size = measure_size(reference.shape[1], reference.shape[0])
    return vmaf_luma(luma(reference, size), luma(distorted, size))


class QualityMeter:
    """Streams frame pairs in display order; ``result()`` gives the mean PSNR, SSIM and VMAF.

    Every ``stride``-th pair is scored (the first included); ``vmaf=False`` leaves VMAF out
    (PSNR and SSIM cost milliseconds, VMAF seconds). Frames must keep one size throughout.
    """

    def __init__(self, stride: int = 1, *, vmaf: bool = True) -> None:
        self.stride = max(1, int(stride))
        self.with_vmaf = vmaf
        self.frames = 0
        self.size: tuple[int, int] | None = None
        self.source_size: tuple[int, int] | None = None
        self._previous: np.ndarray | None = None  # the reference's luma of the frame before
        self._waiting: tuple[np.ndarray | None, np.ndarray, np.ndarray] | None = None  # needs the next frame
        self._scores: dict[str, list[float]] = {"psnr": [], "ssim": [], "vmaf": []}

    def add(self, reference: np.ndarray, distorted: np.ndarray) -> None:
        _check_pair(reference, distorted)
        height, width = reference.shape[:2]
        if self.source_size is None:
            self.source_size, self.size = (width, height), measure_size(width, height)
        elif self.source_size != (width, height):
            raise ValueError(
                f"frame {self.frames} is {width}x{height}, the frames before it "
                f"{self.source_size[0]}x{self.source_size[1]}: a meter measures one size"
            )
        index, self.frames = self.frames, self.frames + 1
        sampled = index % self.stride == 0
        next_to_sample = (index + 1) % self.stride == 0 or self._waiting is not None
        if not (sampled or next_to_sample):
            self._previous = None
            return
        ref = luma(reference, self.size)
        if self._waiting is not None:
            self._score_vmaf(*self._waiting, following=ref)
            self._waiting = None
        if sampled:
            dist = luma(distorted, self.size)
            self._scores["psnr"].append(psnr_luma(ref, dist))
            self._scores["ssim"].append(ssim_luma(ref, dist))
            if self.with_vmaf:
                self._waiting = (self._previous, ref, dist)
        self._previous = ref

    def _score_vmaf(
        self, previous: np.ndarray | None, ref: np.ndarray, dist: np.ndarray, following: np.ndarray | None
    ) -> None:
        self._scores["vmaf"].append(vmaf_luma(ref, dist, previous, following))

    def result(self) -> dict[str, Any]:
        """Means over the scored frames (``None`` where nothing was scored) and what was measured."""
        if self._waiting is not None:  # the last frame has no next one: motion to the frame before only
            self._score_vmaf(*self._waiting, following=None)
            self._waiting = None
        means: dict[str, Any] = {
            name: (round(float(np.mean(values)), 4) if values else None)
            for name, values in self._scores.items()
            if name != "vmaf" or self.with_vmaf
        }
        means["frames_scored"] = len(self._scores["psnr"])
        means["measured_at"] = f"{self.size[0]}x{self.size[1]}" if self.size else None
        return means
