"""A whole run on Ray over real footage: what `make demo` does, plus the files an archive
really holds. One run is shared by the module (model loading is the slow part); the tests
that run again come last, in file order, and say what they expect relative to it."""

from __future__ import annotations

import json
import os
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
from jobs.samples import sample_file
from jobs.spec import default_spec, parse_spec

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def archive(ray_session, tmp_path_factory, bad_media) -> dict:
    """The footage folder (two clips, a byte-identical copy, three bad files), the home, and
    the summary of the first run over them."""
    root = tmp_path_factory.mktemp("e2e")
    footage = root / "footage"
    footage.mkdir()
    for name in ("bigbuckbunny.mp4", "bikes.mp4"):
        shutil.copy(sample_file(name), footage / name)
    (footage / "copy").mkdir()
    shutil.copy(footage / "bikes.mp4", footage / "copy" / "bikes-again.mp4")
    bad_media(footage / "bad")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("ARCHIVIST_HOME", str(root / "archive"))
        patch.delenv("ARCHIVIST_CATALOG_URL", raising=False)
        summary = run_job(default_spec(str(footage)))
        yield {"footage": footage, "summary": summary, "settings": Settings()}


def count(settings: Settings, query: str) -> int:
    return sql(open_catalog(settings), query).column(0)[0].as_py()


def test_a_run_catalogs_good_footage_and_records_bad_files(archive: dict) -> None:
    summary, settings = archive["summary"], archive["settings"]
    expected = {"ok": 2, "damaged": 0, "failed": 3, "skipped": 0, "resumed": 0}
    assert summary["assets"] == expected, summary["failed"]
    assert summary["outcome"] == "problems"  # three files failed: the run completed, and says so
    assets = {Path(r["uri"]).name: r for r in sql(open_catalog(settings), "SELECT * FROM assets").to_pylist()}
    assert set(assets) == {"bigbuckbunny.mp4", "bikes.mp4", "empty.mp4", "truncated.mp4", "noise.mp4"}
    for name in ("empty.mp4", "truncated.mp4", "noise.mp4"):
        assert assets[name]["status"] == "failed" and assets[name]["error"], name
    bunny = assets["bigbuckbunny.mp4"]
    assert bunny["status"] == "ok" and (bunny["width"], bunny["height"]) == (1280, 720)
    assert bunny["audio_streams"] >= 1 and 5 < bunny["duration_s"] < 6
    shots = summary["shots"]
    assert shots == count(settings, "SELECT count(*) FROM shots") >= 2
    assert count(settings, "SELECT count(*) FROM tags WHERE kind = 'imagenet'") == 5 * shots
    keyframes = sql(open_catalog(settings), "SELECT keyframe_uri FROM shots")["keyframe_uri"].to_pylist()
    assert all(Path(uri).read_bytes()[:2] == b"\xff\xd8" for uri in keyframes)


def test_every_understanding_table_is_filled(archive: dict) -> None:
    settings, shots = archive["settings"], archive["summary"]["shots"]
    for space in ("visual", "text", "concept"):
        assert count(settings, f"SELECT count(*) FROM embeddings WHERE space = '{space}'") == shots, space
        assert archive["summary"]["indexes"][space]["vectors"] == shots
    assert count(settings, "SELECT count(*) FROM captions") == shots
    assert (
        count(settings, "SELECT count(*) FROM tags WHERE kind = 'object'") > 0
    )  # bikes has people, bicycles
    assert count(settings, "SELECT count(*) FROM tags WHERE kind = 'technical'") >= shots
    assert count(settings, "SELECT count(*) FROM shots WHERE nsfw_score IS NOT NULL") == shots
    assert count(settings, "SELECT count(*) FROM shots WHERE phash IS NOT NULL") == shots
    assert count(settings, "SELECT count(*) FROM dup_groups") == shots
    caption = sql(open_catalog(settings), "SELECT caption FROM captions LIMIT 1")["caption"][0].as_py()
    assert caption and caption[0].isupper() and caption.endswith(".")


def test_the_run_is_recorded_with_its_stages(archive: dict) -> None:
    settings = archive["settings"]
    run = StateStore(settings.catalog_url_resolved).run(archive["summary"]["run_id"])
    assert run.status == "succeeded"
    stages = {s.step: s for s in run.steps}
    expected = {
        "discover",
        "fingerprint",
        "speech",
        "segment",
        "visual",
        "objects",
        "ocr",
        "faces",
        "text",
        "commit",
        "duplicates",
        "index",
    }
    assert expected <= set(stages)
    assert stages["segment"].failures == 3 and stages["segment"].seconds > 0


def test_cli_searches_by_shot_and_by_image(archive: dict) -> None:
    settings = archive["settings"]
    shots = sql(
        open_catalog(settings), "SELECT shot_id, keyframe_uri FROM shots ORDER BY shot_id"
    ).to_pylist()
    runner = CliRunner(env={"ARCHIVIST_HOME": settings.home})
    result = runner.invoke(app, ["search", "--like", shots[0]["shot_id"], "--top", "3", "--json"])
    assert result.exit_code == 0, result.output
    hits = json.loads(result.stdout)["hits"]
    assert 1 <= len(hits) <= 3 and shots[0]["shot_id"] not in {h["shot_id"] for h in hits}
    assert {"shot_id", "asset_id", "uri", "start_s", "end_s", "score"} <= set(hits[0])
    result = runner.invoke(app, ["search", "--image", shots[1]["keyframe_uri"], "--top", "1", "--json"])
    assert result.exit_code == 0, result.output
    # a keyframe finds its own shot
    assert json.loads(result.stdout)["hits"][0]["shot_id"] == shots[1]["shot_id"]


def test_a_second_run_skips_everything_and_adds_no_rows(archive: dict) -> None:
    settings = archive["settings"]
    tables = ("assets", "shots", "tags", "embeddings", "captions", "faces", "transcripts")
    before = {t: count(settings, f"SELECT count(*) FROM {t}") for t in tables}
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("ARCHIVIST_HOME", settings.home)
        again = run_job(default_spec(str(archive["footage"])))
        assert again["assets"] == {"ok": 0, "damaged": 0, "failed": 0, "skipped": 5, "resumed": 0}
        assert again["outcome"] == "ok"
        retried = run_job(default_spec(str(archive["footage"])).model_copy(update={"retry_failed": True}))
    assert retried["assets"] == {"ok": 0, "damaged": 0, "failed": 3, "skipped": 2, "resumed": 0}
    assert {t: count(settings, f"SELECT count(*) FROM {t}") for t in tables} == before


def test_a_changed_parameter_reprocesses_without_duplicates(archive: dict) -> None:
    settings = archive["settings"]
    shots_before = count(settings, "SELECT count(*) FROM shots")
    light = {
        "speech": {"enabled": False},
        "text": {"enabled": False},
        "keyframes": {name: {"enabled": False} for name in ("objects", "ocr", "faces", "safety")}
        | {"visual": {"top_k": 3}},
    }
    spec = parse_spec({"name": "topk", "source": {"uri": str(archive["footage"])}, "stages": light})
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("ARCHIVIST_HOME", settings.home)
        summary = run_job(spec)
    assert summary["assets"]["ok"] == 2 and summary["assets"]["skipped"] == 0
    assert count(settings, "SELECT count(*) FROM shots") == shots_before
    assert count(settings, "SELECT count(*) FROM tags WHERE kind = 'imagenet'") == 3 * shots_before


def test_cli_run_prints_a_json_summary_and_names_a_missing_folder(
    ray_session, home: Path, footage: Path
) -> None:
    runner = CliRunner(env={"ARCHIVIST_HOME": str(home)})
    result = runner.invoke(app, ["run", str(footage / "bikes.mp4"), "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["assets"]["ok"] == 1 and summary["run_id"] and "segment (busy)" in summary["seconds"]
    assert summary["outcome"] == "ok" and summary["assets"]["damaged"] == 0
    result = runner.invoke(app, ["run", str(footage / "missing")])
    assert result.exit_code == 2 and "missing" in result.stderr and "does not exist" in result.stderr
    assert os.environ.get("ARCHIVIST_HOME") == str(home)
