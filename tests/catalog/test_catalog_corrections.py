"""Curators' corrections in the catalog: kept apart from the machine's rows, folded over them by
every reader, and never undone by a later run's commit."""

from __future__ import annotations

import datetime as dt

import pyarrow as pa
import pytest
from test_catalog import asset_rows, shot_rows

from actors.stage import registry
from catalog import schema
from catalog.corrections import CorrectionError, Edit, UnknownShotError, correct, effective, read_corrections
from catalog.iceberg import open_catalog, read
from catalog.settings import Settings
from catalog.versions import latest_version
from indexes.view import CatalogView, table_snapshots
from jobs.commit import commit_tables

STAGES = [registry()[name] for name in ("segment", "visual", "text")]


def machine_tables(asset: str, run_id: str, caption: str, tags: list[str]) -> dict[str, pa.Table]:
    """A run's rows of one asset with two shots: every shot captioned `caption` and tagged `tags`."""
    assets = asset_rows(asset, run_id=run_id)
    assets = assets.set_column(
        assets.schema.get_field_index("shot_count"), "shot_count", pa.array([2], pa.int32())
    )
    shots = shot_rows(asset, 2, run_id)
    stamp = {"run_id": run_id, "pipeline_version": "p1"}
    ids = shots["shot_id"].to_pylist()
    captions = [
        {"shot_id": s, "asset_id": asset, "caption": caption, "method": "composed/v1", **stamp} for s in ids
    ]
    tag_rows = [
        {
            "shot_id": s,
            "asset_id": asset,
            "kind": "imagenet",
            "label": label,
            "score": 0.5,
            "rank": r,
            **stamp,
        }
        for s in ids
        for r, label in enumerate(tags, start=1)
    ]
    return {
        "assets": assets,
        "shots": shots,
        "captions": pa.Table.from_pylist(captions, schema=schema.CAPTIONS),
        "tags": pa.Table.from_pylist(tag_rows, schema=schema.TAGS),
    }


def view_of(catalog) -> CatalogView:
    return CatalogView.load(catalog, table_snapshots(catalog, latest_version(catalog)))


def test_a_later_run_does_not_undo_a_curators_caption_or_tags(settings: Settings) -> None:
    catalog = open_catalog(settings)
    commit_tables(
        catalog, machine_tables("a", "r1", "A dog.", ["beagle", "lawn"]), STAGES, ["a"], run_id="r1"
    )
    first, second = read(catalog, "shots")["shot_id"].to_pylist()
    correct(
        catalog,
        first,
        Edit("Ada", caption="Rex, the vicar's beagle.", add_tags=("rex",), remove_tags=("lawn",)),
    )
    before = view_of(catalog)

    # A re-run with a changed model rewrites the machine's captions and tags of the asset
    commit_tables(
        catalog, machine_tables("a", "r2", "A brown dog.", ["hound", "lawn"]), STAGES, ["a"], run_id="r2"
    )
    assert read(catalog, "captions")["caption"].to_pylist() == ["A brown dog.", "A brown dog."]
    after = view_of(catalog)
    assert after.key != before.key
    row, other = after.row_of[first], after.row_of[second]
    assert after.captions[row] == "Rex, the vicar's beagle." and after.captions[other] == "A brown dog."
    detail = after.shot_detail(row)
    assert detail["tags"] == ["hound", "rex"] and detail["machine_caption"] == "A brown dog."
    assert detail["caption_corrected"]["curator"] == "Ada"
    assert after.shot_detail(other)["tags"] == ["hound", "lawn"]
    assert read_corrections(catalog).num_rows == 3  # the run wrote none of them, and removed none


def test_the_view_reloads_when_a_correction_is_kept(settings: Settings) -> None:
    catalog = open_catalog(settings)
    commit_tables(catalog, machine_tables("a", "r1", "A dog.", ["beagle"]), STAGES, ["a"], run_id="r1")
    shot = read(catalog, "shots")["shot_id"][0].as_py()
    key = view_of(catalog).key
    correct(catalog, shot, Edit("Ada", caption="A beagle."))
    view = view_of(catalog)
    assert view.key != key and view.captions[view.row_of[shot]] == "A beagle."


def test_each_correction_keeps_what_it_replaced(settings: Settings) -> None:
    catalog = open_catalog(settings)
    commit_tables(
        catalog, machine_tables("a", "r1", "A dog.", ["beagle", "lawn"]), STAGES, ["a"], run_id="r1"
    )
    shot = read(catalog, "shots")["shot_id"][0].as_py()
    t0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    correct(catalog, shot, Edit("Ada", caption="A beagle."), at=t0)
    rows = correct(
        catalog,
        shot,
        Edit("Ben", caption="Rex.", add_tags=("rex",), note="his name"),
        at=t0 + dt.timedelta(1),
    )
    assert [(r["field"], r["value"], r["before"]) for r in rows] == [
        ("caption", "Rex.", "A beagle."),
        ("tag_added", "rex", "beagle, lawn"),
    ]
    kept = read_corrections(catalog, shot).to_pylist()
    assert {r["curator"] for r in kept} == {"Ada", "Ben"} and all(r["asset_id"] == "a" for r in kept)
    folded = effective(kept)
    winner = folded.corrected_caption(shot)
    assert folded.caption(shot, "A dog.") == "Rex." and winner is not None and winner["note"] == "his name"
    assert [r["value"] for r in folded.history[shot]] == ["A beagle.", "Rex.", "rex"]


def test_the_latest_action_on_a_label_wins_whatever_the_order_read() -> None:
    t = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)

    def row(field: str, value: str, days: int) -> dict:
        return {
            "shot_id": "s",
            "field": field,
            "value": value,
            "at": t + dt.timedelta(days),
            "curator": "Ada",
        }

    rows = [row("tag_removed", "Beagle", 3), row("tag_added", "beagle", 1), row("tag_added", "rex", 2)]
    folded = effective(rows)
    assert folded.tags("s", ["beagle", "lawn"]) == ["lawn", "rex"]
    assert effective([*rows, row("tag_added", "beagle", 4)]).tags("s", ["lawn"]) == ["beagle", "lawn", "rex"]
    assert effective([]).tags("s", ["lawn"]) == ["lawn"] and effective([]).caption("s", "A dog.") == "A dog."


def test_bad_corrections_are_refused_and_nothing_is_written(settings: Settings) -> None:
    catalog = open_catalog(settings)
    commit_tables(catalog, machine_tables("a", "r1", "A dog.", ["beagle"]), STAGES, ["a"], run_id="r1")
    shot = read(catalog, "shots")["shot_id"][0].as_py()
    with pytest.raises(UnknownShotError, match="is not in the catalog"):
        correct(catalog, "f" * 32, Edit("Ada", caption="A dog."))
    for edit, message in (
        (Edit("Ada", caption="  "), "a corrected caption cannot be empty"),
        (Edit(" ", caption="A dog."), "the curator's name is required"),
        (Edit("A" * 81, caption="A dog."), "at most 80 characters"),
        (Edit("Ada"), "nothing to correct"),
        (Edit("Ada", add_tags=("x" * 101,)), "a tag is at most 100 characters"),
    ):
        with pytest.raises(CorrectionError, match=message):
            correct(catalog, shot, edit)
    assert read_corrections(catalog).num_rows == 0
    # a label both removed and added ends added: removals are applied first
    correct(catalog, shot, Edit("Ada", add_tags=("Beagle",), remove_tags=("beagle",)))
    assert effective(read_corrections(catalog)).tags(shot, ["beagle"]) == ["beagle"]
