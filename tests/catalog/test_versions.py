"""Catalog versions: a reader sees all of a run's commits or none, whatever it joins, even
while runs commit; a run that dies between its table commits changes nothing readers see."""

from __future__ import annotations

import threading

import pyarrow as pa
import pytest
from test_catalog import asset_rows, shot_rows

import jobs.commit as commit
from actors.stage import registry
from catalog.iceberg import open_catalog, read
from catalog.query import QueryError, sql
from catalog.settings import Settings
from catalog.versions import latest_version, version_as_of
from jobs.commit import commit_tables

SEGMENT = [registry()["segment"]]


def tables(asset: str, shots: int, run_id: str) -> dict[str, pa.Table]:
    assets = asset_rows(asset, run_id=run_id)
    assets = assets.set_column(
        assets.schema.get_field_index("shot_count"), "shot_count", pa.array([shots], pa.int32())
    )
    return {"assets": assets, "shots": shot_rows(asset, shots, run_id)}


def dies_before_its_assets(catalog, monkeypatch, rows: dict[str, pa.Table], *, run_id: str) -> None:
    """A run whose node goes away after its other tables' commits, before its assets'."""
    real = commit.replace_matching

    def dies_before_assets(catalog, name, rows, replacing, *, run_id):
        if name == "assets":
            raise OSError("the node went away")
        return real(catalog, name, rows, replacing, run_id=run_id)

    with monkeypatch.context() as patch:
        patch.setattr(commit, "replace_matching", dies_before_assets)
        with pytest.raises(OSError):
            commit_tables(catalog, rows, SEGMENT, rows["assets"]["asset_id"].to_pylist(), run_id=run_id)


def test_a_run_that_dies_between_its_table_commits_is_not_seen(settings: Settings, monkeypatch) -> None:
    catalog = open_catalog(settings)
    commit_tables(catalog, tables("a", 2, "r1"), SEGMENT, ["a"], run_id="r1")
    first = latest_version(catalog)
    assert first is not None and first.run_id == "r1"
    dies_before_its_assets(catalog, monkeypatch, tables("a", 5, "r2"), run_id="r2")
    # r2's shots are committed to their table, but no version holds them
    assert read(catalog, "shots", current=True).num_rows == 5
    assert latest_version(catalog) == first
    assert read(catalog, "shots").num_rows == 2 and set(read(catalog, "shots")["run_id"].to_pylist()) == {
        "r1"
    }
    joined = sql(catalog, "SELECT a.run_id AS a, s.run_id AS s FROM assets a JOIN shots s USING (asset_id)")
    assert set(joined["a"].to_pylist()) == set(joined["s"].to_pylist()) == {"r1"}

    commit_tables(catalog, tables("a", 3, "r3"), SEGMENT, ["a"], run_id="r3")  # the next run completes it
    assert read(catalog, "shots").num_rows == 3


def test_sql_as_of_a_run_or_a_time_reads_the_catalog_as_it_stood(settings: Settings) -> None:
    catalog = open_catalog(settings)
    commit_tables(catalog, tables("a", 2, "r1"), SEGMENT, ["a"], run_id="r1")
    then = latest_version(catalog)
    commit_tables(catalog, tables("a", 4, "r2"), SEGMENT, ["a"], run_id="r2")
    count = "SELECT count(*) AS n FROM shots"
    assert sql(catalog, count)["n"][0].as_py() == 4
    assert sql(catalog, count, as_of="r1")["n"][0].as_py() == 2
    assert then is not None and version_as_of(catalog, then.recorded_at.isoformat()) == then
    with pytest.raises(QueryError, match="neither a run whose version the catalog keeps nor an ISO time"):
        sql(catalog, count, as_of="no-such-run")
    with pytest.raises(QueryError, match="no version as old as 1999-01-01"):
        sql(catalog, count, as_of="1999-01-01")


def test_readers_during_concurrent_commits_never_see_a_mixed_state(settings: Settings) -> None:
    """Two writers re-commit assets whose shot count changes every time; a reader joining
    assets with shots must always find each asset's shot count equal to its shots."""
    catalog = open_catalog(settings)
    for asset in ("east", "west"):
        commit_tables(catalog, tables(asset, 1, "r0"), SEGMENT, [asset], run_id="r0")
    stop, reads, mixed, errors = threading.Event(), [0], [], []

    def writer(asset: str) -> None:
        own = open_catalog(settings)
        try:
            for n in range(2, 8):
                commit_tables(own, tables(asset, n, f"{asset}{n}"), SEGMENT, [asset], run_id=f"{asset}{n}")
        except Exception as exc:  # reported below: a writer must not fail either
            errors.append(exc)

    def reader() -> None:
        own = open_catalog(settings)
        query = (
            "SELECT a.asset_id, any_value(a.shot_count) AS declared, count(s.shot_id) AS found,"
            " count(DISTINCT s.run_id) AS runs FROM assets a LEFT JOIN shots s USING (asset_id)"
            " GROUP BY a.asset_id"
        )
        while not stop.is_set():
            for row in sql(own, query).to_pylist():
                if row["declared"] != row["found"] or row["runs"] != 1:
                    mixed.append(row)
            reads[0] += 1

    threads = [threading.Thread(target=writer, args=(a,)) for a in ("east", "west")]
    watcher = threading.Thread(target=reader)
    watcher.start()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    stop.set()
    watcher.join()
    assert not errors, errors
    assert reads[0] > 5, "the reader should have read while the writers committed"
    assert mixed == [], f"{len(mixed)} of {reads[0]} reads saw a mixed state"
    assert sql(catalog, "SELECT count(*) AS n FROM shots")["n"][0].as_py() == 14


def test_archivist_sql_as_of_names_what_it_cannot_find(settings: Settings) -> None:
    import json

    from typer.testing import CliRunner

    from jobs.cli import app

    catalog = open_catalog(settings)
    commit_tables(catalog, tables("a", 2, "r1"), SEGMENT, ["a"], run_id="r1")
    commit_tables(catalog, tables("a", 3, "r2"), SEGMENT, ["a"], run_id="r2")
    runner = CliRunner()
    result = runner.invoke(app, ["sql", "SELECT count(*) AS n FROM shots", "--json", "--as-of", "r1"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == [{"n": 2}]
    result = runner.invoke(app, ["sql", "SELECT count(*) AS n FROM shots", "--as-of", "r9"])
    assert result.exit_code == 2
    assert "'r9' is neither a run whose version the catalog keeps nor an ISO time" in result.stderr


def test_a_dead_runs_half_is_not_published_by_another_jobs_run(settings: Settings, monkeypatch) -> None:
    """Job A's run dies after committing its shots, before its assets; job B's run then commits
    another asset. B's version must not carry A's orphaned shots."""
    catalog = open_catalog(settings)
    commit_tables(catalog, tables("a", 2, "r1"), SEGMENT, ["a"], run_id="r1")
    dies_before_its_assets(catalog, monkeypatch, tables("a", 5, "r2"), run_id="r2")
    commit_tables(catalog, tables("b", 1, "other-job"), SEGMENT, ["b"], run_id="other-job")
    shots = read(catalog, "shots")
    assert sorted(shots["run_id"].to_pylist()) == ["other-job", "r1", "r1"], "r2's orphaned shots are not in"
    joined = sql(catalog, "SELECT a.run_id AS a, s.run_id AS s FROM assets a JOIN shots s USING (asset_id)")
    assert all(x == y for x, y in zip(joined["a"].to_pylist(), joined["s"].to_pylist(), strict=True))
