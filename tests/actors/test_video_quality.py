"""VMAF, PSNR and SSIM as a viewer would rank pictures: untouched best, more damage worse."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import skimage.data

from actors.video_quality import QualityMeter, measure_size, psnr, ssim, vmaf


def _photo(size: tuple[int, int] = (160, 120)) -> np.ndarray:
    return cv2.resize(skimage.data.chelsea(), size, interpolation=cv2.INTER_AREA)


def _jpeg(frame: np.ndarray, quality: int) -> np.ndarray:
    ok, data = cv2.imencode(".jpg", frame[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, quality])
    decoded = cv2.imdecode(data, cv2.IMREAD_COLOR)
    assert ok and decoded is not None
    return np.ascontiguousarray(decoded[..., ::-1])


def _noisy(frame: np.ndarray, sigma: float, seed: int = 0) -> np.ndarray:
    noise = np.random.default_rng(seed).normal(0, sigma, frame.shape)
    return np.clip(frame + noise, 0, 255).astype(np.uint8)


def test_identical_frames_score_perfect() -> None:
    frame = _photo()
    assert psnr(frame, frame) == 100.0
    assert ssim(frame, frame) == pytest.approx(1.0)
    assert vmaf(frame, frame) > 97.0  # v0.6.1 on a still: 97.43; 100 needs motion
    assert vmaf(frame, frame) > vmaf(frame, _jpeg(frame, 95))


def test_more_damage_scores_lower() -> None:
    frame = _photo()
    light, heavy = _noisy(frame, 4), _noisy(frame, 20)
    assert psnr(frame, light) > psnr(frame, heavy) + 6
    assert ssim(frame, light) > ssim(frame, heavy)
    assert vmaf(frame, light) > vmaf(frame, heavy) + 10


def test_scores_rise_with_jpeg_quality() -> None:
    frame = _photo()
    qualities = (10, 30, 60, 90)
    for measure in (psnr, ssim, vmaf):
        scores = [measure(frame, _jpeg(frame, q)) for q in qualities]
        assert scores == sorted(scores), (measure.__name__, scores)
        assert scores[-1] > scores[0]


def test_mismatched_sizes_are_refused_with_both_named() -> None:
    with pytest.raises(ValueError, match="160x120 against 80x60"):
        psnr(_photo(), _photo((80, 60)))
    meter = QualityMeter()
    meter.add(_photo(), _photo())
    with pytest.raises(ValueError, match="frame 1 is 80x60"):
        meter.add(_photo((80, 60)), _photo((80, 60)))
    with pytest.raises(ValueError, match="uint8 RGB"):
        psnr(_photo().astype(np.float32), _photo().astype(np.float32))


def _panned(frames: int, shift: int = 1) -> list[np.ndarray]:
    wide = cv2.resize(skimage.data.astronaut(), (200, 120), interpolation=cv2.INTER_AREA)
    return [np.ascontiguousarray(wide[:, i * shift : i * shift + 120]) for i in range(frames)]


def test_the_meter_streams_a_video_and_samples_every_stride_frames() -> None:
    clip = _panned(9)
    every, sampled = QualityMeter(), QualityMeter(stride=4)
    damaged = [_jpeg(frame, 15) for frame in clip]
    for reference, distorted in zip(clip, damaged, strict=True):
        every.add(reference, distorted)
        sampled.add(reference, distorted)
    full, some = every.result(), sampled.result()
    assert (full["frames_scored"], some["frames_scored"]) == (9, 3)  # frames 0, 4, 8
    assert full["measured_at"] == "120x120"
    assert some["psnr"] == pytest.approx(full["psnr"], abs=0.5)
    assert some["vmaf"] == pytest.approx(full["vmaf"], abs=5)
    clean = QualityMeter()
    for frame in clip:
        clean.add(frame, frame)
    untouched = clean.result()
    assert untouched["vmaf"] > 99.5  # a moving reference, untouched: near VMAF's perfect score
    assert untouched["psnr"] > full["psnr"] + 20 and untouched["ssim"] > full["ssim"] + 0.05
    assert untouched["vmaf"] > full["vmaf"] + 5


def test_a_large_pair_is_measured_at_1080p_and_vmaf_can_be_left_out() -> None:
    assert measure_size(3840, 2160) == (1920, 1080)
    assert measure_size(2560, 1152) == (1920, 864)
    assert measure_size(720, 576) == (720, 576)
    meter = QualityMeter(vmaf=False)
    frame = cv2.resize(_photo(), (2400, 1200))
    meter.add(frame, frame)
    assert meter.result() == {
        "psnr": 100.0,
        "ssim": pytest.approx(1.0),
        "frames_scored": 1,
        "measured_at": "1920x960",
    }
