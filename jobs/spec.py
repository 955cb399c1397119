"""Job specs: what to run, over what, where results go, and when.

A spec is YAML in a few plain sections (source, stages, storage, distribution,
schedule), validated on load; every error names the file and the field,
because the person reading it is an archive team member at 2 a.m., not the
author.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    create_model,
    field_validator,
    model_validator,
)

from actors.stage import Group, PlanError, Resources, Stage, StageParams, registry
from catalog.settings import Settings
from jobs.audit.config import AuditConfig
from jobs.errors import SpecError
from jobs.plan_check import check_plan

PIPELINE_CODE_VERSION = "2"
"""Bump when a stage's output changes for the same parameters."""

MEDIA_PATTERNS = [
    "*.mp4",
    "*.mov",
    "*.mkv",
    "*.avi",
    "*.mxf",
    "*.webm",
    "*.mpg",
    "*.mpeg",
    "*.m4v",
    "*.ts",
    "*.dv",
    "*.wmv",
    "*.flv",
    "*.ogv",
]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _section(stage: type[Stage]) -> type[BaseModel]:
    """A stage's section of the spec: its parameters, whether it runs, and (unless it is part
    of a group) its resources."""
    fields: dict[str, Any] = {"enabled": (bool, stage.enabled_by_default)}
    if stage.group is None:
        fields["resources"] = (Resources, stage.resources)
    return create_model(
        f"{stage.name.title()}Section", __base__=stage.Params, __doc__=stage.__doc__, **fields
    )


def _group_section(group: Group, members: list[type[Stage]]) -> type[BaseModel]:
    fields: dict[str, Any] = {"enabled": (bool, True), "resources": (Resources, group.resources)}
    for member in members:
        section = _section(member)
        fields[member.name] = (section, section())
    return create_model(f"{group.name.title()}Section", __base__=_Section, __doc__=group.doc, **fields)


def _stages_section() -> type[BaseModel]:
    """The `stages:` section, one field per stage (or group of stages) of the registry."""
    fields: dict[str, Any] = {}
    groups: dict[str, tuple[Group, list[type[Stage]]]] = {}
    for stage in registry().values():
        if stage.group is None:
            section = _section(stage)
            fields[stage.name] = (section, section())
        else:
            groups.setdefault(stage.group.name, (stage.group, []))[1].append(stage)
            fields.setdefault(stage.group.name, None)  # the group's place in plan order
    for name, (group, members) in groups.items():
        section = _group_section(group, members)
        fields[name] = (section, section())
    return create_model("Stages", __base__=_Section, **fields)


Stages = _stages_section()


@dataclass(frozen=True)
class EnabledStage:
    """A stage the spec runs, with its parameters and where the plan schedules it."""

    stage: type[Stage]
    params: StageParams
    resources: Resources


def only_stages(**sections: dict[str, Any]) -> dict[str, Any]:
    """A `stages:` section that runs only the named stages, each with its given parameters (a
    member of a group by its own name: `phash={}`); every other stage is disabled. For one-off
    runs such as `archivist remaster`, which must not touch what other stages own."""
    body: dict[str, Any] = {}
    for stage in registry().values():
        if stage.group is None:
            body[stage.name] = {"enabled": False}
        else:
            group = body.setdefault(stage.group.name, {"enabled": False})
            group[stage.name] = {"enabled": False}
    stages = registry()
    for name, params in sections.items():
        if name not in stages:
            raise SpecError(f"stages.{name}: no such stage (stages are {', '.join(stages)})")
        group = stages[name].group
        if group is None:
            body[name] = {**params, "enabled": True}
        else:
            body[group.name].update({"enabled": True, name: {**params, "enabled": True}})
    return body


def enabled_stages(stages: BaseModel) -> list[EnabledStage]:
    """The stages a `stages:` section runs, in plan order; a group's members share its resources."""
    enabled = []
    for stage in registry().values():
        if stage.group is None:
            section = getattr(stages, stage.name)
            resources = section.resources
        else:
            group = getattr(stages, stage.group.name)
            section, resources = getattr(group, stage.name), group.resources
            if not group.enabled:
                continue
        if section.enabled:
            params = stage.Params.model_validate(section.model_dump(include=set(stage.Params.model_fields)))
            enabled.append(EnabledStage(stage, params, resources))
    return enabled


class SourceSpec(_Section):
    uri: str = Field(description="a folder, a file, or an fsspec URL such as s3://bucket/prefix")
    include: list[str] = Field(default_factory=lambda: list(MEDIA_PATTERNS))
    exclude: list[str] = Field(default_factory=list)
    storage_options: dict[str, Any] = Field(default_factory=dict)


class StorageSpec(_Section):
    """Per-job overrides of the ARCHIVIST_* settings."""

    home: str | None = None
    catalog_url: str | None = None
    ray_address: str | None = None
    s3_endpoint_url: str | None = None
    s3_access_key_id: str | None = None
    s3_secret_access_key: str | None = None
    s3_region: str | None = None


class ScheduleSpec(_Section):
    cron: str = Field(description="five-field crontab, e.g. '0 2 * * *'")
    timezone: str = "UTC"

    @field_validator("cron")
    @classmethod
    def _crontab(cls, value: str) -> str:
        from jobs.cron import cron_trigger

        try:
            cron_trigger(value)
        except ValueError as exc:
            raise ValueError(f"not a valid crontab expression: {exc}") from exc
        return value


class DistributionSpec(_Section):
    """How a run spreads and saves its work (not what it computes)."""

    spool_every_assets: int = Field(16, ge=1, description="stage finished assets durably every N assets")
    spool_every_seconds: float = Field(30.0, gt=0, description="… or at least this often")
    replans: int = Field(
        2, ge=0, le=10, description="times a run plans its unfinished assets again after Ray loses a worker"
    )


class JobSpec(_Section):
    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")
    source: SourceSpec
    stages: Stages = Stages()  # type: ignore[valid-type]
    storage: StorageSpec = StorageSpec()
    distribution: DistributionSpec = DistributionSpec()
    audit: AuditConfig | None = Field(None, description="audit each run after its commit (see jobs/audit)")
    schedule: ScheduleSpec | None = None
    retry_failed: bool = False

    def settings(self, base: Settings | None = None) -> Settings:
        return (base or Settings()).with_overrides(self.storage.model_dump())

    @model_validator(mode="after")
    def _runnable(self) -> JobSpec:
        try:
            check_plan([e.stage for e in self.enabled()])
        except PlanError as exc:
            raise ValueError(str(exc)) from None
        return self

    def enabled(self) -> list[EnabledStage]:
        return enabled_stages(self.stages)

    def pipeline_version(self) -> str:
        """Names what the stages would produce, so a changed parameter re-runs assets
        and a changed resource request (or batch size, or device) does not."""
        stages = {e.stage.name: e.params.versioned() for e in self.enabled()}
        digest = hashlib.sha256(json.dumps(stages, sort_keys=True).encode()).hexdigest()[:10]
        return f"p{PIPELINE_CODE_VERSION}-{digest}"


def load_spec(path: str | Path) -> JobSpec:
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise SpecError(f"{path}: cannot read the job spec ({exc.strerror})") from exc
    return parse_spec_text(text, origin=str(path))


def parse_spec_text(text: str, *, origin: str) -> JobSpec:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise SpecError(f"{origin}:{where}: not valid YAML: {getattr(exc, 'problem', exc)}") from exc
    if not isinstance(data, dict):
        raise SpecError(f"{origin}: a job spec is a mapping with sections source, stages, storage, schedule")
    return parse_spec(data, origin=origin)


def parse_spec(data: dict[str, Any], *, origin: str = "<spec>") -> JobSpec:
    try:
        return JobSpec.model_validate(data)
    except ValidationError as exc:
        raise SpecError(_validation_text(exc, origin)) from None


def default_spec(source_uri: str, *, name: str = "adhoc") -> JobSpec:
    """The default pipeline over a folder or URL, as `archivist run FOLDER` runs it."""
    return JobSpec(name=name, source=SourceSpec(uri=source_uri))


def _validation_text(exc: ValidationError, origin: str) -> str:
    lines = []
    for error in exc.errors():
        field = ".".join(str(part) for part in error["loc"]) or "(top level)"
        message = error["msg"]
        if error["type"] == "value_error" and "error" in error.get("ctx", {}):
            message = str(error["ctx"]["error"])
        elif error["type"] == "extra_forbidden":
            message = "unknown field (check its spelling)"
        elif error["type"] == "missing":
            message = "required field is missing"
        lines.append(f"{origin}: {field}: {message}")
    return "\n".join(lines)
