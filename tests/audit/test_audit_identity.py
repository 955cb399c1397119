"""Identity drift: a face swapped into a remaster is caught, an honest restoration of the same clip is not."""

from __future__ import annotations

from pathlib import Path

import pytest
from audit_helpers import face_clip, remaster, rewrite_master, swapper

from actors.faces import FaceAnalyzer
from jobs.audit.identity import (
    DRIFT_THRESHOLD,
    calibrate_threshold,
    calibration_distances,
    compare_outputs,
    drift,
    match_faces,
    sample_frames,
)


@pytest.fixture(scope="module")
def analyzer() -> FaceAnalyzer:
    return FaceAnalyzer(device="cpu", threads=1)


@pytest.fixture(scope="module")
def outputs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The astronaut clip, its honest remaster (denoise + x2 network), and that master with a swapped face."""
    folder = tmp_path_factory.mktemp("identity")
    source, boxes = face_clip(folder)
    master, access = remaster(source, folder / "out")
    swapped = str(folder / "swapped.mkv")
    rewrite_master(master["output_uri"], swapped, swapper(boxes, scale=2))
    return {
        "source": str(source),
        "master": master["output_uri"],
        "access": access["output_uri"],
        "swapped": swapped,
    }


def test_swapped_face_is_flagged_and_honest_restoration_is_not(
    outputs: dict[str, str], analyzer: FaceAnalyzer
) -> None:
    frames = [1, 5, 8]
    for kind in ("master", "access"):
        honest = drift(compare_outputs(outputs["source"], outputs[kind], analyzer, frames))
        assert honest["detail"]["faces_compared"] == 3, honest["detail"]
        assert not honest["flagged"] and honest["value"] < DRIFT_THRESHOLD - 0.1, (kind, honest["value"])
    swapped = drift(compare_outputs(outputs["source"], outputs["swapped"], analyzer, frames))
    assert swapped["detail"]["faces_compared"] == 3
    assert swapped["flagged"] and swapped["value"] > DRIFT_THRESHOLD + 0.2, swapped["value"]
    assert min(swapped["detail"]["distances"]) > DRIFT_THRESHOLD, "every sampled frame shows the swap"
    worst = swapped["worst"]
    assert worst.output_crop.shape[0] > 1.5 * worst.source_crop.shape[0], "output crops are at output size"


def test_faces_pair_by_place() -> None:
    source = [{"box": [10, 10, 50, 50]}, {"box": [100, 20, 140, 60]}]
    output = [{"box": [100, 20, 140, 60]}, {"box": [11, 9, 49, 51]}, {"box": [200, 150, 210, 160]}]
    assert match_faces(source, output) == [(0, 1), (1, 0)]
    assert match_faces(source, [{"box": [30, 30, 70, 70]}]) == [], "a face half-way off is another face"


def test_sampled_frames_prefer_keyframes() -> None:
    assert sample_frames(100, 3, preferred=[90, 10, 50, 70, 500]) == [10, 50, 70]
    assert sample_frames(100, 4) == [12, 37, 62, 87]
    assert sample_frames(100, 3, preferred=[5]) == [5, 25, 75]
    assert sample_frames(0, 3) == []


def test_threshold_is_placed_in_the_gap_and_error_rates_count_pairs() -> None:
    clean = calibrate_threshold([0.05, 0.1, 0.15], [0.5, 0.7, 0.9])
    assert clean["threshold"] == pytest.approx(0.325)
    assert clean["false_accept_rate"] == clean["false_reject_rate"] == 0.0
    overlap = calibrate_threshold([0.05, 0.1, 0.6], [0.4, 0.7, 0.9, 1.0])
    assert overlap["false_accept_rate"] + overlap["false_reject_rate"] > 0
    assert overlap["pairs"] == {"same": 3, "different": 4}
    with pytest.raises(ValueError):
        calibrate_threshold([], [0.5])


@pytest.mark.slow
def test_calibration_pairs_separate_at_the_committed_threshold(analyzer: FaceAnalyzer) -> None:
    """A fresh calibration on people the committed one did not use agrees with the constant."""
    from actors.upscale import Upscaler

    pairs = calibration_distances(
        analyzer, Upscaler(2, device="cpu"), faces=range(60, 66), astronaut=False, swaps_per_face=1, seed=7
    )
    assert len(pairs["same"]) >= 8 and len(pairs["different"]) >= 4
    assert max(pairs["same"]) < DRIFT_THRESHOLD < min(pairs["different"]), pairs


def test_output_of_other_size_is_compared_in_its_own_pixels(tmp_path: Path, analyzer: FaceAnalyzer) -> None:
    """An unscaled remaster (restore off) of the same clip: identity all but unchanged."""
    source, _ = face_clip(tmp_path, frames=4)
    master, _ = remaster(source, tmp_path / "out", restore="off", upscale=1)
    found = drift(compare_outputs(str(source), master["output_uri"], analyzer, [0, 3]))
    assert found["detail"]["faces_compared"] == 2 and found["value"] < 0.1
