"""`archivist catalog expire`: old snapshots, versions and orphan files go; the latest version,
versions within the retention, live indexes and young files stay, and reads are unchanged."""

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path

import pytest
from test_catalog import asset_rows, shot_rows
from test_versions import SEGMENT, tables
from typer.testing import CliRunner

from catalog.iceberg import open_catalog, read
from catalog.maintenance import expire
from catalog.query import QueryError, sql
from catalog.schema import NAMESPACE
from catalog.settings import Settings
from catalog.versions import latest_version
from jobs.cli import app
from jobs.commit import commit_tables

LATER = dt.datetime.now(dt.UTC) + dt.timedelta(days=30)
"""When everything committed in a test is older than a week's retention."""


def files_under(path: Path) -> set[Path]:
    return {p for p in path.rglob("*") if p.is_file()}


@pytest.fixture
def archive(settings: Settings):
    """Three runs over one asset (each replacing its shots), then a stray file a crashed run left."""
    catalog = open_catalog(settings)
    for run, shots in (("r1", 2), ("r2", 3), ("r3", 4)):
        commit_tables(catalog, tables("a", shots, run), SEGMENT, ["a"], run_id=run)
    location = Path(catalog.load_table(f"{NAMESPACE}.shots").location().removeprefix("file://"))
    stray = location / "data" / "00000-crashed-run.parquet"
    stray.parent.mkdir(parents=True, exist_ok=True)
    stray.write_bytes(b"PAR1 never committed")
    return catalog, location, stray


def test_expiry_keeps_what_the_latest_version_reads_and_frees_the_rest(settings: Settings, archive) -> None:
    catalog, location, stray = archive
    before = read(catalog, "shots").sort_by("shot_id")
    files_before = files_under(location)
    snapshots = len(catalog.load_table(f"{NAMESPACE}.shots").snapshots())
    report = expire(catalog, settings, retention_days=7, now=LATER)
    shots = report.tables["shots"]
    assert snapshots >= 3 and shots.snapshots_expired == snapshots - 1 and shots.snapshots_kept == 1
    assert len(catalog.load_table(f"{NAMESPACE}.shots").snapshots()) == 1
    assert report.versions_dropped == 2 and report.versions_kept == 1
    assert not stray.exists(), "a file no snapshot names is an orphan"
    assert shots.orphan_files >= 3 and len(files_under(location)) < len(files_before)
    assert read(catalog, "shots").sort_by("shot_id").equals(before), "reads are unchanged"
    assert sql(catalog, "SELECT count(*) AS n FROM shots").column("n")[0].as_py() == 4
    assert latest_version(catalog).run_id == "r3"
    with pytest.raises(QueryError, match="catalog expire"):
        sql(catalog, "SELECT count(*) AS n FROM shots", as_of="r1")


def test_nothing_within_the_retention_goes(settings: Settings, archive) -> None:
    catalog, location, stray = archive
    files_before = files_under(location)
    report = expire(catalog, settings, retention_days=7)
    assert report.versions_dropped == 0 and all(t.snapshots_expired == 0 for t in report.tables.values())
    assert stray.exists() and files_under(location) == files_before, "a young file may be a run's, writing"
    assert sql(catalog, "SELECT count(*) AS n FROM shots", as_of="r1").column("n")[0].as_py() == 2


def test_an_old_orphan_goes_even_while_recent_versions_stay(settings: Settings, archive) -> None:
    catalog, _, stray = archive
    old = (dt.datetime.now(dt.UTC) - dt.timedelta(days=30)).timestamp()
    os.utime(stray, (old, old))
    report = expire(catalog, settings, retention_days=7)
    assert not stray.exists() and report.tables["shots"].orphan_files == 1
    assert sql(catalog, "SELECT count(*) AS n FROM shots", as_of="r1").column("n")[0].as_py() == 2


def test_a_dry_run_reports_the_same_and_changes_nothing(settings: Settings, archive) -> None:
    catalog, location, stray = archive
    files_before = files_under(location)
    snapshots = len(catalog.load_table(f"{NAMESPACE}.shots").snapshots())
    dry = expire(catalog, settings, retention_days=7, now=LATER, dry_run=True)
    assert files_under(location) == files_before and stray.exists()
    assert len(catalog.load_table(f"{NAMESPACE}.shots").snapshots()) == snapshots
    real = expire(catalog, settings, retention_days=7, now=LATER)
    assert dry.tables["shots"] == real.tables["shots"] and dry.versions_dropped == real.versions_dropped


def test_a_version_within_the_retention_keeps_its_snapshots(settings: Settings, archive) -> None:
    catalog, _, _ = archive
    second = latest_version(catalog)
    commit_tables(catalog, {"shots": shot_rows("a", 5, "r4"), "assets": asset_rows("a", run_id="r4")},
                  SEGMENT, ["a"], run_id="r4")  # fmt: skip
    cutoff_between = second.recorded_at + (latest_version(catalog).recorded_at - second.recorded_at) / 2
    days = (dt.datetime.now(dt.UTC) - cutoff_between).total_seconds() / 86400
    report = expire(catalog, settings, retention_days=days)
    assert report.versions_kept == 1  # r4 only: r3 recorded before the cutoff
    now = dt.datetime.now(dt.UTC)
    report = expire(catalog, settings, retention_days=7, now=now)
    assert report.versions_dropped == 0


def test_the_command_prints_one_json_document(settings: Settings, archive, monkeypatch) -> None:
    monkeypatch.setenv("ARCHIVIST_HOME", settings.home)
    result = CliRunner().invoke(app, ["catalog", "expire", "--dry-run", "--json"])
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document["dry_run"] is True and document["tables"]["shots"]["snapshots_expired"] == 0
