"""The one shape of a pipeline stage, and the registry of every stage.

A stage says everything about itself once, as class attributes beside its
code: its name, its parameters (one pydantic model, whose defaults, bounds
and descriptions the job spec and the stage both use), the columns it reads
and writes, the catalog rows it owns and the resources it asks for by
default. The job spec's `stages:` section, the plan and its checks, the rows
of each catalog table and the order in which the dashboard shows a run's
steps are all derived from these declarations, so adding a model is its
module and its test.

Resources are a default, not a decision: the job spec overrides them where
the plan wires the stage in, and the stage never reads them.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from dataclasses import dataclass
from functools import cache
from typing import Any, ClassVar, Literal

import pyarrow as pa
from pydantic import BaseModel, ConfigDict, Field, field_validator

from catalog.schema import ASSET_REF

Level = Literal["asset", "shot"]

SOURCE_COLUMNS = frozenset(ASSET_REF.names)
"""What the run's source hands the first stage: one row per asset."""


class Resources(BaseModel):
    """How a stage is scheduled: decided where it is wired in, never inside the stage."""

    model_config = ConfigDict(extra="forbid")

    min_actors: int = Field(1, ge=1)
    max_actors: int = Field(2, ge=1)
    num_cpus: float = Field(1.0, gt=0)
    num_gpus: float = Field(0.0, ge=0)
    batch_size: int = Field(4, ge=1)
    spread: bool = Field(False, description="place the stage's actors on as many nodes as possible")

    @property
    def threads(self) -> int:
        """Threads each of the stage's actors gives every library pool (torch, onnxruntime,
        OpenCV, OpenMP): its whole CPUs, and one for a share of a CPU."""
        return max(1, int(self.num_cpus))

    @field_validator("num_gpus")
    @classmethod
    def _whole_above_one(cls, value: float) -> float:
        if value > 1 and not value.is_integer():
            raise ValueError("a fraction of a GPU must be below 1; above 1 ask for whole GPUs")
        return value


RUNTIME: dict[str, Any] = {"affects_output": False}
"""`json_schema_extra` of a parameter that changes how a stage runs, not what it produces
(a batch size, a thread count, the device), so changing it does not re-run the archive."""


THREAD_PARAMS = ("threads", "cpu_threads")
"""Names of the runtime parameters that size a library's thread pool; left unset (None or 0),
they take the thread count of the actor the stage runs in (`with_threads`)."""


def with_threads(params: StageParams, threads: int) -> StageParams:
    """`params` with its unset thread parameters set to `threads`: a library that opens its own
    sessions (rapidocr, CTranslate2) then keeps to the actor's share of the cores too."""
    unset = {
        name: threads
        for name in THREAD_PARAMS
        if name in type(params).model_fields and not getattr(params, name)
    }
    return params.model_copy(update=unset) if unset else params


class StageParams(BaseModel):
    """Base of every stage's parameters: defaults, bounds and descriptions, written once."""

    model_config = ConfigDict(extra="forbid", protected_namespaces=())

    def versioned(self) -> dict[str, Any]:
        """The parameters that change the stage's output, which the pipeline version names."""
        fields = type(self).model_fields
        return {
            name: value
            for name, value in self.model_dump(mode="json").items()
            if (fields[name].json_schema_extra or {}) != RUNTIME
        }


class ModelParams(StageParams):
    """Parameters every stage that runs a network takes."""

    device: str | None = Field(
        None, description="'cpu' or 'cuda'; None picks CUDA when present", json_schema_extra=RUNTIME
    )


@dataclass(frozen=True)
class Owned:
    """Rows or columns of a catalog table that one stage writes and a commit replaces.

    With neither `columns` nor `where`, the stage owns the table's rows of an asset
    (less the columns other stages own); with `columns`, only those columns of them;
    with `where`, the rows whose `where[0]` column holds one of the values `where[1]`."""

    table: str
    columns: tuple[str, ...] | None = None
    where: tuple[str, tuple[str, ...]] | None = None

    def overlaps(self, other: Owned) -> bool:
        if self.table != other.table:
            return False
        if self.columns is not None and other.columns is not None:
            return bool(set(self.columns) & set(other.columns))
        if self.where is not None and other.where is not None:
            return self.where[0] != other.where[0] or bool(set(self.where[1]) & set(other.where[1]))
        # rows against columns of the same rows: the row owner yields the columns to the other
        return (self.columns is None and self.where is None) == (
            other.columns is None and other.where is None
        )


@dataclass(frozen=True)
class Group:
    """Stages that run in one actor over one shared preparation of each batch (the keyframe
    models share one decode), configured by one section of the job spec."""

    name: str
    resources: Resources
    doc: str


class Stage:
    """Base of every stage. A subclass declares, as class attributes:

    - `name`: its section in the job spec and its name in the catalog and the dashboard;
    - `Params`: its parameters; `setup` takes exactly these (and the `context` it names);
    - `level`: 'asset' (a row per asset, before shots exist) or 'shot' (a row per shot);
    - `reads`: columns it needs; `uses`: columns it reads when an earlier stage wrote them;
    - `writes`: the columns it adds (an Arrow schema);
    - `owns`: the catalog rows or columns it writes (`catalog_rows` makes them);
    - `resources`, `group`, `enabled_by_default`.

    `__init__` validates the parameters and calls `setup` once (models load there, once
    per actor); `__call__` maps one batch to the next and never raises for one bad item.
    """

    name: ClassVar[str]
    Params: ClassVar[type[StageParams]] = StageParams
    level: ClassVar[Level] = "shot"
    fans_out: ClassVar[bool] = False
    reads: ClassVar[tuple[str, ...]] = ()
    uses: ClassVar[tuple[str, ...]] = ()
    writes: ClassVar[pa.Schema] = pa.schema([])
    owns: ClassVar[tuple[Owned, ...]] = ()
    resources: ClassVar[Resources] = Resources()
    group: ClassVar[Group | None] = None
    context: ClassVar[tuple[str, ...]] = ()
    enabled_by_default: ClassVar[bool] = True

    def __init__(self, params: StageParams | None = None, /, **kwargs: Any) -> None:
        context = {key: kwargs.pop(key) for key in self.context if key in kwargs}
        if params is not None and kwargs:
            raise TypeError(f"{self.name}: give either a {self.Params.__name__} or its fields, not both")
        self.params = params if params is not None else self.Params(**kwargs)
        self.setup(**dict(self.params), **context)

    def setup(self, *args: Any, **params: Any) -> None:
        """Load what the stage needs, once; takes the fields of `Params` and of `context` (as
        keywords: the loose signature lets each stage name exactly the ones it takes)."""

    def __call__(self, batch: pa.Table) -> pa.Table:
        raise NotImplementedError

    @classmethod
    def catalog_rows(cls, rows: pa.Table) -> dict[str, pa.Table]:
        """The stage's rows of the tables it owns, from the rows of finished assets (without
        the run's bookkeeping columns, which the run adds)."""
        return {}


class PlanError(ValueError):
    """Stages that cannot run together as declared; the message names them."""


def check_stages(stages: list[type[Stage]]) -> None:
    """Raise if two of these stages own the same catalog column or rows."""
    claims: list[tuple[type[Stage], Owned]] = [(s, o) for s in stages for o in s.owns]
    for i, (stage, owned) in enumerate(claims):
        for other, theirs in claims[i + 1 :]:
            if other is not stage and owned.overlaps(theirs):
                raise PlanError(
                    f"stages {stage.name} and {other.name} both own {_owned(owned)} of table {owned.table}"
                )
    for stage in stages:
        shared = set(stage.writes.names) & set().union(*(s.writes.names for s in stages if s is not stage))
        if shared:
            other = next(s for s in stages if s is not stage and shared & set(s.writes.names))
            raise PlanError(f"stages {stage.name} and {other.name} both write column {sorted(shared)[0]}")


def _owned(owned: Owned) -> str:
    if owned.columns is not None:
        return "column " + ", ".join(owned.columns)
    if owned.where is not None:
        return f"rows where {owned.where[0]} is {', '.join(owned.where[1])}"
    return "rows"


@cache
def registry() -> dict[str, type[Stage]]:
    """Every stage of the `actors` package by name, in the order their modules sort.

    A stage is found by being a `Stage` subclass with a `name` in a module of this
    package, so a new stage is registered by writing its module."""
    import actors

    found: dict[str, type[Stage]] = {}
    for module in sorted(m.name for m in pkgutil.walk_packages(actors.__path__, "actors.")):
        for _, cls in inspect.getmembers(importlib.import_module(module), inspect.isclass):
            if issubclass(cls, Stage) and "name" in vars(cls) and cls.__module__ == module:
                if cls.name in found and found[cls.name] is not cls:
                    raise PlanError(f"two stages are named {cls.name}: {found[cls.name]} and {cls}")
                found[cls.name] = cls
    check_stages(list(found.values()))
    return dict(sorted(found.items(), key=lambda item: _order(item[1], found)))


def _order(stage: type[Stage], stages: dict[str, type[Stage]]) -> tuple[int, int, str]:
    """Asset stages first, then the stage that makes shots, then shot stages by how many
    stages their reads wait for (so a stage comes after what it reads), then by name."""
    level = 1 if stage.fans_out else 0 if stage.level == "asset" else 2
    return (level, _depth(stage, stages, frozenset()), stage.name)


def _depth(stage: type[Stage], stages: dict[str, type[Stage]], seen: frozenset[str]) -> int:
    wanted = set(stage.reads) | set(stage.uses)
    writers = [s for s in stages.values() if s is not stage and wanted & set(s.writes.names)]
    if stage.name in seen:
        raise PlanError(f"stage {stage.name} reads, through other stages, what it writes itself")
    return max((1 + _depth(w, stages, seen | {stage.name}) for w in writers), default=0)
