"""Perceptual quality (PIQE): a clean keyframe scores better than the same one blurred, noised or
crushed by JPEG, the same keyframe always scores the same, and the scores reach the catalog."""

from __future__ import annotations

import cv2
import numpy as np
import pyarrow as pa
import pytest
from keyframe_helpers import BAD_KEYFRAMES, as_keyframe, jpeg, keyframe_batch, still

from actors.keyframes import KeyframeSuite
from actors.phash import PerceptualHasher
from actors.quality import QUALITY, QualityScorer, piqe
from actors.stage import registry
from catalog.iceberg import append, open_catalog, read
from catalog.schema import SCORES
from catalog.settings import Settings
from jobs.commit import commit_tables
from jobs.rows import catalog_rows
from jobs.spec import JobSpec, SpecError, default_spec, parse_spec

PHOTOS = ("coffee", "chelsea", "rocket")


def _decoded(data: bytes) -> np.ndarray:
    return cv2.cvtColor(cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


def _keyframe(name: str) -> np.ndarray:
    """A photo as the segment stage hands it on (longer side 384, JPEG 85), decoded."""
    return _decoded(as_keyframe(still(name)))


def _blurred(image: np.ndarray) -> np.ndarray:
    return cv2.GaussianBlur(image, (0, 0), 2)


def _noised(image: np.ndarray) -> np.ndarray:
    grain = np.random.default_rng(0).normal(0, 15, image.shape)
    return np.clip(image + grain, 0, 255).astype(np.uint8)


def _crushed(image: np.ndarray) -> np.ndarray:
    return _decoded(jpeg(image, 10))


def _scores(images: list[np.ndarray | bytes | None], **params: int) -> list[float | None]:
    """The stage's scores for these keyframes (images are stored as the segment stage would)."""
    keyframes = [as_keyframe(i) if isinstance(i, np.ndarray) else i for i in images]
    return QualityScorer(**params)(keyframe_batch(keyframes)).column("quality_score").to_pylist()


@pytest.mark.parametrize("name", PHOTOS)
def test_a_clean_keyframe_scores_better_than_blurred_noised_or_crushed(name: str) -> None:
    clean = _keyframe(name)
    score, blurred, noised, crushed = _scores([clean, _blurred(clean), _noised(clean), _crushed(clean)])
    assert score is not None and 0 <= score < 45, score  # lower is better
    assert blurred > score + 25, (score, blurred)  # blur is what PIQE sees most plainly
    assert noised > score + 10, (score, noised)
    assert crushed > score + 20, (score, crushed)


def test_a_frame_without_detail_scores_worst() -> None:
    black, grey = np.zeros((216, 384, 3), np.uint8), np.full((216, 384, 3), 128, np.uint8)
    assert _scores([black, grey]) == [100.0, 100.0]


def test_the_score_is_deterministic_and_independent_of_the_batch() -> None:
    frames = [_keyframe(name) for name in PHOTOS]
    first = _scores(frames)
    assert _scores(frames) == first
    assert _scores(frames[::-1]) == first[::-1]
    assert [_scores([frame])[0] for frame in frames] == first
    assert len(set(first)) == len(first)  # different pictures, different scores


def test_no_keyframe_gives_nulls() -> None:
    out = QualityScorer()(keyframe_batch([*BAD_KEYFRAMES, _keyframe("coffee")]))
    assert out.schema.field("quality_score").type == pa.float32()
    assert out.column("quality_score").to_pylist()[:2] == [None, None]
    assert out.column("quality_model").to_pylist() == [None, None, "piqe@384"]
    assert QualityScorer()(out).schema == out.schema  # run twice: its columns replaced, not doubled


def test_a_larger_keyframe_is_scored_at_the_capped_scale() -> None:
    """PIQE depends on scale: with `max_side`, a 768 px keyframe scores like its 384 px self."""
    small = _keyframe("chelsea")
    large = cv2.resize(small, None, fx=2, fy=2, interpolation=cv2.INTER_CUBIC)
    assert abs(piqe(large, 384) - piqe(small)) < 5  # 31.8 and 28.3
    assert abs(piqe(large) - piqe(small)) > 15  # uncapped, the same picture scores 57
    out = QualityScorer(max_side=768)(keyframe_batch([jpeg(large, 95)]))
    assert out.column("quality_model").to_pylist() == ["piqe@768"]


def test_grey_and_rgb_pictures_score_alike() -> None:
    camera = _keyframe("camera")  # a black-and-white photo, decoded as RGB
    assert piqe(camera[..., 0]) == pytest.approx(piqe(camera), abs=0.5)


def test_the_suite_runs_it_beside_other_keyframe_models() -> None:
    batch = keyframe_batch([still("rocket"), None])
    out = KeyframeSuite({"phash": PerceptualHasher(), "quality": QualityScorer()})(batch)
    assert out.schema.names == ["shot_id", "keyframe_jpeg", "phash", *QUALITY.names]
    assert out.column("quality_score").to_pylist()[1] is None


def _spec(quality: dict) -> JobSpec:
    return parse_spec({"name": "n", "source": {"uri": "."}, "stages": {"keyframes": {"quality": quality}}})


def test_the_spec_takes_its_parameters_and_names_a_bad_one() -> None:
    assert registry()["quality"] is QualityScorer
    assert "quality" in [e.stage.name for e in default_spec(".").enabled()]
    assert default_spec(".").stages.keyframes.quality.max_side == 384
    spec = _spec({"max_side": 512})
    params = {e.stage.name: e.params for e in spec.enabled()}
    assert params["quality"].max_side == 512
    assert spec.pipeline_version() != default_spec(".").pipeline_version()  # a new scale re-runs
    for bad in (8, 100_000, "big"):
        with pytest.raises(SpecError, match=r"stages\.keyframes\.quality\.max_side"):
            _spec({"max_side": bad})
    with pytest.raises(SpecError, match=r"stages\.keyframes\.quality\.side: unknown field"):
        _spec({"side": 512})
    assert "quality" not in [e.stage.name for e in _spec({"enabled": False}).enabled()]


def test_its_rows_are_scores_named_by_metric() -> None:
    rows = pa.table(
        {
            "shot_id": ["s1", "s2", None],  # the third: a failed asset's row, which has no shot
            "asset_id": ["a1", "a1", "a2"],
            "quality_score": pa.array([31.25, None, None], pa.float32()),
            "quality_model": ["piqe@384", None, None],
        }
    )
    scores = QualityScorer.catalog_rows(rows)["scores"]
    assert scores.to_pylist() == [
        {"shot_id": "s1", "asset_id": "a1", "metric": "piqe", "value": 31.25, "model": "piqe@384"}
    ]
    tables = catalog_rows(rows, [QualityScorer], run_id="r1", pipeline_version="p1")
    assert set(tables) == {"scores"} and tables["scores"].schema == SCORES
    assert tables["scores"].column("run_id").to_pylist() == ["r1"]


def _commit(settings: Settings, run_id: str, shots: dict[str, tuple[str, float | None]]) -> None:
    """Commit a run of the stage alone over these shots (shot id: asset id, score)."""
    rows = pa.table(
        {
            "shot_id": list(shots),
            "asset_id": [asset for asset, _ in shots.values()],
            "quality_score": pa.array([score for _, score in shots.values()], pa.float32()),
            "quality_model": [None if score is None else "piqe@384" for _, score in shots.values()],
        }
    )
    tables = catalog_rows(rows, [QualityScorer], run_id=run_id, pipeline_version="p1")
    assets = {asset for asset, _ in shots.values()}
    commit_tables(open_catalog(settings), tables, [QualityScorer], assets, run_id=run_id)


def test_a_rerun_replaces_its_own_scores_and_no_others(settings: Settings) -> None:
    other = {"shot_id": "s1", "asset_id": "a1", "metric": "sharpness", "value": 0.5, "model": "x"}
    stamp = {"run_id": "r0", "pipeline_version": "p0"}
    append(open_catalog(settings), "scores", pa.Table.from_pylist([{**other, **stamp}], SCORES), run_id="r0")
    _commit(settings, "r1", {"s1": ("a1", 30.0), "s2": ("a1", 40.0), "s3": ("a2", 50.0)})
    _commit(settings, "r2", {"s1": ("a1", 31.0), "s2": ("a1", None)})  # a1 again; s2 lost its keyframe
    rows = read(open_catalog(settings), "scores").to_pylist()
    found = sorted((r["shot_id"], r["metric"], r["value"], r["run_id"]) for r in rows)
    assert found == [("s1", "piqe", 31.0, "r2"), ("s1", "sharpness", 0.5, "r0"), ("s3", "piqe", 50.0, "r1")]
