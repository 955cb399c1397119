"""Concurrent writers: commits from several processes to the same tables all land
(Iceberg's optimistic concurrency, retried), on SQLite and on PostgreSQL."""

from __future__ import annotations

import datetime as dt
import multiprocessing
import os
from pathlib import Path

import pyarrow as pa
import pytest
from conftest import LIGHT_STAGES

from catalog import schema
from catalog.iceberg import open_catalog, read, replace_assets
from catalog.settings import Settings

WRITERS, COMMITS = 4, 5


def _writer(home: str, url: str | None, writer: int, start: multiprocessing.Barrier) -> None:
    settings = Settings(home=home, catalog_url=url)
    catalog = open_catalog(settings)
    start.wait()
    for commit in range(COMMITS):
        asset = f"{writer:02d}{commit:02d}".ljust(64, "0")
        rows = pa.Table.from_pylist(
            [
                {
                    "asset_id": asset,
                    "uri": f"/f/{asset}",
                    "size_bytes": 1,
                    "status": "ok",
                    "shot_count": 0,
                    "processed_at": dt.datetime.now(dt.UTC),
                    "run_id": f"w{writer}",
                    "pipeline_version": "p1",
                }
            ],
            schema=schema.ASSETS,
        )
        replace_assets(catalog, "assets", rows, [asset], run_id=f"w{writer}")


def _race(home: Path, url: str | None) -> None:
    settings = Settings(home=str(home), catalog_url=url)
    open_catalog(settings)  # create the namespace before the race
    context = multiprocessing.get_context("spawn")
    start = context.Barrier(WRITERS)
    writers = [context.Process(target=_writer, args=(str(home), url, w, start)) for w in range(WRITERS)]
    for process in writers:
        process.start()
    for process in writers:
        process.join(timeout=300)
    assert [p.exitcode for p in writers] == [0] * WRITERS
    rows = read(open_catalog(settings), "assets")
    assert rows.num_rows == WRITERS * COMMITS
    assert sorted(set(rows["run_id"].to_pylist())) == [f"w{w}" for w in range(WRITERS)]


def test_concurrent_commits_all_land_on_sqlite(tmp_path: Path) -> None:
    _race(tmp_path / "archive", None)


def test_concurrent_commits_all_land_on_postgres(tmp_path: Path, postgres_url: str) -> None:
    _race(tmp_path / "archive", postgres_url)


@pytest.mark.slow
def test_two_runs_of_different_jobs_commit_together(home: Path, tmp_path: Path, clip_writer) -> None:
    import subprocess
    import sys

    from catalog.query import sql

    specs = []
    for job in ("east", "west"):
        folder = tmp_path / job
        folder.mkdir()
        for i in range(3):
            clip_writer(folder / f"{job}{i}.mp4", seconds=2, seed=hash(job) % 1000 + i)
        spec = tmp_path / f"{job}.yaml"
        spec.write_text(f"name: {job}\nsource: {{uri: {folder}}}\nstages:\n{LIGHT_STAGES}")
        specs.append(spec)
    env = {**os.environ, "ARCHIVIST_HOME": str(home)}
    runs = [
        subprocess.Popen(
            [sys.executable, "-m", "jobs.cli", "run", str(s), "--json"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for s in specs
    ]
    results = [r.communicate(timeout=600) for r in runs]
    assert [r.returncode for r in runs] == [0, 0], [err[-2000:] for _, err in results]
    catalog = open_catalog(Settings())
    assert sql(catalog, "SELECT count(*) AS n FROM assets")["n"][0].as_py() == 6
    shots = sql(catalog, "SELECT count(*) AS n, count(DISTINCT shot_id) AS d FROM shots").to_pylist()[0]
    assert shots["n"] == shots["d"] >= 6
    assert sql(catalog, "SELECT count(*) AS n FROM embeddings")["n"][0].as_py() == shots["n"]
