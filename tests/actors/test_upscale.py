"""Super-resolution: the committed network beats bicubic on a held-out photograph, at any frame size."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from actors.models import ModelLoadError
from actors.upscale import DEFAULT_WEIGHTS, Upscaler, load_network
from jobs.train_upscaler import HELD_OUT, downscale, load_still, psnr_ssim_y


@pytest.fixture(scope="module")
def upscaler() -> Upscaler:
    return Upscaler(2, device="cpu")


def test_network_beats_bicubic_on_a_held_out_photograph(upscaler: Upscaler) -> None:
    assert "coffee.png" in HELD_OUT  # never seen in training
    original = load_still("coffee.png")
    small = downscale(original)
    bicubic = cv2.resize(small, (original.shape[1], original.shape[0]), interpolation=cv2.INTER_CUBIC)
    network_psnr, network_ssim = psnr_ssim_y(original, upscaler(small))
    bicubic_psnr, bicubic_ssim = psnr_ssim_y(original, bicubic)
    assert network_psnr > bicubic_psnr + 0.5
    assert network_ssim > bicubic_ssim


def test_tiles_with_overlap_give_the_untiled_result(upscaler: Upscaler) -> None:
    rng = np.random.default_rng(0)
    luma = cv2.GaussianBlur(rng.random((53, 71)).astype(np.float32), (0, 0), 1.5)
    whole = Upscaler(2, device="cpu", tile=512).upscale_luma(luma)
    tiled = Upscaler(2, device="cpu", tile=16).upscale_luma(luma)
    assert whole.shape == (106, 142)
    assert np.abs(whole - tiled).max() < 1e-4  # no seams


@pytest.mark.parametrize("shape", [(23, 37, 3), (31, 17), (1, 1, 3)])
def test_any_frame_size_and_x4_as_two_passes(upscaler: Upscaler, shape: tuple[int, ...]) -> None:
    frame = np.random.default_rng(1).integers(0, 256, shape, dtype=np.uint8)
    assert upscaler(frame).shape == (shape[0] * 2, shape[1] * 2, *shape[2:])
    assert Upscaler(4, device="cpu")(frame).shape == (shape[0] * 4, shape[1] * 4, *shape[2:])


def test_lanczos_fallback_needs_no_weights() -> None:
    lanczos = Upscaler(2, method="lanczos", weights="/nonexistent.pt")
    frame = np.full((10, 12, 3), 77, np.uint8)
    assert np.array_equal(lanczos(frame), np.full((20, 24, 3), 77, np.uint8))
    assert lanczos.model == "lanczos4" and lanczos.version.startswith("opencv-")


def test_unloadable_weights_fail_naming_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "broken.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(ModelLoadError, match=r"broken\.pt"):
        Upscaler(2, weights=bad)
    with pytest.raises(ModelLoadError, match=r"missing\.pt"):
        load_network(tmp_path / "missing.pt")
    with pytest.raises(ValueError, match="upscale factor"):
        Upscaler(3)


def test_committed_weights_are_small_and_name_their_version() -> None:
    assert DEFAULT_WEIGHTS.stat().st_size < 2_000_000
    net, version = load_network()
    assert len(version) == 12
    assert sum(p.numel() for p in net.parameters()) < 500_000
    assert DEFAULT_WEIGHTS.with_suffix(".json").is_file()
    assert Upscaler(2).device == torch.device("cuda" if torch.cuda.is_available() else "cpu")
