"""The checks a plan passes before any data flows, so a spec that cannot run fails at load.

Every column a stage reads must come from the run's source, an earlier stage,
or, for shot stages in a run that does not segment, the shots already in the
catalog; no two stages may own the same catalog rows or columns.
"""

from __future__ import annotations

from actors.stage import SOURCE_COLUMNS, PlanError, Stage, check_stages, registry
from catalog.schema import ASSET_PROBE, SHOT

CATALOG_SHOT_COLUMNS = frozenset(SHOT.names) | frozenset(ASSET_PROBE.names)
"""What a run that does not segment reads back from the catalog for its shot stages."""


def check_plan(stages: list[type[Stage]]) -> None:
    """Raise PlanError naming the stage and the column when these stages cannot run together."""
    if not stages:
        raise PlanError("stages: no stage is enabled, so the run would do nothing")
    check_stages(stages)
    provided = set(SOURCE_COLUMNS)
    fans_out = any(s.fans_out for s in stages)
    for stage in stages:
        available = provided | (CATALOG_SHOT_COLUMNS if stage.level == "shot" and not fans_out else set())
        missing = [column for column in stage.reads if column not in available]
        if missing:
            raise PlanError(f"{_where(stage)} reads {missing[0]}, {_who_writes(missing[0])}")
        provided |= set(stage.writes.names)


def _where(stage: type[Stage]) -> str:
    return f"stages.{stage.group.name}.{stage.name}" if stage.group else f"stages.{stage.name}"


def _who_writes(column: str) -> str:
    writers = [s for s in registry().values() if column in s.writes.names]
    if not writers:
        return "which no stage writes"
    return f"which no earlier stage of this run writes: enable {_where(writers[0])}, which does"
