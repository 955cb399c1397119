"""The spool: finished assets survive the run that made them, and are committed once."""

from __future__ import annotations

import pyarrow as pa

from actors.segment import Segmenter
from catalog import schema
from catalog.settings import Settings
from catalog.state import StateStore
from jobs.plan import ASSET_ROWS, BUSY_PREFIX
from jobs.spool import AssetAssembler, Spooler, discard, read_spooled


def described(asset_id: str, shots: int, *, failed: bool = False) -> pa.Table:
    """What the stages emit for one asset: a row per shot (one null-shot row if it failed)."""
    rows = []
    for i in range(max(shots, 1)):
        row = {name: None for name in schema.SEGMENT_OUTPUT.names}
        row.update(
            asset_id=asset_id,
            uri=f"/f/{asset_id}.mp4",
            size_bytes=1,
            status="failed" if failed else "ok",
            error="broken" if failed else None,
        )
        if not failed:
            row.update(
                shot_id=schema.shot_id(asset_id, i, i + 1), shot_index=i, start_frame=i, end_frame=i + 1
            )
        rows.append(row)
    table = pa.Table.from_pylist(rows, schema=schema.SEGMENT_OUTPUT)
    table = table.append_column(BUSY_PREFIX + "segment", pa.array([0.5] * len(rows), pa.float64()))
    return table.append_column(ASSET_ROWS, pa.array([len(rows)] * len(rows), pa.int32()))


def test_an_asset_is_complete_only_when_all_its_rows_arrived() -> None:
    assembler = AssetAssembler()
    a, b = described("a", 3), described("b", 1)
    assert list(assembler.add(pa.concat_tables([a.slice(0, 2), b]))) == [b]
    assert assembler.incomplete() == ["a"]
    (done,) = assembler.add(a.slice(2))
    assert done.num_rows == 3 and assembler.incomplete() == []


def test_spooled_assets_are_recorded_and_read_back_whole(settings: Settings) -> None:
    state = StateStore(settings.catalog_url_resolved)
    spooler = Spooler(
        settings, state, run_id="r1", pipeline_version="p1", stages=[Segmenter], flush_assets=2
    )
    for table in (described("a", 3), described("b", 2), described("c", 0, failed=True)):
        spooler.add(table)
    spooler.flush()
    staged = state.spooled("p1")
    assert set(staged) == {"a", "b", "c"} and len(set(staged.values())) == 2  # two chunks
    assert spooler.shots == 5 and spooler.failed == 1 and spooler.busy["segment"] == 3.0
    tables = read_spooled(settings, staged)
    assert tables["shots"].num_rows == 5
    assert sorted(tables["assets"]["status"].to_pylist()) == ["failed", "ok", "ok"]
    assert state.settled("p1", ["a"]) == set()  # spooled is not done

    only_a = {"a": staged["a"]}
    assert read_spooled(settings, only_a)["shots"].num_rows == 3
    discard(settings, staged.values())
    assert read_spooled(settings, staged) == {}


def test_a_run_adopts_what_finished_runs_spooled_but_not_what_running_ones_did(settings: Settings) -> None:
    state = StateStore(settings.catalog_url_resolved)
    crashed = state.start_run("nightly", {}, "p1")
    busy = state.start_run("weekly", {}, "p1")
    state.spool(crashed, "p1", [{"asset_id": "a", "uri": "/a", "status": "ok"}], "chunk-a")
    state.spool(busy, "p1", [{"asset_id": "b", "uri": "/b", "status": "ok"}], "chunk-b")
    state.finish_run(crashed, "abandoned")
    me = state.start_run("nightly", {}, "p1")
    assert state.spooled("p1", for_run=me) == {"a": "chunk-a"}
    assert state.spooled("p1", for_run=busy) == {"a": "chunk-a", "b": "chunk-b"}
    assert set(state.spooled("p1")) == {"a", "b"}
