"""Restoration: each operation repairs the defect planted in it, and ``auto`` picks the right ones."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from skimage import data as skdata

from actors.restore import FlickerMeter, Restorer, ShotMeter, make_plan, parse_ops
from actors.restore.damage import ArchiveDamage, add_dust, add_scratch, jpeg_roundtrip
from actors.restore.measure import block_grid
from actors.restore.ops import OPS, Balance, Colorize, Contrast, Deblock, Deflicker, Denoise, Dust, Scratch
from actors.restore.pixels import luma
from actors.restore.plan import check_params


def panning_shot(frames: int = 9, size: tuple[int, int] = (120, 160), step: int = 2) -> list[np.ndarray]:
    """A camera pan over a real photograph: texture, edges and motion with a known ground truth."""
    photo = skdata.astronaut()
    height, width = size
    return [
        np.ascontiguousarray(photo[30 : 30 + height, 150 + step * k : 150 + step * k + width])
        for k in range(frames)
    ]


def mse(a: np.ndarray, b: np.ndarray, mask: np.ndarray | None = None) -> float:
    diff = (a.astype(np.float64) - b.astype(np.float64)) ** 2
    return float(diff[mask].mean() if mask is not None else diff.mean())


def measure(frames: list[np.ndarray]) -> dict:
    meter = ShotMeter()
    for frame in frames:
        meter.add(frame)
    return meter.result()


def test_op_list_parser_accepts_modes_and_names_unknown_ops() -> None:
    assert parse_ops("auto").auto
    assert parse_ops("off").ops == () and not parse_ops("off").auto
    assert parse_ops(None).ops == ()
    # Operations run in the canonical order whatever order the spec lists them in.
    assert parse_ops("denoise, deflicker").ops == ("deflicker", "denoise")
    assert parse_ops(["Dust", "scratch"]).ops == ("dust", "scratch")
    with pytest.raises(ValueError, match="unknown restoration operation 'sharpen'"):
        parse_ops("denoise,sharpen")
    with pytest.raises(ValueError, match="cannot be combined"):
        parse_ops("auto,denoise")
    with pytest.raises(ValueError, match="'denoise' has no parameter 'sigma_x'"):
        check_params({"denoise": {"sigma_x": 3}})
    with pytest.raises(ValueError, match="unknown restoration operation 'sharpen'"):
        check_params({"sharpen": {}})


def test_restorer_streams_every_frame_in_order_holding_a_bounded_window() -> None:
    frames = [np.full((8, 8, 3), k, np.uint8) for k in range(12)]
    restorer = Restorer([Deflicker(radius=2, strength=0.0), Dust()])
    out = list(restorer.run(frames))
    assert [int(f[0, 0, 0]) for f in out] == list(range(12))
    assert restorer.latency == 3
    assert all(len(stage.frames) <= 2 * stage.radius + 1 for stage in restorer.stages)


def test_denoise_takes_noise_down_without_smearing_motion() -> None:
    clean = panning_shot(step=3)
    rng = np.random.default_rng(1)
    noisy = [np.clip(f + rng.normal(0, 12, f.shape), 0, 255).astype(np.uint8) for f in clean]
    out = list(Restorer([Denoise()]).run(noisy))
    middle = len(clean) // 2
    assert mse(out[middle], clean[middle]) < mse(noisy[middle], clean[middle]) / 4
    # Motion compensated: edges stay where they are. A plain temporal mean would ghost them.
    plain_mean = np.mean(noisy[middle - 2 : middle + 3], axis=0)
    edges = cv2.Canny(luma(clean[middle]), 80, 160) > 0
    assert mse(out[middle], clean[middle], edges) < mse(plain_mean, clean[middle], edges) / 3


def test_deflicker_steadies_brightness_and_keeps_a_cut() -> None:
    first, second = panning_shot(6, step=1), [255 - f // 2 for f in panning_shot(6, step=1)]
    clean = first + second
    gains = [1.0, 1.12, 0.9, 1.08, 0.93, 1.1] * 2
    flickering = [np.clip(f * g, 0, 255).astype(np.uint8) for f, g in zip(clean, gains, strict=True)]
    out = list(Restorer([Deflicker()]).run(flickering))

    def flicker(frames: list[np.ndarray]) -> float:
        meter = FlickerMeter()
        for frame in frames:
            meter.add(float(luma(frame).mean()))
        return meter.value

    assert flicker(out) < flicker(flickering) / 3
    # Across the cut, the second shot keeps its own brightness: it is not averaged with the first.
    jump = abs(luma(clean[7]).mean() - luma(clean[4]).mean())
    assert abs(luma(out[7]).mean() - luma(clean[7]).mean()) < 0.25 * jump


def test_dust_specks_are_refilled_from_neighbouring_frames() -> None:
    clean = panning_shot(5)
    dusty, mask = add_dust(clean[2], 12, np.random.default_rng(2))
    frames = [*clean[:2], dusty, *clean[3:]]
    out = Dust().apply(frames, 2)
    assert mse(out, clean[2], mask) < mse(dusty, clean[2], mask) / 20
    assert mse(out, clean[2], ~mask) < 4.0  # the rest of the frame is left alone


def test_scratches_are_found_and_filled_from_the_pixels_beside_them() -> None:
    clean = panning_shot(1)[0]
    scratched, bright = add_scratch(clean, 61, 50.0)
    scratched, dark = add_scratch(scratched, 117, -45.0)
    mask = bright | dark
    out = Scratch().apply([scratched], 0)
    assert mse(out, clean, mask) < mse(scratched, clean, mask) / 8
    assert np.array_equal(Scratch().apply([clean], 0), clean)  # a clean picture has no scratches


def test_deblock_smooths_block_edges() -> None:
    clean = cv2.GaussianBlur(panning_shot(1, size=(128, 160))[0], (0, 0), 2.0)
    blocky = jpeg_roundtrip(clean, 15)
    out = Deblock().apply([blocky], 0)
    assert block_grid(luma(out))[0] < block_grid(luma(blocky))[0] - 0.3
    assert mse(out, clean) < mse(blocky, clean)


def test_contrast_and_balance_use_the_fixed_per_shot_parameters() -> None:
    clean = panning_shot(1)[0]
    faded = (clean * 0.5 + 60).astype(np.uint8)
    stretched = Contrast(black=60, white=187.5, clip_limit=0).apply([faded], 0)
    assert mse(stretched, clean) < mse(faded, clean) / 20
    tinted = np.clip(clean * np.array([1.25, 1.0, 0.8]), 0, 255).astype(np.uint8)
    balanced = Balance(gains=[0.8, 1.0, 1.25]).apply([tinted], 0)
    assert mse(balanced, clean) < mse(tinted, clean) / 10


def test_colorize_gives_a_grey_shot_the_reference_colours() -> None:
    reference = skdata.astronaut()[:200, :200]
    grey = cv2.cvtColor(cv2.cvtColor(reference, cv2.COLOR_RGB2GRAY), cv2.COLOR_GRAY2RGB)
    op = Colorize(reference="unused")
    op.set_reference(reference)
    out = op.apply([grey], 0)
    chroma = cv2.cvtColor(out, cv2.COLOR_RGB2YCrCb)[..., 1:].astype(float)
    assert np.abs(chroma - 128).mean() > 4  # it has colour now
    assert np.abs(luma(out).astype(float) - luma(grey)).mean() < 4  # and the same picture


def test_auto_colorizes_a_black_and_white_shot_only_given_a_reference(tmp_path: Path) -> None:
    grey = [cv2.cvtColor(cv2.cvtColor(f, cv2.COLOR_RGB2GRAY), cv2.COLOR_GRAY2RGB) for f in panning_shot(3)]
    measured = measure(grey)
    assert measured["monochrome"]
    without = {d["op"]: d for d in make_plan(measured, parse_ops("auto")).decisions}["colorize"]
    assert not without["apply"] and "no colorize reference" in without["why"]

    reference = tmp_path / "reference.png"
    cv2.imwrite(str(reference), cv2.cvtColor(skdata.astronaut(), cv2.COLOR_RGB2BGR))
    plan = make_plan(measured, parse_ops("auto"), {"colorize": {"reference": str(reference)}})
    assert [step["op"] for step in plan.ops] == ["colorize"]
    out = list(Restorer(plan).run(grey))
    assert np.abs(cv2.cvtColor(out[1], cv2.COLOR_RGB2YCrCb)[..., 1:].astype(float) - 128).mean() > 4
    missing = {"colorize": {"reference": str(tmp_path / "no.png")}}
    with pytest.raises(ValueError, match="cannot be read"):
        Restorer(make_plan(measured, parse_ops("colorize"), missing))


@pytest.mark.parametrize(
    ("damage", "expected", "allowed"),
    [
        ({}, set(), set()),
        ({"flicker": 0.06}, {"deflicker"}, set()),
        ({"noise": 10.0}, {"denoise"}, set()),
        ({"dust": 25}, {"dust"}, set()),
        ({"scratches": 2}, {"scratch"}, set()),
        # JPEG artefacts that change as the camera pans measure as noise, and denoising does reduce them;
        # they are codec damage, which the learned artefact removal repairs too.
        ({"jpeg_quality": 30}, {"deblock"}, {"denoise", "artefacts"}),
    ],
)
def test_auto_applies_what_the_shot_needs_and_says_why(
    damage: dict,
    expected: set[str],
    allowed: set[str],
) -> None:
    frames = list(ArchiveDamage(seed=3, **damage).apply(panning_shot(8, size=(144, 176))))
    plan = make_plan(measure(frames), parse_ops("auto"))
    assert expected <= {step["op"] for step in plan.ops} <= expected | allowed
    decisions = {d["op"]: d for d in plan.decisions}
    assert set(decisions) == set(OPS)
    for name in expected:
        assert decisions[name]["apply"] and any(ch.isdigit() for ch in decisions[name]["why"])
    json.dumps(plan.as_dict())  # the plan goes into the catalog and the manifest as JSON


def test_auto_restoration_improves_damaged_footage() -> None:
    clean = panning_shot(8, size=(144, 176))
    damaged = list(ArchiveDamage(flicker=0.05, dust=20, scratches=1, noise=8.0, seed=4).apply(clean))
    plan = make_plan(measure(damaged), parse_ops("auto"))
    assert {"deflicker", "dust", "scratch", "denoise"} <= {step["op"] for step in plan.ops}
    restored = list(Restorer(plan).run(damaged))
    before = np.mean([mse(d, c) for d, c in zip(damaged, clean, strict=True)])
    after = np.mean([mse(r, c) for r, c in zip(restored, clean, strict=True)])
    assert 10 * np.log10(before / after) > 2.0  # dB


def test_explicit_ops_take_parameters_from_the_spec_over_the_measurement() -> None:
    frames = panning_shot(3)
    plan = make_plan(measure(frames), parse_ops("denoise,contrast"), {"denoise": {"sigma": 7.5}})
    params = {step["op"]: step["params"] for step in plan.ops}
    assert params["denoise"]["sigma"] == 7.5
    assert params["contrast"]["black"] >= 0  # filled from the measurement
    assert plan.mode == "manual"
    assert len(list(Restorer(plan).run(frames))) == 3
