"""The stage contract and the plan built from it, checked without Ray: what each stage
declares, the errors a plan that cannot run gives at spec load, and how rows become tables."""

from __future__ import annotations

import inspect
import json

import pyarrow as pa
import pytest

from actors.phash import PerceptualHasher
from actors.safety import SafetyScorer
from actors.segment import Segmenter
from actors.stage import Owned, PlanError, Stage, registry
from catalog import schema
from jobs.plan import ASSET_ROWS, BUSY_PREFIX, StageActor, carry, plan_steps
from jobs.plan_check import check_plan
from jobs.rows import catalog_rows
from jobs.spec import SpecError, default_spec, only_stages, parse_spec
from jobs.stage_docs import stage_reference


def test_every_stage_takes_exactly_its_declared_parameters() -> None:
    """One declaration: `setup` has no parameter of its own and no default a spec cannot see."""
    for stage in registry().values():
        setup = inspect.signature(stage.setup).parameters
        taken = {name for name, p in setup.items() if p.kind is p.KEYWORD_ONLY}
        declared = set(stage.Params.model_fields)
        if any(p.kind is p.VAR_KEYWORD for p in setup.values()):  # passes them on whole
            assert taken <= declared | set(stage.context), stage.name
            continue
        assert taken == declared | (taken & set(stage.context)), stage.name
        assert all(setup[name].default is inspect.Parameter.empty for name in declared), stage.name


def test_every_stage_writes_what_it_owns_into_catalog_tables() -> None:
    for stage in registry().values():
        for owned in stage.owns:
            table = schema.TABLES[owned.table]
            assert all(c in table.names for c in owned.columns or ()), stage.name
            assert owned.where is None or owned.where[0] in table.names, stage.name


def test_the_spec_is_derived_from_the_registry() -> None:
    spec = default_spec("./footage")
    names = [e.stage.name for e in spec.enabled()]
    assert names[:2] == ["speech", "segment"] and names[-1] == "text"  # remaster: asked for, not assumed
    assert "remaster" not in names and "remaster" in registry()
    assert spec.stages.keyframes.phash.enabled and spec.stages.segment.analysis_width == 160
    with pytest.raises(SpecError, match=r"stages\.keyframes\.visual\.top_k"):
        parse_spec({"name": "n", "source": {"uri": "."}, "stages": {"keyframes": {"visual": {"top_k": 0}}}})


def test_a_spec_that_enables_nothing_is_refused() -> None:
    stages = only_stages()
    with pytest.raises(SpecError, match="no stage is enabled"):
        parse_spec({"name": "n", "source": {"uri": "."}, "stages": stages})


def test_keyframe_models_share_one_step_with_the_groups_resources() -> None:
    spec = parse_spec(
        {"name": "n", "source": {"uri": "."}, "stages": {"keyframes": {"resources": {"batch_size": 7}}}}
    )
    steps = plan_steps(spec.enabled())
    assert [s.name for s in steps] == ["speech", "segment", "keyframes", "text"]
    keyframes = steps[2]
    in_group = [s for s in registry().values() if s.group and s.enabled_by_default]
    assert keyframes.resources.batch_size == 7 and [m.stage for m in keyframes.members] == in_group
    assert steps[1].fans_out and not keyframes.fans_out


class _Reads(Stage):
    name = "mood"
    reads = ("tag_labels",)
    writes = pa.schema([pa.field("mood", pa.string())])


class _Twin(Stage):
    name = "twin"
    writes = pa.schema([pa.field("nsfw_level", pa.float32())])
    owns = (Owned("shots", columns=("nsfw_score",)),)


def test_a_stage_reading_what_no_earlier_stage_writes_is_named_with_the_writer() -> None:
    with pytest.raises(PlanError, match=r"stages\.mood reads tag_labels.*stages\.keyframes\.visual"):
        check_plan([Segmenter, _Reads])


def test_two_stages_owning_one_column_are_both_named() -> None:
    with pytest.raises(PlanError, match=r"safety and twin both own column nsfw_score"):
        check_plan([Segmenter, SafetyScorer, _Twin])


def _segment_rows(asset_id: str, shots: int) -> pa.Table:
    rows = []
    for i in range(shots):
        row = dict.fromkeys(schema.SEGMENT_OUTPUT.names)
        row.update(asset_id=asset_id, uri=f"/{asset_id}", size_bytes=1, status="ok", shot_index=i)
        row.update(shot_id=schema.shot_id(asset_id, i, i + 1), start_frame=i, end_frame=i + 1)
        rows.append(row)
    return pa.Table.from_pylist(rows, schema=schema.SEGMENT_OUTPUT)


def test_columns_a_stage_owns_in_another_stages_rows_are_joined_on_by_shot() -> None:
    rows = _segment_rows("a", 3)
    rows = rows.append_column("phash", pa.array([1, 2, 2**64 - 1], pa.uint64()))
    rows = rows.append_column("nsfw_score", pa.array([0.1, None, 0.9], pa.float32()))
    rows = rows.append_column("safety_model", pa.array(["m", None, "m"], pa.string()))
    tables = catalog_rows(rows, [Segmenter, SafetyScorer, PerceptualHasher], run_id="r", pipeline_version="p")
    shots = tables["shots"].to_pylist()
    assert [s["phash"] for s in shots] == [1, 2, -1]  # the same 64 bits, as a signed long
    assert [s["nsfw_score"] for s in shots] == pytest.approx([0.1, None, 0.9], nan_ok=True)
    assert tables["assets"].to_pylist()[0]["shot_count"] == 3
    assert {s["run_id"] for s in shots} == {"r"}
    alone = catalog_rows(rows, [PerceptualHasher], run_id="r", pipeline_version="p")
    assert alone["shots"].column_names == ["shot_id", "asset_id", "phash", "run_id", "pipeline_version"]


def test_seconds_spent_on_an_asset_are_counted_once_not_once_per_shot() -> None:
    """A remaster's 10 s on an asset of 4 shots adds 10 s to its busy time, not 40."""
    assets = pa.table(
        {
            "asset_id": ["a"],
            "uri": ["/a"],
            "size_bytes": [1],
            BUSY_PREFIX + "remaster": pa.array([10.0]),
        }
    )
    out = carry(assets, _segment_rows("a", 4).drop_columns(["uri", "size_bytes"]))
    assert sum(out[BUSY_PREFIX + "remaster"].to_pylist()) == pytest.approx(10.0)
    assert out[ASSET_ROWS].to_pylist() == [4] * 4 and out["uri"].to_pylist() == ["/a"] * 4


def test_a_step_reports_each_members_seconds() -> None:
    actor = StageActor([(PerceptualHasher, PerceptualHasher.Params())], {}, grouped=True, fans_out=False)
    batch = _segment_rows("a", 2).append_column(ASSET_ROWS, pa.array([2, 2], pa.int32()))
    out = actor(batch)
    assert {BUSY_PREFIX + "decode", BUSY_PREFIX + "phash"} <= set(out.column_names)
    assert out["phash"].null_count == 2  # no keyframes on these rows: nulls, not an error


def test_the_stage_reference_lists_every_stage_with_its_parameters() -> None:
    from typer.testing import CliRunner

    from jobs.cli import app

    result = CliRunner().invoke(app, ["stages", "--json"])
    assert result.exit_code == 0, result.output
    reference = {entry["stage"]: entry for entry in json.loads(result.stdout)}
    assert list(reference) == list(registry()) == [e["stage"] for e in stage_reference()]
    width = next(p for p in reference["segment"]["parameters"] if p["name"] == "analysis_width")
    assert width["default"] == 160 and width["bounds"] == {"ge": 32, "le": 1920}
    assert reference["visual"]["section"] == "stages.keyframes.visual"
    assert "tags: rows where kind in (imagenet)" in reference["visual"]["owns"]
    batch = next(p for p in reference["visual"]["parameters"] if p["name"] == "batch_size")
    assert not batch["changes_output"]
