"""`archivist estimate` from what a real run recorded, and from its own calibration run when the
catalog has none."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from conftest import LIGHT_STAGES
from typer.testing import CliRunner

from catalog.settings import Settings
from catalog.state import StateStore
from jobs.cli import app
from jobs.estimate import calibration_for, estimate
from jobs.run import run_job
from jobs.spec import parse_spec_text

pytestmark = pytest.mark.slow

CLIPS, SECONDS, CUTS = 2, 2.0, 1


@pytest.fixture(scope="module")
def recorded(ray_session, tmp_path_factory: pytest.TempPathFactory, clip_writer) -> dict:
    """An archive holding one small real run (two 2 s clips of two shots each, the light stages)."""
    root = tmp_path_factory.mktemp("estimate")
    folder = root / "footage"
    folder.mkdir()
    for i in range(CLIPS):
        clip_writer(folder / f"reel{i}.mp4", seconds=SECONDS, cuts=CUTS, seed=40 + i)
    spec = parse_spec_text(f"name: sizing\nsource: {{uri: {folder}}}\nstages:\n{LIGHT_STAGES}", origin="test")
    settings = Settings(home=str(root / "archive"))
    summary = run_job(spec, settings=settings)
    return {"home": root / "archive", "summary": summary, "settings": settings}


def _estimate(home: Path, *args: str) -> tuple[int, str, str]:
    env = {"ARCHIVIST_HOME": str(home), "COLUMNS": "80"}
    result = CliRunner().invoke(app, ["estimate", *args], env=env)
    return result.exit_code, result.stdout, result.stderr


def test_the_estimate_reads_the_runs_figures(recorded: dict) -> None:
    code, out, err = _estimate(recorded["home"], "--hours", "100", "--cpus", "32", "--gpus", "0", "--json")
    assert code == 0, err
    result = json.loads(out)
    calibration = result["calibration"]
    summary = recorded["summary"]
    assert calibration["runs"] == [summary["run_id"]]
    # Hours are the assets' probed durations, which may fall a frame or so short of the clips' nominal length.
    assert calibration["hours"] == pytest.approx(CLIPS * SECONDS / 3600, rel=0.02)
    assert calibration["shots_per_hour"] == pytest.approx(summary["shots"] / calibration["hours"])
    assert summary["shots"] == CLIPS * (CUTS + 1)
    stages = {s["name"]: s for s in result["stages"]}
    assert {"segment", "visual", "phash"} <= set(stages)  # the light run's stages, keyframe models included
    assert "text" not in stages  # off in the light run: no figure, no line
    assert stages["segment"]["per"] == "hour" and stages["visual"]["per"] == "shot"
    assert stages["visual"]["pool"] == "keyframes"
    busy = summary["seconds"]["visual (busy)"]
    # The summary rounds its seconds to the millisecond; the estimate reads the unrounded figure.
    assert stages["visual"]["seconds_per_unit"] == pytest.approx(
        busy / summary["shots"], abs=0.0005 / summary["shots"]
    )
    assert result["wall_hours"] > 0 and result["cost"] == pytest.approx(
        result["wall_hours"] * 32 * result["cpu_price"]
    )


def test_the_estimate_reproduces_the_run_it_was_made_from(recorded: dict) -> None:
    """Asked for the run's own footage on this machine, the estimate gives back the run's time:
    its start and stages exactly (that is where the fixed part comes from), the rest from its steps."""
    summary = recorded["summary"]
    figures = calibration_for(recorded["settings"])
    same = estimate(figures, hours=figures.hours, cpus=os.cpu_count() or 1)
    seconds = summary["seconds"]
    measured = seconds["process"] + seconds.get("start ray", 0.0)
    assert (same.startup_hours + same.pipeline_hours) * 3600 == pytest.approx(measured, rel=1e-6)
    assert same.wall_hours * 3600 == pytest.approx(seconds["total"], rel=0.1)
    bigger = estimate(figures, hours=10 * figures.hours, cpus=os.cpu_count() or 1)
    assert bigger.wall_hours > same.wall_hours  # more footage, more time


def test_the_table_states_its_assumptions_and_fits_80_columns(recorded: dict) -> None:
    code, out, err = _estimate(recorded["home"], "--hours", "1000", "--cpus", "64")
    assert code == 0, err
    words = " ".join(out.split())  # rich wraps long lines at 80 columns
    assert "1 recorded run(s) of job sizing" in words
    assert "assumes:" in words and "shots per hour" in words and "one run measured" in words
    assert "wall time" in words and "cost $" in words
    assert max(len(line) for line in out.splitlines()) <= 80


def test_an_empty_catalog_is_calibrated_on_the_bundled_samples(ray_session, home: Path) -> None:
    code, out, err = _estimate(home, "--hours", "2", "--json")
    assert code == 0, err
    result = json.loads(out)
    assert "bundled samples" in result["calibration"]["source"]
    assert len(result["calibration"]["runs"]) == 2  # a run per clip: two sizes
    assert result["calibration"]["hours"] == pytest.approx((5.3 + 10.0) / 3600, rel=0.05)
    assert result["wall_hours"] > 0
    assert StateStore(Settings().catalog_url_resolved).run_count() == 0  # its archive was a throwaway
