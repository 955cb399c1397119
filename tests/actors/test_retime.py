"""Retiming: frame counts and times at true speed, motion-compensated in-betweens, cuts, memory, bad rates."""

from __future__ import annotations

import math
import weakref
from collections.abc import Iterator
from fractions import Fraction

import cv2
import numpy as np
import pytest
from skimage import data as skdata

from actors.restore.retime import FramePair, Retimer, interpolate


def moving_disc(
    positions: list[float], pan: float = 0.0, size: tuple[int, int] = (288, 300)
) -> list[np.ndarray]:
    """A colour disc cut from one photograph crossing a grey one (which pans by ``pan`` px a frame).

    The disc is textured, as real moving things are (flow cannot follow a flat colour), and the only
    colour in the picture, so a ghost of it (a tint where the truth is grey) is easy to count. The
    frame is about SD size: the restore stage's DIS flow works on a quarter-size pyramid level, so in
    a thumbnail-sized frame it would not see a small disc move at all.
    """
    photo = skdata.camera().astype(np.float32)
    patch = skdata.astronaut()[380 - RADIUS : 380 + RADIUS, 150 - RADIUS : 150 + RADIUS].astype(np.float32)
    height, width = size
    yy, xx = np.mgrid[0:height, 0:width] + 0.5
    frames = []
    for k, x in enumerate(positions):
        left = 150 + pan * k
        start = math.floor(left)
        crop = photo[100 : 100 + height, start : start + width + 1]
        shifted = crop[:, :width] * (1 - (left - start)) + crop[:, 1 : width + 1] * (left - start)
        frame = np.repeat(shifted[..., None], 3, axis=2)
        place = np.array([[1, 0, x - RADIUS], [0, 1, height / 2 - RADIUS]], np.float32)
        sprite = cv2.warpAffine(patch, place, (width, height), flags=cv2.INTER_LINEAR)
        alpha = np.clip(RADIUS - np.hypot(xx - x, yy - height / 2), 0.0, 1.0)[..., None]
        frames.append(np.clip(frame * (1 - alpha) + sprite * alpha + 0.5, 0, 255).astype(np.uint8))
    return frames


RADIUS = 32


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    return float(10 * np.log10(255.0**2 / np.mean((a.astype(np.float64) - b) ** 2)))


def tint(frame: np.ndarray) -> np.ndarray:
    """How far each pixel is from grey (0 on the photograph, large on the disc)."""
    return frame.max(axis=2).astype(int) - frame.min(axis=2)


def disc(frame: np.ndarray) -> np.ndarray:
    return cv2.dilate((tint(frame) > 25).astype(np.uint8), np.ones((5, 5), np.uint8)) > 0


def ghostly(frame: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """Tinted pixels where the true frame is grey: a half-transparent copy of the disc."""
    return (tint(frame) > 12) & ~disc(truth)


def stream(frames: list[np.ndarray], fps: float, origin: float = 0.0) -> list[tuple[np.ndarray, float]]:
    return [(frame, origin + i / fps) for i, frame in enumerate(frames)]


def retime(frames: list[np.ndarray], source: float, target: float, origin: float = 0.0) -> tuple:
    retimer = Retimer(source, target)
    out = list(retimer.run(stream(frames, source, origin)))
    return out, retimer.manifest()


@pytest.mark.parametrize(("source", "target", "frames", "expected"), [(18, 24, 18, 24), (16, 25, 32, 50)])
def test_silent_rates_convert_at_true_speed(source: int, target: int, frames: int, expected: int) -> None:
    clip = moving_disc([60.0 + 4 * k for k in range(frames)], pan=-1.0)
    out, manifest = retime(clip, source, target, origin=10.0)
    assert len(out) == expected
    times = [pts for _, pts in out]
    assert times == pytest.approx([10.0 + k / target for k in range(expected)])
    # Same duration as the source: the film runs at the speed it was shot at.
    assert (
        manifest["duration_out_s"]
        == pytest.approx(manifest["duration_in_s"])
        == pytest.approx(frames / source)
    )
    # Output instants that fall on a source frame show it untouched, those after the last frame
    # hold it, and the others are new frames.
    step = Fraction(source, target)
    for k, (image, _) in enumerate(out):
        position = k * step
        if position.denominator == 1 or position > frames - 1:
            assert image is clip[min(math.floor(position), frames - 1)]
        else:
            assert not any(image is frame for frame in clip)
    between = [k * step for k in range(expected) if (k * step).denominator != 1 and k * step < frames - 1]
    assert manifest["interpolated"] == len(between) > 0
    assert manifest["frames_in"] == frames and manifest["frames_out"] == expected


def test_duration_kept_to_within_one_output_frame_when_counts_do_not_divide() -> None:
    clip = moving_disc([30.0 + 2 * k for k in range(19)])
    out, manifest = retime(clip, 18, 24)
    assert len(out) == 26  # 19 frames at 18 fps last 1.0556 s; 26 at 24 fps last 1.0833 s
    assert 0 <= manifest["duration_out_s"] - manifest["duration_in_s"] < 1 / 24
    assert out[-1][1] < 19 / 18
    # The last instant lies after the last source frame: it is held, not invented.
    assert out[-1][0] is clip[-1] and manifest["held_at_end"] == 1


def test_equal_rates_pass_every_frame_untouched() -> None:
    clip = moving_disc([20.0 + 5 * k for k in range(10)])
    out, manifest = retime(clip, 24, 24, origin=3.5)
    assert len(out) == len(clip)
    assert all(image is frame for (image, _), frame in zip(out, clip, strict=True))
    assert [pts for _, pts in out] == pytest.approx([3.5 + i / 24 for i in range(10)])
    assert manifest["interpolated"] == 0


def test_the_source_rate_not_the_containers_timestamps_spaces_the_frames() -> None:
    """A 16 fps film scanned into a 24 fps file: its timestamps say 24, the spec says 16."""
    clip = moving_disc([20.0 + 3 * k for k in range(16)])
    retimer = Retimer(16, 24)
    out = list(retimer.run(stream(clip, 24.0)))
    assert len(out) == 24
    assert out[-1][1] == pytest.approx(23 / 24)  # one second of film, not the file's 0.67 s


def test_lower_target_interpolates_instead_of_dropping() -> None:
    clip = moving_disc([20.0 + 4 * k for k in range(20)])
    out, manifest = retime(clip, 30, 24)
    assert len(out) == 16
    assert manifest["interpolated"] == 12  # 4 of every 5 output instants fall between source frames
    assert out[4][0] is clip[5]


def test_an_in_between_frame_puts_the_moving_disc_where_the_motion_says() -> None:
    a, truth, b = moving_disc([100.0, 112.0, 124.0], pan=-3.0)
    middle = interpolate(a, b, 0.5)
    blend = ((a.astype(np.uint16) + b + 1) // 2).astype(np.uint8)
    assert psnr(middle, truth) > psnr(blend, truth) + 8
    assert psnr(middle, truth) > 30
    _, xs = np.nonzero(tint(middle) > 25)
    _, true_xs = np.nonzero(tint(truth) > 25)
    # Within 2 px of the truth; a and b have it 12 px either side.
    assert xs.mean() == pytest.approx(true_xs.mean(), abs=2.0)
    # One disc, not two half-transparent ones.
    assert ghostly(middle, truth).sum() < 0.2 * ghostly(blend, truth).sum()


def test_uncovered_background_comes_from_the_frame_that_shows_it() -> None:
    """Behind the disc a strip is revealed, ahead of it one is covered: both must show the photograph.

    The covered strip is the harder one (DIS smears the disc's motion a few pixels over it), so it is
    held to less; neither may carry a tinted copy of the disc as a blend does.
    """
    a, truth, b = moving_disc([100.0, 112.0, 124.0], pan=-3.0)
    middle = FramePair(a, b).at(0.5)
    blend = ((a.astype(np.uint16) + b + 1) // 2).astype(np.uint8)
    uncovered = disc(a) & ~disc(truth)  # visible in b only
    covered = disc(b) & ~disc(truth)  # visible in a only
    for region, share in ((uncovered, 0.4), (covered, 0.7)):
        assert region.sum() > 500
        error = np.abs(middle.astype(int) - truth)[region].mean()
        assert error < share * np.abs(blend.astype(int) - truth)[region].mean()
        assert ghostly(middle, truth)[region].mean() < 0.2
        assert ghostly(blend, truth)[region].mean() > 0.4


@pytest.mark.parametrize("t", [0.25, 0.5, 0.75])
def test_a_cut_is_not_morphed_the_nearer_frame_is_repeated(t: float) -> None:
    a = np.ascontiguousarray(skdata.astronaut()[100:388, 100:400])
    b = np.ascontiguousarray(skdata.coffee()[100:388, 200:500])
    out = interpolate(a, b, t)
    assert out is (a if t <= 0.5 else b)


def test_a_fast_pan_is_not_taken_for_a_cut() -> None:
    a, _, b = moving_disc([100.0, 115.0, 130.0], pan=-10.0)
    assert not FramePair(a, b).is_cut


def test_a_stream_with_a_cut_shows_no_mixed_frame() -> None:
    first = moving_disc([20.0 + 3 * k for k in range(9)])
    second = [
        np.ascontiguousarray(np.roll(skdata.coffee()[100:388, 200:500], 4 * k, axis=1)) for k in range(9)
    ]
    out, manifest = retime(first + second, 18, 24)
    assert manifest["cuts"] == 1 and manifest["repeated_at_cuts"] >= 1
    boundary = [image for image, pts in out if 8 / 18 < pts < 9 / 18]
    assert boundary and all(image is first[-1] or image is second[0] for image in boundary)


def test_memory_holds_two_source_frames_however_long_the_input() -> None:
    alive: set[int] = set()
    made = 0
    most_alive = 0

    def frames() -> Iterator[tuple[np.ndarray, float]]:
        nonlocal made
        base = moving_disc([30.0, 34.0], size=(48, 64))
        for i in range(400):
            frame = base[i % 2].copy()
            alive.add(i)
            weakref.finalize(frame, alive.discard, i)
            made += 1
            yield frame, i / 18

    retimer = Retimer(18, 24)
    count = 0
    for image, _ in retimer.run(frames()):
        count += 1
        most_alive = max(most_alive, len(alive))
        del image
        if count == 1:
            assert made == 2  # the input is read as the output is written, not all at first
    assert count == math.ceil(400 * 24 / 18)
    assert most_alive <= 3


@pytest.mark.parametrize(
    ("source", "target", "message"),
    [
        (0, 24, "source_fps must be between 1 and 120 frames per second, got 0"),
        (-16, 24, "source_fps must be between 1 and 120 .* got -16"),
        (16, 1000, "target_fps must be between 1 and 120 .* got 1000"),
        (float("nan"), 24, "source_fps must be a number of frames per second, got nan"),
        (16, float("inf"), "target_fps must be a number .* got inf"),
        ("16", 24, "source_fps must be a number .* got '16'"),
        (True, 24, "source_fps must be a number .* got True"),
    ],
)
def test_bad_rates_are_refused_with_the_value_named(source: object, target: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Retimer(source, target)  # type: ignore[arg-type]


def test_ntsc_rates_are_exact() -> None:
    retimer = Retimer(24000 / 1001, Fraction(30000, 1001))
    assert retimer.source_fps == Fraction(24000, 1001)
    assert retimer.manifest()["source_fps"] == "24000/1001"


def test_bad_frames_and_times_are_refused_with_what_was_wrong() -> None:
    clip = moving_disc([20.0, 24.0])
    retimer = Retimer(18, 24)
    retimer.push(clip[0], 0.0)
    with pytest.raises(ValueError, match=r"frame 1 has pts 0.0 s, not after the frame before it \(0.0 s\)"):
        retimer.push(clip[1], 0.0)
    with pytest.raises(
        ValueError, match=r"frame 1 is \(144, 150, 3\), the stream's frames are \(288, 300, 3\)"
    ):
        retimer.push(clip[1][::2, ::2].copy(), 0.1)
    with pytest.raises(ValueError, match=r"frame must be a uint8 RGB frame .* got float32"):
        retimer.push(clip[1].astype(np.float32), 0.1)
    with pytest.raises(ValueError, match="pts_seconds must be a finite number of seconds, got nan"):
        retimer.push(clip[1], float("nan"))
    retimer.flush()
    with pytest.raises(RuntimeError, match="flushed"):
        retimer.push(clip[1], 1.0)
    with pytest.raises(ValueError, match=r"phase must be strictly between 0 and 1, got 1\.5"):
        FramePair(clip[0], clip[1]).at(1.5)
