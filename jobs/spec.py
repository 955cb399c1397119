"""Job specs: what to run, over what, where results go, and when.

A spec is YAML in a few plain sections (source, stages, storage, distribution,
schedule), validated on load; every error names the file and the field,
because the person reading it is an archive team member at 2 a.m., not the
author.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from catalog.settings import Settings
from jobs.audit.config import AuditConfig

PIPELINE_CODE_VERSION = "1"
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


class SpecError(ValueError):
    """A spec that cannot be run, with the place that says why."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Resources(_Section):
    """How a stage is scheduled: where it is wired in, never inside the stage."""

    min_actors: int = Field(1, ge=1)
    max_actors: int = Field(2, ge=1)
    num_cpus: float = Field(1.0, gt=0)
    num_gpus: float = Field(0.0, ge=0)
    batch_size: int = Field(4, ge=1)
    spread: bool = Field(False, description="place the stage's actors on as many nodes as possible")

    @field_validator("num_gpus")
    @classmethod
    def _whole_above_one(cls, value: float) -> float:
        if value > 1 and not value.is_integer():
            raise ValueError("a fraction of a GPU must be below 1; above 1 ask for whole GPUs")
        return value


class StageSpec(_Section):
    enabled: bool = True
    resources: Resources = Resources()

    def params(self) -> dict[str, Any]:
        """The keyword arguments the stage class is built with."""
        return self.model_dump(exclude={"enabled", "resources"})


class SegmentSpec(StageSpec):
    analysis_width: int = Field(160, ge=32, le=1920)
    keyframe_max_side: int = Field(384, ge=64, le=4096)
    threshold: float | None = Field(None, gt=0, description="cut threshold; None: the detector's default")
    min_shot_frames: int | None = Field(None, ge=1)
    detect_gradual: bool = True

    def params(self) -> dict[str, Any]:
        return {k: v for k, v in super().params().items() if v is not None}


class ModelSpec(_Section):
    """One model of the keyframe stages: whether it runs and its parameters. Every
    model that loads weights also takes `weights`/`model` overrides, so a cluster with
    larger weights swaps them in here."""

    enabled: bool = True
    device: str | None = None

    def params(self) -> dict[str, Any]:
        return {k: v for k, v in self.model_dump(exclude={"enabled"}).items() if v is not None}


class VisualSpec(ModelSpec):
    model: str = "efficientnet-lite0"
    weights: str | None = Field(None, description="a local .pth to use instead of the packaged weights")
    top_k: int = Field(5, ge=1, le=50)


class ObjectsSpec(ModelSpec):
    weights: str | None = None
    score_threshold: float = Field(0.5, ge=0, le=1)


class OcrSpec(ModelSpec):
    det_weights: str | None = None
    rec_weights: str | None = None
    min_score: float = Field(0.8, ge=0, le=1)
    upscale_below: int = Field(720, ge=0, description="keyframes smaller than this are upscaled 2x first")
    early_exit: bool = True


class FacesSpec(ModelSpec):
    weights: str | None = None
    score_threshold: float = Field(0.5, gt=0, le=1)
    min_attribute_size: int = Field(32, ge=8, description="smaller faces get a box but no perceptions")


class SafetySpec(ModelSpec):
    weights: str | None = None


class PlainSpec(ModelSpec):
    """A keyframe stage with no model and no parameters."""


class KeyframesSpec(_Section):
    """The models that look at keyframes, run in one actor over one decode of each batch."""

    enabled: bool = True
    resources: Resources = Resources(batch_size=16)
    visual: VisualSpec = VisualSpec()
    objects: ObjectsSpec = ObjectsSpec()
    ocr: OcrSpec = OcrSpec()
    faces: FacesSpec = FacesSpec()
    safety: SafetySpec = SafetySpec()
    technical: PlainSpec = PlainSpec()
    phash: PlainSpec = PlainSpec()

    def models(self) -> dict[str, ModelSpec]:
        """The models that run: none when the section is disabled."""
        if not self.enabled:
            return {}
        return {name: spec for name, spec in self if isinstance(spec, ModelSpec) and spec.enabled}

    def params(self) -> dict[str, Any]:
        return {name: spec.params() for name, spec in self.models().items()}


class SpeechSpec(StageSpec):
    model: str | None = Field(None, description="a faster-whisper model name or CTranslate2 folder")
    compute_type: str = "int8"
    vad_filter: bool = True
    language: str | None = None
    beam_size: int = Field(5, ge=1, le=10)


class RemasterSpec(StageSpec):
    """Restore and upscale each asset into a preservation master and an access copy."""

    enabled: bool = False  # hours of CPU for an archive: asked for, not assumed
    restore: str = Field("auto", description="'auto', 'off', or operations separated by commas")
    upscale: Literal[1, 2, 4] = 2
    upscale_method: Literal["network", "lanczos"] = "network"
    weights: str | None = Field(None, description="upscaler weights instead of the committed ones")
    crf: int = Field(18, ge=0, le=51, description="quality of the H.264 access copy")
    out: str | None = Field(None, description="where outputs go; default: masters/ under the home")

    @field_validator("restore")
    @classmethod
    def _known_operations(cls, value: str) -> str:
        from actors.restore import parse_ops

        parse_ops(value)
        return value

    def params(self) -> dict[str, Any]:
        return {k: v for k, v in super().params().items() if v is not None}


class TextSpec(StageSpec):
    model: str | None = Field(None, description="a sentence-transformers model name or folder")
    captioner: str | None = Field(None, description="a VLM to write captions; none composes them")
    concept_top_k: int = Field(5, ge=1, le=50)


class Stages(_Section):
    speech: SpeechSpec = SpeechSpec()
    remaster: RemasterSpec = RemasterSpec(resources=Resources(batch_size=1))
    segment: SegmentSpec = SegmentSpec(resources=Resources(batch_size=1))
    keyframes: KeyframesSpec = KeyframesSpec()
    text: TextSpec = TextSpec(resources=Resources(batch_size=32, max_actors=1))


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

    stage_every_assets: int = Field(16, ge=1, description="stage finished assets durably every N assets")
    stage_every_seconds: float = Field(30.0, gt=0, description="… or at least this often")


class JobSpec(_Section):
    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")
    source: SourceSpec
    stages: Stages = Stages()
    storage: StorageSpec = StorageSpec()
    distribution: DistributionSpec = DistributionSpec()
    audit: AuditConfig | None = Field(None, description="audit each run after its commit (see jobs/audit)")
    schedule: ScheduleSpec | None = None
    retry_failed: bool = False

    def settings(self, base: Settings | None = None) -> Settings:
        return (base or Settings()).with_overrides(self.storage.model_dump())

    def pipeline_version(self) -> str:
        """Names what the stages would produce, so a changed parameter re-runs assets
        and a changed resource request does not."""
        stages = {name: spec.params() for name, spec in self.stages if spec.enabled}
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
        raise SpecError(_describe(exc, origin)) from None


def default_spec(source_uri: str, *, name: str = "adhoc") -> JobSpec:
    """The default pipeline over a folder or URL, as `archivist run FOLDER` runs it."""
    return JobSpec(name=name, source=SourceSpec(uri=source_uri))


def _describe(exc: ValidationError, origin: str) -> str:
    lines = []
    for error in exc.errors():
        field = ".".join(str(part) for part in error["loc"]) or "(top level)"
        message = error["msg"]
        if error["type"] == "extra_forbidden":
            message = "unknown field (check its spelling)"
        elif error["type"] == "missing":
            message = "required field is missing"
        lines.append(f"{origin}: {field}: {message}")
    return "\n".join(lines)
