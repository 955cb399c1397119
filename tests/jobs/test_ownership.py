"""Each stage owns its rows: a run of some stages rewrites what those stages own and leaves
everything else in the catalog exactly as an earlier run wrote it."""

from __future__ import annotations

from pathlib import Path

import pytest

from catalog.iceberg import open_catalog
from catalog.query import sql
from catalog.settings import Settings
from jobs.run import run_job
from jobs.spec import only_stages, parse_spec

pytestmark = pytest.mark.slow


def rows(settings: Settings, query: str) -> list[dict]:
    return sql(open_catalog(settings), query).to_pylist()


@pytest.fixture
def described(ray_session, home: Path, tmp_path: Path, clip_writer) -> dict:
    """Two clips described by segment, the visual model and the technical tagger (not phash)."""
    source = tmp_path / "tapes"
    source.mkdir()
    for i in range(2):
        clip_writer(source / f"tape{i}.mp4", seconds=1.2, size=(160, 96), cuts=1, seed=40 + i)
    stages = only_stages(segment={}, visual={}, technical={})
    summary = run_job(parse_spec({"name": "describe", "source": {"uri": str(source)}, "stages": stages}))
    return {"source": source, "summary": summary, "settings": Settings()}


SHOTS = "SELECT shot_id, start_frame, keyframe_uri, phash, run_id FROM shots ORDER BY shot_id"
TAGS = "SELECT shot_id, kind, label, run_id FROM tags ORDER BY shot_id, kind, label"


def test_a_remaster_only_run_leaves_the_description_alone(described: dict, tmp_path: Path) -> None:
    settings = described["settings"]
    shots, tags = rows(settings, SHOTS), rows(settings, TAGS)
    assets = rows(settings, "SELECT asset_id, run_id, shot_count FROM assets ORDER BY asset_id")
    stages = only_stages(remaster={"restore": "off", "upscale": 1, "out": str(tmp_path / "out")})
    spec = parse_spec({"name": "remaster", "source": {"uri": str(described["source"])}, "stages": stages})
    summary = run_job(spec)
    assert summary["assets"] == {"ok": 2, "damaged": 0, "failed": 0, "skipped": 0, "resumed": 0}
    assert "segment (busy)" not in summary["seconds"]  # nothing was decoded to describe it again
    assert rows(settings, SHOTS) == shots and rows(settings, TAGS) == tags
    assert rows(settings, "SELECT asset_id, run_id, shot_count FROM assets ORDER BY asset_id") == assets
    outputs = rows(settings, "SELECT kind, status, run_id FROM remasters ORDER BY kind")
    assert [(o["kind"], o["status"]) for o in outputs] == [("access", "ok")] * 2 + [("master", "ok")] * 2
    assert {o["run_id"] for o in outputs} == {summary["run_id"]}


def test_one_model_run_fills_its_columns_and_rewrites_only_its_rows(described: dict) -> None:
    settings = described["settings"]
    before_shots, before_tags = rows(settings, SHOTS), rows(settings, TAGS)
    assert before_shots and all(s["phash"] is None for s in before_shots)
    # phash alone: the shots come from the catalog, keyframes from where segment wrote them.
    spec = parse_spec(
        {"name": "hash", "source": {"uri": str(described["source"])}, "stages": only_stages(phash={})}
    )
    summary = run_job(spec)
    after = rows(settings, SHOTS)
    assert [s["shot_id"] for s in after] == [s["shot_id"] for s in before_shots]
    assert all(s["phash"] is not None for s in after)
    # the rows stay segment's: their other columns and the run that wrote them are unchanged
    strip = [{k: v for k, v in s.items() if k != "phash"} for s in after]
    assert strip == [{k: v for k, v in s.items() if k != "phash"} for s in before_shots]
    assert rows(settings, TAGS) == before_tags

    # technical alone: its tag rows are replaced, the visual model's are left as they were
    spec = parse_spec(
        {"name": "tech", "source": {"uri": str(described["source"])}, "stages": only_stages(technical={})}
    )
    again = run_job(spec)
    tags = rows(settings, TAGS)
    assert {t["run_id"] for t in tags if t["kind"] == "technical"} == {again["run_id"]}
    imagenet = [t for t in tags if t["kind"] == "imagenet"]
    assert imagenet == [t for t in before_tags if t["kind"] == "imagenet"]
    assert summary["run_id"] != again["run_id"]
