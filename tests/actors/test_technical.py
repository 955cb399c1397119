"""Technical tags: the black-and-white, soft, grainy, dark and low-resolution shots are findable."""

from __future__ import annotations

import cv2
import numpy as np
import pyarrow as pa
import pytest
from keyframe_helpers import BAD_KEYFRAMES, clip_frame, keyframe_batch, still

from actors.technical import TechnicalTagger, resolution_class, technical_tags
from catalog.schema import TECHNICAL


@pytest.fixture(scope="module")
def tagger() -> TechnicalTagger:
    return TechnicalTagger()


def _labels(tags: list[dict]) -> dict[str, float]:
    assert all(tag["box"] is None and 0.0 <= tag["score"] <= 1.0 for tag in tags), tags
    return {tag["label"]: tag["score"] for tag in tags}


def _run(tagger: TechnicalTagger, images: list, **columns) -> list[dict[str, float] | None]:
    out = tagger(keyframe_batch(images, **columns))
    return [None if tags is None else _labels(tags) for tags in out.column("technical").to_pylist()]


def test_monochrome_and_colour(tagger: TechnicalTagger) -> None:
    camera = still("camera")
    sepia = np.clip(camera[..., :1] * np.array([1.0, 0.85, 0.62]), 0, 255).astype(np.uint8)
    camera_tags, sepia_tags, coffee_tags, bunny_tags = _run(
        tagger, [camera, sepia, still("coffee"), clip_frame("bigbuckbunny.mp4", 60)]
    )
    assert camera_tags["monochrome"] == 1.0 and "colour" not in camera_tags
    assert sepia_tags["monochrome"] >= 0.9, "a tinted black-and-white film is still monochrome"
    assert coffee_tags["colour"] == 1.0 and bunny_tags["colour"] == 1.0


def test_blurry_sharp_grainy_clean(tagger: TechnicalTagger) -> None:
    astronaut = still("astronaut")
    # Grain as it shows in a keyframe: added at keyframe size (384 px), then JPEG-compressed.
    small = cv2.resize(astronaut, (384, 384), interpolation=cv2.INTER_AREA)
    noisy = np.clip(small + np.random.default_rng(7).normal(0, 14, small.shape), 0, 255).astype(np.uint8)
    sharp, blurred, grainy = _run(tagger, [astronaut, cv2.GaussianBlur(astronaut, (0, 0), 3), noisy])
    assert sharp["sharp"] >= 0.9 and sharp["clean"] >= 0.9
    assert blurred["blurry"] >= 0.9 and "sharp" not in blurred
    assert grainy["grainy"] >= 0.9 and "clean" not in grainy


def test_exposure_and_contrast(tagger: TechnicalTagger) -> None:
    coffee = still("coffee")
    dark, washed, normal = _run(
        tagger, [(coffee * 0.2).astype(np.uint8), (coffee * 0.2 + 205).astype(np.uint8), coffee]
    )
    assert dark["underexposed"] == 1.0 and dark["low contrast"] >= 0.9
    assert washed["overexposed"] >= 0.9 and washed["low contrast"] == 1.0
    assert not {"underexposed", "overexposed", "low contrast"} & set(normal)


def test_black_frame_is_blank_and_missing_keyframes_are_null(tagger: TechnicalTagger) -> None:
    black, missing, corrupt = _run(tagger, [np.zeros((360, 640, 3), np.uint8), *BAD_KEYFRAMES])
    assert black == {"blank": 1.0}
    assert missing is None and corrupt is None


def test_shot_columns_win_where_present(tagger: TechnicalTagger) -> None:
    coffee = still("coffee")
    rows = _run(
        tagger,
        [coffee, coffee, coffee, coffee],
        width=pa.array([720, 1920, 3840, None], pa.int32()),
        height=pa.array([576, 800, 2160, None], pa.int32()),
        is_monochrome=[True, None, False, None],
        brightness=pa.array([20.0, None, None, None], pa.float32()),
        is_blank=[False, None, True, None],
    )
    assert rows[0]["resolution:sd"] == 1.0 and rows[0]["monochrome"] == 1.0 and rows[0]["underexposed"] == 1.0
    assert rows[1]["resolution:fhd"] == 1.0 and rows[1]["colour"] == 1.0, (
        "null columns fall back to the image"
    )
    assert rows[2] == {"resolution:uhd": 1.0, "blank": 1.0}
    assert not any(label.startswith("resolution:") for label in rows[3]), "no asset size, no resolution tag"


@pytest.mark.parametrize(
    ("width", "height", "expected"),
    [
        (640, 272, "sd"),
        (720, 576, "sd"),
        (1280, 720, "hd"),
        (1440, 1080, "fhd"),
        (1920, 800, "fhd"),
        (1080, 1920, "fhd"),
        (3840, 1600, "uhd"),
        (4096, 2160, "uhd"),
    ],
)
def test_resolution_classes(width: int, height: int, expected: str) -> None:
    assert resolution_class(width, height) == expected


def test_schema_and_tiny_images(tagger: TechnicalTagger) -> None:
    out = tagger(keyframe_batch([still("chelsea")]))
    assert out.schema.field("technical").type == TECHNICAL.field("technical").type
    assert tagger(out).schema == out.schema
    assert tagger(keyframe_batch([])).num_rows == 0
    assert technical_tags(np.full((2, 2, 3), 90, np.uint8)) == [{"label": "blank", "score": 1.0, "box": None}]
    assert technical_tags(np.random.default_rng(1).integers(0, 255, (3, 5, 3), dtype=np.uint8))
