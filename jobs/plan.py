"""Turning a job spec into a Ray Data plan.

Resources are decided here, where a stage is wired in, and never inside the
stage: the same stage class runs as one CPU actor on a laptop or as many
fractional-GPU actors on a cluster.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import ray.data
from actors.segment import Segmenter
from ray.data import ActorPoolStrategy

from actors.fingerprint import Fingerprinter
from actors.visual import VisualTagger
from catalog.settings import Settings
from jobs.spec import JobSpec, Resources

BUSY_PREFIX = "_busy_s_"
MAX_BLOCKS = 1000


@dataclass(frozen=True)
class StageBinding:
    name: str
    stage: type
    kwargs: dict[str, Any]
    resources: Resources


def stage_bindings(spec: JobSpec, settings: Settings) -> list[StageBinding]:
    """The describing stages the spec enables, in order, with their arguments."""
    storage = {**settings.storage_options(), **spec.source.storage_options}
    wanted = [
        ("segment", Segmenter, {"keyframe_root": settings.location("keyframes"), "storage_options": storage}),
        ("visual", VisualTagger, {}),
    ]
    bindings = []
    for name, stage, extra in wanted:
        stage_spec = getattr(spec.stages, name)
        if stage_spec.enabled:
            bindings.append(StageBinding(name, stage, {**stage_spec.params(), **extra}, stage_spec.resources))
    return bindings


def timed(name: str, stage: type) -> type:
    """The stage, adding a column with the seconds each output row cost it, so the
    driver can total every stage's busy time without asking Ray for its stats."""

    def __call__(self: Any, batch: pa.Table) -> pa.Table:
        started = time.perf_counter()
        out = stage.__call__(self, batch)
        share = (time.perf_counter() - started) / max(out.num_rows, 1)
        return out.append_column(BUSY_PREFIX + name, pa.array([share] * out.num_rows, pa.float64()))

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
    )


def fingerprint_plan(files: list[dict[str, Any]], storage_options: dict[str, Any]) -> ray.data.Dataset:
    ds = ray.data.from_items(files, override_num_blocks=max(1, min(len(files), MAX_BLOCKS)))
    return _map(
        ds, Fingerprinter, {"storage_options": storage_options}, Resources(max_actors=2, batch_size=8)
    )


def describe_plan(assets: list[dict[str, Any]], bindings: list[StageBinding]) -> ray.data.Dataset:
    """segment → understand, one asset per block so actors share the work."""
    ds = ray.data.from_items(assets, override_num_blocks=max(1, min(len(assets), MAX_BLOCKS)))
    for binding in bindings:
        ds = _map(ds, timed(binding.name, binding.stage), binding.kwargs, binding.resources)
    return ds
