"""Manipulation signals: cues a pretrained detector is not needed for, and the detector trained on them,
judged on people it never saw."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.metrics import roc_auc_score

from actors.models import ModelLoadError
from actors.restore.damage import jpeg_roundtrip
from actors.upscale import Upscaler
from jobs.audit import synth
from jobs.audit.manipulation import (
    DEFAULT_WEIGHTS,
    FEATURES,
    HELD_OUT_FACES,
    ManipulationDetector,
    face_crop,
    face_features,
    make_samples,
    radial_spectrum,
    train_manipulation_detector,
)


@pytest.fixture(scope="module")
def detector() -> ManipulationDetector:
    return ManipulationDetector.load()


def test_features_of_any_crop() -> None:
    for crop in (synth.astronaut_face(), synth.lfw_faces()[0], np.zeros((20, 30, 3), np.uint8)):
        features = face_features(crop)
        assert features.shape == (len(FEATURES),) and np.isfinite(features).all()


def test_spectrum_sees_upsampling_and_blur() -> None:
    """A x2 nearest-neighbour upsample repeats the spectrum; a blur empties its high end."""
    rng = np.random.default_rng(0)
    noise = rng.normal(128, 30, (96, 96)).astype(np.float32)
    blocky = np.kron(rng.normal(128, 30, (48, 48)), np.ones((2, 2))).astype(np.float32)
    import cv2

    blurred = cv2.GaussianBlur(noise, (0, 0), 2.0)
    flat, up, soft = radial_spectrum(noise), radial_spectrum(blocky), radial_spectrum(blurred)
    assert np.ptp(flat) < 1.5, "white noise has a flat spectrum"
    assert up[-1] - up[0] < flat[-1] - flat[0] - 2
    assert soft[-1] - soft[0] < -8


def test_held_out_people_are_told_apart(detector: ManipulationDetector) -> None:
    """Fresh manipulations of people never trained on (another seed than training) rank above real faces."""
    torch.set_num_threads(1)
    faces = synth.lfw_faces()
    people = [faces[i] for i in HELD_OUT_FACES][:16]
    features, labels, kinds = make_samples(people, 3, np.random.default_rng(99), Upscaler(2, device="cpu"))
    scores = detector.score_features(features)
    assert roc_auc_score(labels, scores) > 0.75
    generative = (kinds == "generative") | (kinds == "real")
    assert roc_auc_score(labels[generative], scores[generative]) > 0.85


def test_the_colour_portrait_held_out_real_and_pasted(detector: ManipulationDetector) -> None:
    """The astronaut (never trained on) as shot, with another face pasted in, and with a re-generated face."""
    real, swapped, regenerated = [], [], []
    for seed in range(6):
        rng = np.random.default_rng(seed)
        image, box = synth.face_canvas(synth.astronaut_face(), side=120, canvas=(200, 200))
        source = synth.degrade(image, rng)
        real.append(detector.score(face_crop(source, box)))
        pasted = synth.swap_face(source, box, synth.lfw_faces()[12 + seed], rng)
        swapped.append(detector.score(face_crop(jpeg_roundtrip(pasted, 90), box)))
        made = synth.generative_upscale(source, box, rng)
        regenerated.append(detector.score(face_crop(jpeg_roundtrip(made, 90), box)))
    assert max(real) < detector.threshold < np.mean(swapped), (real, swapped)
    assert np.mean(regenerated) > np.mean(real) + 0.3, (real, regenerated)


def test_committed_detector_carries_its_recipe_and_honest_figures() -> None:
    trained = json.loads(DEFAULT_WEIGHTS.read_text())
    assert DEFAULT_WEIGHTS.stat().st_size < 200_000
    held_out = trained["held_out"]
    assert set(held_out["roc_auc"]) == {"all", "swap", "blend", "generative"}
    assert 0.8 < held_out["roc_auc"]["all"] < 1.0, "the figure the report quotes"
    assert held_out["at_threshold"]["false_positive_rate"] < 0.15
    assert "astronaut" in trained["recipe"]["held_out"]


def test_bad_weights_fail_at_load(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match="manipulation"):
        ManipulationDetector.load(tmp_path / "missing.json")
    stale = json.loads(DEFAULT_WEIGHTS.read_text())
    stale["model"]["features"] = stale["model"]["features"][:-1]
    (tmp_path / "stale.json").write_text(json.dumps(stale))
    with pytest.raises(ModelLoadError, match="retrain"):
        ManipulationDetector.load(tmp_path / "stale.json")


@pytest.mark.slow
def test_training_recipe_runs_end_to_end(tmp_path: Path) -> None:
    result = train_manipulation_detector(tmp_path / "detector.json", seed=1, per_person=1)
    loaded = ManipulationDetector.load(tmp_path / "detector.json")
    assert loaded.threshold == pytest.approx(result["model"]["threshold"])
    assert 0.5 < result["held_out"]["roc_auc"]["all"] <= 1.0
