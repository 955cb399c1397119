"""A run killed hard (SIGKILL of the driver and its local Ray) and started again
finishes only what was left, with no duplicates and no partial commit ever visible."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import LIGHT_STAGES

from catalog.iceberg import open_catalog
from catalog.query import sql
from catalog.settings import Settings
from catalog.state import StateStore
from jobs.run import run_job
from jobs.spec import load_spec

pytestmark = pytest.mark.slow
CLIPS = 14


def test_a_killed_run_resumes_exactly(ray_session, home: Path, tmp_path: Path, clip_writer) -> None:
    source = tmp_path / "tapes"
    source.mkdir()
    for i in range(CLIPS):
        clip_writer(source / f"tape{i:02d}.mp4", seconds=3, cuts=1 + i % 3, seed=i)
    spec_path = tmp_path / "nightly.yaml"
    spec_path.write_text(
        f"name: nightly\nsource: {{uri: {source}}}\n"
        "distribution: {spool_every_assets: 2, spool_every_seconds: 1}\n"
        f"stages:\n{LIGHT_STAGES}"
    )
    settings = Settings()
    state = StateStore(settings.catalog_url_resolved)
    version = load_spec(spec_path).pipeline_version()

    driver = subprocess.Popen(
        [sys.executable, "-m", "jobs.cli", "run", str(spec_path)],
        env={**os.environ, "ARCHIVIST_HOME": str(home)},
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 300
    while len(state.spooled(version)) < 4:
        assert driver.poll() is None, "the run ended before it could be killed"
        assert time.monotonic() < deadline, "nothing was staged in time"
        time.sleep(0.05)
    os.killpg(driver.pid, signal.SIGKILL)
    driver.wait()

    staged = state.spooled(version)
    assert 4 <= len(staged) < CLIPS
    catalog = open_catalog(settings)
    assert sql(catalog, "SELECT count(*) AS n FROM assets")["n"][0].as_py() == 0  # nothing half-committed
    (killed,) = state.runs(job="nightly")
    assert killed.status == "running"

    resumed = run_job(load_spec(spec_path))
    assert resumed["assets"]["resumed"] == len(staged)
    assert resumed["assets"]["ok"] == CLIPS and resumed["assets"]["failed"] == 0
    assert resumed["seconds"].get("segment (busy)", 0) > 0
    assert state.run(killed.run_id).status == "abandoned"

    counts = sql(catalog, "SELECT count(*) AS n, count(DISTINCT shot_id) AS distinct_shots FROM shots")
    assert counts["n"][0].as_py() == counts["distinct_shots"][0].as_py() == resumed["shots"]
    shot_counts = sql(catalog, "SELECT sum(shot_count) AS n FROM assets")["n"][0].as_py()
    assert shot_counts == resumed["shots"] >= 2 * CLIPS
    assert sql(catalog, "SELECT count(*) AS n FROM assets")["n"][0].as_py() == CLIPS
    assert state.spooled(version) == {}


def test_a_lost_worker_is_planned_around(home: Path, tmp_path: Path, clip_writer) -> None:
    """The stages' actors killed mid-run (as the kernel's OOM killer would): every asset is
    committed once. An actor killed with a task in flight makes the run plan its unfinished assets
    again (it says so); one killed between tasks Ray replaces itself. Which one a kill meets is
    timing, so the re-planning itself is pinned by the cluster test, whose lost node holds work."""
    source = tmp_path / "tapes"
    source.mkdir()
    for i in range(CLIPS):
        clip_writer(source / f"tape{i:02d}.mp4", seconds=3, cuts=1 + i % 3, seed=i)
    spec_path = tmp_path / "nightly.yaml"
    spec_path.write_text(
        f"name: nightly\nsource: {{uri: {source}}}\n"
        "distribution: {spool_every_assets: 2, spool_every_seconds: 1}\n"
        f"stages:\n{LIGHT_STAGES}"
    )
    state = StateStore(Settings().catalog_url_resolved)
    version = load_spec(spec_path).pipeline_version()
    run = subprocess.Popen(
        [sys.executable, "-m", "jobs.cli", "run", str(spec_path), "--json"],
        env={**os.environ, "ARCHIVIST_HOME": str(home)},
        start_new_session=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 300
    while len(state.spooled(version)) < 2:
        assert run.poll() is None, run.communicate()[1][-3000:]
        assert time.monotonic() < deadline, "nothing was staged in time"
        time.sleep(0.05)
    # Ray titles an actor's process after its class. Both steps' actors: one of them is busy.
    stage_actors = r"^ray::MapWorker\(MapBatches\((Segment|Keyframes)Step\)\)"
    killed = subprocess.run(["pkill", "-KILL", "-f", stage_actors], check=False).returncode
    try:
        out, err = run.communicate(timeout=600)
    finally:
        if run.poll() is None:
            os.killpg(run.pid, signal.SIGKILL)
    assert killed == 0, "no stage actor was found to kill"
    assert run.returncode == 0, err[-3000:]
    summary = json.loads(out)
    assert summary["assets"]["ok"] == CLIPS and summary["assets"]["failed"] == 0
    catalog = open_catalog(Settings())
    counts = sql(catalog, "SELECT count(*) AS n, count(DISTINCT shot_id) AS d FROM shots").to_pylist()[0]
    assert counts["n"] == counts["d"] == summary["shots"]
    assert sql(catalog, "SELECT count(*) AS n FROM assets")["n"][0].as_py() == CLIPS
