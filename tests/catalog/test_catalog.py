"""The catalog: commits replace an asset's rows whole, state remembers what is done,
and analysts reach it with SQL."""

from __future__ import annotations

import datetime as dt
import json

import pyarrow as pa
import pytest
from typer.testing import CliRunner

from catalog import schema
from catalog.iceberg import open_catalog, read, replace_assets, table
from catalog.query import QueryError, sql
from catalog.settings import Settings
from catalog.state import StateStore
from jobs.cli import app


def asset_rows(*ids: str, run_id: str = "r1", status: str = "ok") -> pa.Table:
    now = dt.datetime.now(dt.UTC)
    return pa.Table.from_pylist(
        [
            {
                "asset_id": i,
                "uri": f"/footage/{i}.mp4",
                "size_bytes": 10,
                "status": status,
                "shot_count": 1,
                "processed_at": now,
                "run_id": run_id,
                "pipeline_version": "p1",
            }
            for i in ids
        ],
        schema=schema.ASSETS,
    )


def shot_rows(asset_id: str, count: int, run_id: str) -> pa.Table:
    return pa.Table.from_pylist(
        [
            {
                "asset_id": asset_id,
                "shot_id": schema.shot_id(asset_id, i * 10, i * 10 + 10),
                "shot_index": i,
                "start_frame": i * 10,
                "end_frame": i * 10 + 10,
                "run_id": run_id,
                "pipeline_version": "p1",
            }
            for i in range(count)
        ],
        schema=schema.SHOTS,
    )


def test_replacing_an_assets_rows_twice_leaves_one_copy(settings: Settings) -> None:
    catalog = open_catalog(settings)
    replace_assets(catalog, "shots", shot_rows("a", 3, "r1"), ["a"], run_id="r1")
    replace_assets(catalog, "shots", shot_rows("b", 2, "r1"), ["b"], run_id="r1")
    replace_assets(catalog, "shots", shot_rows("a", 3, "r2"), ["a"], run_id="r2")
    rows = read(catalog, "shots")
    assert rows.num_rows == 5
    by_asset = {(r["asset_id"], r["run_id"]) for r in rows.to_pylist()}
    assert by_asset == {("a", "r2"), ("b", "r1")}


def test_an_asset_that_lost_its_shots_loses_its_rows(settings: Settings) -> None:
    catalog = open_catalog(settings)
    replace_assets(catalog, "shots", shot_rows("a", 3, "r1"), ["a"], run_id="r1")
    replace_assets(catalog, "shots", shot_rows("a", 0, "r2"), ["a"], run_id="r2")
    assert read(catalog, "shots").num_rows == 0


def test_each_replacement_is_one_snapshot_stamped_with_its_run(settings: Settings) -> None:
    catalog = open_catalog(settings)
    replace_assets(catalog, "assets", asset_rows("a", "b"), ["a", "b"], run_id="r1")
    snapshot = table(catalog, "assets").current_snapshot()
    assert snapshot.summary.additional_properties["archivist.run-id"] == "r1"
    assert read(catalog, "assets").num_rows == 2


def test_a_table_made_by_older_code_gains_the_new_columns(settings: Settings, monkeypatch) -> None:
    catalog = open_catalog(settings)
    narrow = pa.schema([f for f in schema.ASSETS if f.name != "shot_count"])
    monkeypatch.setitem(schema.TABLES, "assets", narrow)
    table(catalog, "assets")
    monkeypatch.setitem(schema.TABLES, "assets", schema.ASSETS)
    assert "shot_count" in table(catalog, "assets").schema().column_names


def test_state_skips_done_assets_and_retries_failed_only_when_asked(settings: Settings) -> None:
    state = StateStore(settings.catalog_url_resolved)
    run_id = state.start_run("nightly", {"name": "nightly"}, "p1")
    state.settle(
        run_id,
        "p1",
        [
            {"asset_id": "ok1", "uri": "u1", "status": "ok"},
            {"asset_id": "bad", "uri": "u2", "status": "failed", "error": "x"},
        ],
    )
    assert state.settled("p1", ["ok1", "bad", "new"]) == {"ok1", "bad"}
    assert state.settled("p1", ["ok1", "bad", "new"], retry_failed=True) == {"ok1"}
    assert state.settled("p2", ["ok1"]) == set()
    state.record_step(run_id, "segment", rows=4, failures=1, seconds=2.0)
    state.finish_run(run_id, "succeeded", summary={"shots": 4})
    run = state.run(run_id)
    assert run.status == "succeeded" and run.finished_at is not None
    assert [(s.step, s.rows, s.failures) for s in run.steps] == [("segment", 4, 1)]


def test_state_migrations_run_again_harmlessly(settings: Settings) -> None:
    StateStore(settings.catalog_url_resolved)
    StateStore(settings.catalog_url_resolved)


def test_fingerprints_are_reused_only_while_the_file_is_unchanged(settings: Settings) -> None:
    state = StateStore(settings.catalog_url_resolved)
    state.remember_fingerprints([("/f/a.mp4", "10:100", "aaa")])
    assert state.known_fingerprints({"/f/a.mp4": "10:100"}) == {"/f/a.mp4": "aaa"}
    assert state.known_fingerprints({"/f/a.mp4": "11:200"}) == {}


def test_sql_reads_the_current_snapshot(settings: Settings) -> None:
    catalog = open_catalog(settings)
    replace_assets(catalog, "assets", asset_rows("a", "b"), ["a", "b"], run_id="r1")
    replace_assets(catalog, "assets", asset_rows("b", status="failed"), ["b"], run_id="r2")
    rows = sql(catalog, "SELECT status, count(*) AS n FROM assets GROUP BY status ORDER BY status")
    assert rows.to_pylist() == [{"status": "failed", "n": 1}, {"status": "ok", "n": 1}]


def test_bad_sql_is_a_clear_error_listing_the_tables(settings: Settings) -> None:
    catalog = open_catalog(settings)
    with pytest.raises(QueryError, match="assets, shots"):
        sql(catalog, "SELECT * FROM no_such_table")
    with pytest.raises(QueryError, match="empty"):
        sql(catalog, "  ")


def test_sql_command_prints_json_and_csv(settings: Settings) -> None:
    replace_assets(open_catalog(settings), "assets", asset_rows("a"), ["a"], run_id="r1")
    runner = CliRunner()
    result = runner.invoke(app, ["sql", "SELECT asset_id, status FROM assets", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == [{"asset_id": "a", "status": "ok"}]
    result = runner.invoke(app, ["sql", "SELECT asset_id, status FROM assets", "--csv"])
    assert result.stdout.splitlines() == ["asset_id,status", "a,ok"]
    result = runner.invoke(app, ["sql", "SELEC nonsense"])
    assert result.exit_code == 2
    assert "error" in result.stderr


def test_append_adds_and_replace_all_replaces_the_whole_table(settings: Settings) -> None:
    import datetime as dt

    from catalog.iceberg import append, replace_all

    catalog = open_catalog(settings)
    event = {
        "event_id": "e1",
        "user_id": "u1",
        "shot_id": "s1",
        "kind": "view",
        "at": dt.datetime.now(dt.UTC),
    }
    append(catalog, "events", pa.Table.from_pylist([event], schema=schema.EVENTS))
    append(catalog, "events", pa.Table.from_pylist([{**event, "event_id": "e2"}], schema=schema.EVENTS))
    assert read(catalog, "events").num_rows == 2
    groups = pa.Table.from_pylist(
        [{"shot_id": "s1", "dup_group": "s1", "group_size": 1}], schema=schema.DUP_GROUPS
    )
    replace_all(catalog, "dup_groups", groups, run_id="r1")
    replace_all(catalog, "dup_groups", groups, run_id="r2")
    assert read(catalog, "dup_groups")["run_id"].to_pylist() == [None]  # rows carry what they were given


def test_a_commit_that_lost_a_race_to_another_run_is_made_again(settings: Settings, monkeypatch) -> None:
    """Two runs of different assets commit at once: the second's view of the table is stale,
    and the other run's file spans its asset ids; both runs' rows must land."""
    import catalog.iceberg as iceberg

    catalog = open_catalog(settings)
    replace_assets(catalog, "assets", asset_rows("m0"), ["m0"], run_id="r0")
    stale = [table(catalog, "assets")]
    replace_assets(catalog, "assets", asset_rows("a0", "z0", run_id="r1"), ["a0", "z0"], run_id="r1")
    loaded = iceberg.table
    monkeypatch.setattr(iceberg, "table", lambda c, name: stale.pop() if stale else loaded(c, name))
    replace_assets(catalog, "assets", asset_rows("m0", run_id="r2"), ["m0"], run_id="r2")
    runs = {r["asset_id"]: r["run_id"] for r in read(catalog, "assets").to_pylist()}
    assert runs == {"a0": "r1", "z0": "r1", "m0": "r2"}
