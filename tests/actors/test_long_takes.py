"""Long takes: a shot whose picture changes gets a keyframe per picture, each described and
kept; a static take, however long, stays one keyframe."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pyarrow as pa
import pytest

from actors.keyframe_choice import KeyframeCandidate, KeyframePicker
from actors.segment import Segmenter
from catalog.rows import best_per_label, shot_rows, tag_rows, vector_rows
from tests.actors.test_segment import FPS, W, decode_jpeg, ref, table, texture, write_video

SECONDS = 36


def pan_across(first: int, second: int, seconds: float) -> list[np.ndarray]:
    """A steady pan from one scene to another (news rushes): no cut anywhere, but the picture
    at the end shares nothing with the picture at the start."""
    n = round(seconds * FPS)
    step = max(1, (2 * W) // n) if n < 2 * W else 1
    canvas = np.concatenate(
        [texture(first, W + n * step // 2 + 1), texture(second, W + n * step // 2 + 1)], 1
    )
    travel = canvas.shape[1] - W
    return [canvas[:, round(i * travel / (n - 1)) : round(i * travel / (n - 1)) + W].copy() for i in range(n)]


def static(seed: int, seconds: float) -> list[np.ndarray]:
    """An interview's locked-off camera: one picture, a little sensor noise on each frame."""
    rng = np.random.default_rng(seed)
    still = texture(seed, W).astype(np.int16)
    return [
        np.clip(still + rng.normal(0, 2, still.shape), 0, 255).astype(np.uint8)
        for _ in range(round(seconds * FPS))
    ]


@pytest.fixture(scope="module")
def segmented(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[list[dict], Path]]:
    media = tmp_path_factory.mktemp("long-takes")
    found = {}
    for name, frames in {
        "pan": pan_across(11, 12, SECONDS),
        "static": static(13, SECONDS),
        "short-pan": pan_across(14, 15, 10),
    }.items():
        path = media / f"{name}.mp4"
        write_video(path, frames)
        root = media / f"{name}-keyframes"
        rows = Segmenter(keyframe_root=str(root))(table(ref(path, name[:2] * 32))).to_pylist()
        found[name] = (rows, root)
    return found


def test_a_take_that_pans_to_another_scene_gets_a_keyframe_of_each(segmented: dict) -> None:
    rows, _ = segmented["pan"]
    assert len({r["shot_id"] for r in rows}) == 1, "a steady pan is one shot"
    assert [r["keyframe_index"] for r in rows] == list(range(len(rows))) and 2 <= len(rows) <= 4
    times = [r["keyframe_s"] for r in rows]
    assert times[0] is not None and all(0 <= t <= SECONDS for t in times)
    spread = sorted(times)
    assert spread[-1] - spread[0] >= 10, f"the keyframes are of different moments, not {times}"
    pictures = [cv2.resize(decode_jpeg(r["keyframe_jpeg"]), (64, 36)).astype(np.float32) for r in rows]
    first, last = (
        pictures[times.index(spread[0])],
        pictures[times.index(spread[-1])],
    )
    assert float(np.abs(first - last).mean()) > 20, "the first and last keyframes show different scenes"
    uris = [r["keyframe_uri"] for r in rows]
    assert len(set(uris)) == len(rows) and all(Path(u).is_file() for u in uris)
    assert uris[0].endswith(f"{rows[0]['shot_id']}.jpg"), "the shot's own keyframe keeps its name"


def test_a_static_take_stays_one_keyframe(segmented: dict) -> None:
    rows, _ = segmented["static"]
    assert len(rows) == 1 and rows[0]["keyframe_index"] == 0
    assert rows[0]["end_s"] - rows[0]["start_s"] >= 30


def test_a_short_shot_that_changes_keeps_one_keyframe(segmented: dict) -> None:
    rows, _ = segmented["short-pan"]
    assert len(rows) == 1, "shorter than long_take_s: one keyframe, as before"


def test_one_keyframe_per_shot_when_long_takes_are_turned_off(tmp_path: Path) -> None:
    path = tmp_path / "pan.mp4"
    write_video(path, pan_across(16, 17, 24))
    rows = Segmenter(long_take_s=0)(table(ref(path))).to_pylist()
    assert len(rows) == 1


def test_a_long_take_is_one_shot_row_one_keyframe_row_each_and_its_tags_once(segmented: dict) -> None:
    rows, _ = segmented["pan"]
    described = pa.Table.from_pylist(
        [
            {
                **{
                    k: r[k] for k in ("shot_id", "asset_id", "keyframe_index", "keyframe_frame", "keyframe_s")
                },
                "keyframe_uri": r["keyframe_uri"],
                "objects": [{"label": "person", "score": 0.5 + 0.1 * r["keyframe_index"], "box": None}],
                "objects_model": "m",
                "vector": [float(r["keyframe_index"])] * 4,
                "vector_model": "m",
            }
            for r in rows
        ]
    )
    assert shot_rows(described).num_rows == 1
    tables = Segmenter.catalog_rows(
        pa.Table.from_pylist([{k: v for k, v in r.items() if k != "keyframe_jpeg"} for r in rows])
    )
    assert tables["shots"].num_rows == 1 and tables["keyframes"].num_rows == len(rows)
    assert tables["keyframes"]["keyframe_index"].to_pylist() == list(range(len(rows)))
    tags = tag_rows(described, "objects", "object", "objects_model")
    assert tags.num_rows == 1, "a person on every keyframe is one tag of the shot"
    assert tags["score"].to_pylist()[0] == pytest.approx(0.5 + 0.1 * (len(rows) - 1))
    vectors = vector_rows(described, "vector", "visual", "vector_model")
    assert vectors["keyframe_index"].to_pylist() == list(range(len(rows))), "every keyframe is searchable"


def test_further_keyframes_are_the_most_different_candidates_apart_in_time() -> None:
    picker = KeyframePicker(capacity=8)
    pictures = {0: 0, 100: 0, 200: 1, 300: 1, 400: 2, 500: 2}  # three scenes, two candidates each
    units = np.eye(3, dtype=np.float32)
    candidates = []
    for idx, scene in pictures.items():
        cand = KeyframeCandidate(idx, 1.0 + idx / 1000, None, units[scene], units[scene])  # type: ignore[arg-type]
        candidates.append(cand)
        picker.add(cand)
    chosen = candidates[2]  # scene 1
    extra = picker.further(chosen, most=3, least_change=0.3, least_gap=50)
    assert sorted({pictures[c.idx] for c in extra}) == [0, 2], "one keyframe per other scene, not two of one"
    assert [c.idx for c in extra] == sorted(c.idx for c in extra)
    assert picker.further(chosen, most=3, least_change=0.3, least_gap=1000) == []


def test_best_per_label_leaves_distinct_tags_alone() -> None:
    tags = pa.table(
        {"shot_id": ["a", "a"], "kind": ["object", "object"], "label": ["cat", "dog"], "score": [0.2, 0.3]}
    )
    assert best_per_label(tags).equals(tags)
