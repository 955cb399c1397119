"""Turning a job spec's stages into a Ray Data plan.

Resources are decided here, where a stage is wired in, and never inside the
stage: the same stage class runs as one CPU actor on a laptop or as many
fractional-GPU actors on a cluster. Every step of the plan is one
`StageActor`, hosting one stage or a group that shares an actor.
"""

from __future__ import annotations

import math
import time
import warnings
from collections import Counter
from dataclasses import dataclass, replace
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import ray.data
from ray.data import ActorPoolStrategy

from actors.fingerprint import Fingerprinter
from actors.keyframes import KeyframeSuite
from actors.models import set_thread_budget
from actors.stage import Resources, Stage, StageParams, with_threads
from jobs.spec import EnabledStage

BUSY_PREFIX = "_busy_s_"
ASSET_ROWS = "_asset_rows"
MAX_BLOCKS = 1000


@dataclass(frozen=True)
class Step:
    """One `map_batches` of the plan: a stage, or the stages of a group in one actor."""

    name: str
    members: tuple[EnabledStage, ...]
    resources: Resources
    fans_out: bool
    threads: int | None = None
    """Threads of every library pool in the step's actors (`Resources.threads` as declared,
    kept when `fit_to_cpus` shrinks the CPUs Ray reserves); None leaves the libraries' defaults."""


def plan_steps(enabled: list[EnabledStage]) -> list[Step]:
    """The plan's steps in order: a group's members (adjacent in the registry) become one step."""
    steps: list[Step] = []
    for entry in enabled:
        group = entry.stage.group
        if group is not None and steps and steps[-1].name == group.name:
            last = steps[-1]
            steps[-1] = replace(last, members=(*last.members, entry))
        else:
            name = group.name if group is not None else entry.stage.name
            resources = entry.resources
            steps.append(Step(name, (entry,), resources, entry.stage.fans_out, resources.threads))
    return steps


def plan_cpus(steps: list[Step]) -> float:
    """The CPUs Ray must have for every actor of every step to run at once (each step's pool
    at its largest)."""
    return sum(s.resources.max_actors * s.resources.num_cpus for s in steps)


def fit_to_cpus(steps: list[Step], cpus: float) -> list[Step]:
    """The steps, their CPU requests scaled down together so that all their actors fit in
    `cpus`, each keeping its thread count (at most `cpus` threads).

    Each step holds at least one actor for the whole plan, so on a machine with fewer cores
    than the plan's actors, a step whose actor cannot be placed would wait for CPUs that only
    the steps waiting for its output hold. Shrinking the requests, not counting more CPUs
    than there are, keeps Ray's count of CPUs the machine's, and every actor's pools a
    thread per CPU it was declared: the busy step's actors are the ones that use the cores,
    the others mostly wait for input."""
    wanted = plan_cpus(steps)
    cap = max(1, int(cpus))
    threads = [replace(s, threads=min(s.threads or s.resources.threads, cap)) for s in steps]
    if wanted <= cpus:
        return threads
    share = cpus / wanted
    return [
        replace(
            s, resources=s.resources.model_copy(update={"num_cpus": _floor(s.resources.num_cpus * share)})
        )
        for s in threads
    ]


def _floor(cpus: float) -> float:
    """Down to Ray's granularity of a resource (1/10000), so shares never sum above the whole."""
    return max(math.floor(cpus * 10_000) / 10_000, 0.0001)


class StageActor:
    """Hosts a step's stages in one Ray actor and adds, to every output row, the seconds it cost
    each stage (`BUSY_PREFIX` + name), so the driver totals every stage's busy time without
    asking Ray for its stats.

    A step that fans out (one asset in, a row per shot out) also carries the input's other
    columns onto its rows by asset, and counts the rows per asset (`ASSET_ROWS`), so the
    driver knows when all of an asset's rows have come through the later steps."""

    def __init__(
        self,
        members: list[tuple[type[Stage], StageParams]],
        context: dict[str, Any],
        *,
        grouped: bool,
        fans_out: bool,
        threads: int | None = None,
    ) -> None:
        if threads is not None:  # before any model loads: its pools are sized as it starts
            set_thread_budget(threads)
            members = [(cls, with_threads(params, threads)) for cls, params in members]
        stages = {
            cls.name: cls(params, **{key: context[key] for key in cls.context if key in context})
            for cls, params in members
        }
        self.run: Any = KeyframeSuite(stages) if grouped else next(iter(stages.values()))  # type: ignore[arg-type]
        self.name = next(iter(stages)) if not grouped else None
        self.fans_out = fans_out

    def __call__(self, batch: pa.Table) -> pa.Table:
        started = time.perf_counter()
        out = self.run(batch)
        seconds = getattr(self.run, "last_seconds", None) if self.name is None else None
        seconds = seconds or {self.name: time.perf_counter() - started}
        if self.fans_out:
            out = carry(batch.drop_columns([ASSET_ROWS]), out)
        for part, spent in seconds.items():
            share = spent / max(out.num_rows, 1)
            out = out.append_column(BUSY_PREFIX + part, pa.array([share] * out.num_rows, pa.float64()))
        return out


def carry(batch: pa.Table, out: pa.Table) -> pa.Table:
    """The input's columns that the stage did not produce, onto its output rows by asset, and
    each row's count of rows of its asset. Seconds already spent on an asset are shared among
    its rows, so that a stage's busy time is counted once, not once per shot."""
    asset_ids = out["asset_id"].to_pylist()
    per_asset = Counter(asset_ids)
    position = {asset: i for i, asset in enumerate(batch["asset_id"].to_pylist())}
    rows = pa.array([position[a] for a in asset_ids], pa.int64())
    counts = pa.array([per_asset[a] for a in asset_ids], pa.int32())
    for column in [c for c in batch.column_names if c not in out.column_names]:
        values = batch[column].take(rows)
        if column.startswith(BUSY_PREFIX):
            values = pc.divide(values, pc.cast(counts, pa.float64()))
        out = out.append_column(batch.schema.field(column), values)
    return out.append_column(ASSET_ROWS, counts)


def _map(ds: ray.data.Dataset, fn: type, kwargs: dict[str, Any], resources: Resources) -> ray.data.Dataset:
    """One step as an actor pool. Its actors are not restarted in place (`max_restarts=0`): an
    actor of a lost node would be restarted wherever the cluster has room, and on a cluster of
    fixed size whose other actors hold every CPU that room never comes, so its tasks waited for
    ever (seen: a run hung for 15 minutes after losing a node; Ray's own pool keeps a dead actor's
    slot, ray-project/ray#62746). The run plans its unfinished assets again instead
    (`jobs.run._process`). Ray 2.60 (pinned) names no parameter for restarts and warns that
    remote arguments will go in 2.64: the warning is kept from the user's terminal here."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="`ray_remote_args` is deprecated")
        return ds.map_batches(
            fn,
            fn_constructor_kwargs=kwargs,
            batch_format="pyarrow",
            batch_size=resources.batch_size,
            compute=ActorPoolStrategy(min_size=resources.min_actors, max_size=resources.max_actors),
            num_cpus=resources.num_cpus,
            num_gpus=resources.num_gpus or None,
            max_restarts=0,
            **_placement(resources),
        )


def _placement(resources: Resources) -> dict[str, Any]:
    """Ray's placement of a step's actors: spread over the nodes when asked, otherwise Ray's
    default (not passed)."""
    return {"scheduling_strategy": "SPREAD"} if resources.spread else {}


def fingerprint_plan(files: list[dict[str, Any]], storage_options: dict[str, Any]) -> ray.data.Dataset:
    ds = ray.data.from_items(files, override_num_blocks=max(1, min(len(files), MAX_BLOCKS)))
    return _map(
        ds, Fingerprinter, {"storage_options": storage_options}, Resources(max_actors=2, batch_size=8)
    )


def stage_plan(
    assets: list[dict[str, Any]],
    steps: list[Step],
    context: dict[str, Any],
    *,
    shots_from_catalog: tuple[type, dict[str, Any]] | None = None,
    cpus: float | None = None,
) -> ray.data.Dataset:
    """The steps over the assets, one asset per block so actors share the work. A run whose
    shot stages have no segment step before them reads its shots from the catalog
    (`shots_from_catalog`: the fan-out step's class and arguments) after the asset steps.
    With `cpus` (a local Ray's), the steps' requests are fitted to them (`fit_to_cpus`)."""
    rows = [{**asset, ASSET_ROWS: 1} for asset in assets]
    ds: ray.data.Dataset = ray.data.from_items(rows, override_num_blocks=max(1, min(len(rows), MAX_BLOCKS)))
    reader = Resources(batch_size=1)
    if cpus is not None:
        fitted = fit_to_cpus([*steps, *([_reader_step(reader)] if shots_from_catalog else [])], cpus)
        steps = fitted[: len(steps)]
        reader = fitted[-1].resources if shots_from_catalog else reader
    for step in steps:
        if shots_from_catalog is not None and step.members[0].stage.level == "shot":
            fan_out, kwargs = shots_from_catalog
            ds = _map(ds, fan_out, kwargs, reader)
            shots_from_catalog = None
        members = [(e.stage, e.params) for e in step.members]
        kwargs = {
            "members": members,
            "context": context,
            "grouped": step.members[0].stage.group is not None,
            "fans_out": step.fans_out,
            "threads": step.threads,
        }
        ds = _map(ds, _named(step), kwargs, step.resources)
    return ds


def _reader_step(resources: Resources) -> Step:
    """The step that reads a run's shots from the catalog, as a step to fit with the others."""
    return Step("catalog shots", (), resources, True, None)


def _named(step: Step) -> type:
    """`StageActor` under the step's name, because Ray names a pool's actors by their class:
    the cluster's dashboard and `list_actors` then say which step an actor runs."""
    name = f"{step.name.title()}Step"
    return type(name, (StageActor,), {"__module__": StageActor.__module__, "__qualname__": name})
