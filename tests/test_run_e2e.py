"""A whole run on Ray over real footage: what `make demo` does, plus the files an archive
really holds. Slow: Ray actors load models."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from catalog.iceberg import open_catalog
from catalog.query import sql
from catalog.settings import Settings
from catalog.state import StateStore
from jobs.cli import app
from jobs.run import run_job
from jobs.spec import default_spec, parse_spec

pytestmark = pytest.mark.slow


def count(settings: Settings, table: str) -> int:
    return sql(open_catalog(settings), f"SELECT count(*) AS n FROM {table}")["n"][0].as_py()


@pytest.fixture
def first_run(ray_session, settings: Settings, footage: Path, bad_media) -> dict:
    bad = bad_media(footage / "bad")
    (footage / "copy").mkdir()
    shutil.copy(footage / "bikes.mp4", footage / "copy" / "bikes-again.mp4")
    summary = run_job(default_spec(str(footage)))
    summary["bad"] = bad
    return summary


def test_a_run_catalogs_good_footage_and_records_bad_files(first_run: dict, settings: Settings) -> None:
    assert first_run["assets"] == {"ok": 2, "failed": 3, "skipped": 0, "resumed": 0}, first_run["failed"]
    catalog = open_catalog(settings)
    assets = {Path(r["uri"]).name: r for r in sql(catalog, "SELECT * FROM assets").to_pylist()}
    assert set(assets) == {"bigbuckbunny.mp4", "bikes.mp4", "empty.mp4", "truncated.mp4", "noise.mp4"}
    for name in ("empty.mp4", "truncated.mp4", "noise.mp4"):
        assert assets[name]["status"] == "failed" and assets[name]["error"], name
    assert "bikes-again" not in str(assets)  # the same bytes are one asset
    bunny = assets["bigbuckbunny.mp4"]
    assert bunny["status"] == "ok" and bunny["width"] == 1280 and bunny["height"] == 720
    assert bunny["audio_streams"] >= 1 and 5 < bunny["duration_s"] < 6
    assert first_run["shots"] == count(settings, "shots") >= 2
    assert count(settings, "embeddings") == first_run["shots"]
    assert count(settings, "tags") == 5 * first_run["shots"]
    keyframes = sql(catalog, "SELECT keyframe_uri FROM shots")["keyframe_uri"].to_pylist()
    assert all(Path(uri).read_bytes()[:2] == b"\xff\xd8" for uri in keyframes)
    assert first_run["index"]["vectors"] == first_run["shots"]


def test_the_run_is_recorded_with_its_stages(first_run: dict, settings: Settings) -> None:
    run = StateStore(settings.catalog_url_resolved).run(first_run["run_id"])
    assert run.status == "succeeded"
    stages = {s.stage: s for s in run.stages}
    assert {"discover", "fingerprint", "segment", "visual", "commit", "index"} <= set(stages)
    assert stages["segment"].failures == 3 and stages["segment"].seconds > 0


def test_a_second_run_skips_everything_and_adds_no_rows(
    first_run: dict, settings: Settings, footage: Path
) -> None:
    before = {t: count(settings, t) for t in ("assets", "shots", "tags", "embeddings")}
    again = run_job(default_spec(str(footage)))
    assert again["assets"] == {"ok": 0, "failed": 0, "skipped": 5, "resumed": 0}
    assert {t: count(settings, t) for t in before} == before
    retried = run_job(default_spec(str(footage)).model_copy(update={"retry_failed": True}))
    assert retried["assets"] == {"ok": 0, "failed": 3, "skipped": 2, "resumed": 0}
    assert {t: count(settings, t) for t in before} == before


def test_a_changed_parameter_reprocesses_without_duplicates(
    first_run: dict, settings: Settings, footage: Path
) -> None:
    shots_before = count(settings, "shots")
    spec = parse_spec({"name": "wider", "source": {"uri": str(footage), "exclude": ["*.mp4"]}})
    assert run_job(spec)["assets"]["ok"] == 0
    spec = parse_spec({"name": "topk", "source": {"uri": str(footage)}, "stages": {"visual": {"top_k": 3}}})
    summary = run_job(spec)
    assert summary["assets"]["ok"] == 2 and summary["assets"]["skipped"] == 0
    assert count(settings, "shots") == shots_before
    assert count(settings, "tags") == 3 * shots_before


def test_cli_searches_by_shot_and_by_image(first_run: dict, settings: Settings) -> None:
    shots = sql(
        open_catalog(settings), "SELECT shot_id, keyframe_uri FROM shots ORDER BY shot_id"
    ).to_pylist()
    runner = CliRunner()
    result = runner.invoke(app, ["search", "--like", shots[0]["shot_id"], "--top", "3", "--json"])
    assert result.exit_code == 0, result.output
    hits = json.loads(result.stdout)
    assert 1 <= len(hits) <= 3 and shots[0]["shot_id"] not in {h["shot_id"] for h in hits}
    assert set(hits[0]) == {"shot_id", "asset_id", "uri", "start_s", "end_s", "score"}
    result = runner.invoke(app, ["search", "--image", shots[1]["keyframe_uri"], "--top", "1", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)[0]["shot_id"] == shots[1]["shot_id"]  # a keyframe finds its own shot


def test_cli_run_prints_a_json_summary_and_names_a_missing_folder(
    ray_session, home: Path, footage: Path
) -> None:
    runner = CliRunner()
    result = runner.invoke(app, ["run", str(footage / "bikes.mp4"), "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["assets"]["ok"] == 1 and summary["run_id"] and "segment (busy)" in summary["seconds"]
    result = runner.invoke(app, ["run", str(footage / "missing")])
    assert result.exit_code == 2 and "missing" in result.stderr and "does not exist" in result.stderr
