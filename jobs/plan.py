"""Turning a job spec into a Ray Data plan.

Resources are decided here, where a stage is wired in, and never inside the
stage: the same stage class runs as one CPU actor on a laptop or as many
fractional-GPU actors on a cluster.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import ray.data
from ray.data import ActorPoolStrategy

from actors.fingerprint import Fingerprinter
from actors.segment import Segmenter
from actors.visual import VisualTagger
from catalog.settings import Settings
from jobs.spec import JobSpec, Resources, SpecError

BUSY_PREFIX = "_busy_s_"
ASSET_ROWS = "_asset_rows"
MAX_BLOCKS = 1000


@dataclass(frozen=True)
class StageBinding:
    name: str
    stage: type
    kwargs: dict[str, Any]
    resources: Resources
    tables: tuple[str, ...]  # the catalog tables whose rows for an asset this stage provides


def stage_bindings(spec: JobSpec, settings: Settings) -> list[StageBinding]:
    """The describing stages the spec enables, in order, with their arguments."""
    storage = {**settings.storage_options(), **spec.source.storage_options}
    wanted = [
        (
            "segment",
            Segmenter,
            {"keyframe_root": settings.location("keyframes"), "storage_options": storage},
            ("assets", "shots"),
        ),
        ("visual", VisualTagger, {}, ("tags", "embeddings")),
    ]
    if not spec.stages.segment.enabled:
        raise SpecError(
            "stages.segment: the segment stage cannot be disabled; every later stage works on its shots"
        )
    bindings = []
    for name, stage, extra, tables in wanted:
        stage_spec = getattr(spec.stages, name)
        if stage_spec.enabled:
            bindings.append(
                StageBinding(name, stage, {**stage_spec.params(), **extra}, stage_spec.resources, tables)
            )
    return bindings


def instrumented(name: str, stage: type, *, count_asset_rows: bool = False) -> type:
    """The stage, adding a column with the seconds each output row cost it (so the
    driver totals every stage's busy time without asking Ray for its stats) and,
    for the first stage, how many rows it produced per asset (so the driver knows
    when all of an asset's rows have come through the later stages)."""

    def __call__(self: Any, batch: pa.Table) -> pa.Table:
        started = time.perf_counter()
        out = stage.__call__(self, batch)
        share = (time.perf_counter() - started) / max(out.num_rows, 1)
        out = out.append_column(BUSY_PREFIX + name, pa.array([share] * out.num_rows, pa.float64()))
        if count_asset_rows:
            ids = out["asset_id"].to_pylist()
            per_asset = Counter(ids)
            out = out.append_column(ASSET_ROWS, pa.array([per_asset[a] for a in ids], pa.int32()))
        return out

    return type(stage.__name__, (stage,), {"__call__": __call__, "__module__": stage.__module__})


def _map(ds: ray.data.Dataset, stage: type, kwargs: dict[str, Any], resources: Resources) -> ray.data.Dataset:
    return ds.map_batches(
        stage,
        fn_constructor_kwargs=kwargs,
        batch_format="pyarrow",
        batch_size=resources.batch_size,
        compute=ActorPoolStrategy(min_size=resources.min_actors, max_size=resources.max_actors),
        num_cpus=resources.num_cpus,
        num_gpus=resources.num_gpus or None,
        **({"scheduling_strategy": "SPREAD"} if resources.spread else {}),
    )


def fingerprint_plan(files: list[dict[str, Any]], storage_options: dict[str, Any]) -> ray.data.Dataset:
    ds = ray.data.from_items(files, override_num_blocks=max(1, min(len(files), MAX_BLOCKS)))
    return _map(
        ds, Fingerprinter, {"storage_options": storage_options}, Resources(max_actors=2, batch_size=8)
    )


def describe_plan(assets: list[dict[str, Any]], bindings: list[StageBinding]) -> ray.data.Dataset:
    """segment → understand, one asset per block so actors share the work."""
    ds = ray.data.from_items(assets, override_num_blocks=max(1, min(len(assets), MAX_BLOCKS)))
    for position, binding in enumerate(bindings):
        stage = instrumented(binding.name, binding.stage, count_asset_rows=position == 0)
        ds = _map(ds, stage, binding.kwargs, binding.resources)
    return ds
