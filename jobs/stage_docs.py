"""What each stage is and takes, derived from the registry: the reference of the job spec's
`stages:` section that `archivist stages` prints, so the docs cannot drift from the code."""

from __future__ import annotations

from typing import Any

from actors.stage import RUNTIME, Stage, registry


def stage_reference() -> list[dict[str, Any]]:
    """One entry per registered stage, in plan order."""
    return [_entry(stage) for stage in registry().values()]


def _entry(stage: type[Stage]) -> dict[str, Any]:
    section = f"stages.{stage.group.name}.{stage.name}" if stage.group else f"stages.{stage.name}"
    resources = stage.group.resources if stage.group else stage.resources
    return {
        "stage": stage.name,
        "section": section,
        "about": (stage.__doc__ or "").strip().split("\n\n")[0],
        "level": stage.level,
        "enabled_by_default": stage.enabled_by_default,
        "reads": list(stage.reads),
        "uses": list(stage.uses),
        "writes": list(stage.writes.names),
        "owns": [_owned(o.table, o.columns, o.where) for o in stage.owns],
        "resources": resources.model_dump(),
        "parameters": [_parameter(name, field) for name, field in stage.Params.model_fields.items()],
    }


def _owned(table: str, columns: tuple[str, ...] | None, where: tuple[str, tuple[str, ...]] | None) -> str:
    if columns is not None:
        return f"{table}: columns {', '.join(columns)}"
    if where is not None:
        return f"{table}: rows where {where[0]} in ({', '.join(where[1])})"
    return f"{table}: rows"


def _parameter(name: str, field: Any) -> dict[str, Any]:
    bounds = {
        key: getattr(m, key) for m in field.metadata for key in ("ge", "gt", "le", "lt") if hasattr(m, key)
    }
    return {
        "name": name,
        "type": str(field.annotation).replace("typing.", ""),
        "default": field.default,
        "bounds": bounds,
        "description": field.description or "",
        "changes_output": (field.json_schema_extra or {}) != RUNTIME,
    }
