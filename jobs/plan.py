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

from actors.faces import FaceAnalyzer
from actors.fingerprint import Fingerprinter
from actors.masters import AssetRemaster
from actors.objects import ObjectDetector
from actors.ocr import TextReader
from actors.phash import PerceptualHasher
from actors.safety import SafetyScorer
from actors.segment import Segmenter
from actors.speech import AssetSpeech, ShotTranscript
from actors.technical import TechnicalTagger
from actors.text_embed import TextEmbedder
from actors.visual import VisualTagger
from catalog.settings import Settings
from jobs.composite import KeyframeModels, StageChain
from jobs.spec import JobSpec, Resources, SpecError

BUSY_PREFIX = "_busy_s_"
ASSET_ROWS = "_asset_rows"
MAX_BLOCKS = 1000

KEYFRAME_MODELS: dict[str, type] = {
    "visual": VisualTagger,
    "objects": ObjectDetector,
    "ocr": TextReader,
    "faces": FaceAnalyzer,
    "safety": SafetyScorer,
    "technical": TechnicalTagger,
    "phash": PerceptualHasher,
}


@dataclass(frozen=True)
class StageBinding:
    name: str
    stage: type
    kwargs: dict[str, Any]
    resources: Resources
    tables: tuple[str, ...]  # the catalog tables whose rows for an asset this stage provides


def stage_bindings(spec: JobSpec, settings: Settings) -> list[StageBinding]:
    """The describing stages the spec enables, in plan order, with their arguments."""
    stages = spec.stages
    if not stages.segment.enabled:
        raise SpecError("stages.segment: cannot be disabled; every later stage works on its shots")
    storage = {**settings.storage_options(), **spec.source.storage_options}
    bindings = []
    if stages.speech.enabled:
        speech = {**stages.speech.params(), "storage_options": storage}
        bindings.append(
            StageBinding("speech", AssetSpeech, speech, stages.speech.resources, ("transcripts",))
        )
    if stages.remaster.enabled:
        remaster = stages.remaster.params()
        remaster["out_root"] = remaster.pop("out", None) or settings.location("masters")
        remaster["storage_options"] = storage
        bindings.append(
            StageBinding("remaster", AssetRemaster, remaster, stages.remaster.resources, ("remasters",))
        )
    segment = {
        **stages.segment.params(),
        "keyframe_root": settings.location("keyframes"),
        "storage_options": storage,
    }
    bindings.append(
        StageBinding("segment", Segmenter, segment, stages.segment.resources, ("assets", "shots"))
    )
    if stages.keyframes.models():
        parts = [
            (name, KEYFRAME_MODELS[name], model.params()) for name, model in stages.keyframes.models().items()
        ]
        bindings.append(
            StageBinding(
                "keyframes",
                KeyframeModels,
                {"parts": parts},
                stages.keyframes.resources,
                ("tags", "embeddings", "faces"),
            )
        )
    if stages.text.enabled:
        parts = [("transcript", ShotTranscript, {}), ("text", TextEmbedder, stages.text.params())]
        bindings.append(
            StageBinding(
                "text", StageChain, {"parts": parts}, stages.text.resources, ("captions", "embeddings")
            )
        )
    return bindings


def instrumented(name: str, stage: type, *, fans_out: bool = False) -> type:
    """The stage, adding columns with the seconds each output row cost it (one per part,
    when it reports its parts in `last_seconds`), so the driver totals every stage's busy
    time without asking Ray for its stats.

    A stage that fans out (one asset in, a row per shot out) also gets the input's other
    columns carried onto its rows by asset, and a count of rows per asset, so the driver
    knows when all of an asset's rows have come through the later stages."""

    def __call__(self: Any, batch: pa.Table) -> pa.Table:
        started = time.perf_counter()
        out = stage.__call__(self, batch)
        elapsed = time.perf_counter() - started
        parts = getattr(self, "last_seconds", None) or {name: elapsed}
        for part, seconds in parts.items():
            share = seconds / max(out.num_rows, 1)
            out = out.append_column(BUSY_PREFIX + part, pa.array([share] * out.num_rows, pa.float64()))
        if fans_out:
            out = _carry(batch, out)
            per_asset = Counter(out["asset_id"].to_pylist())
            counts = [per_asset[a] for a in out["asset_id"].to_pylist()]
            out = out.append_column(ASSET_ROWS, pa.array(counts, pa.int32()))
        return out

    return type(stage.__name__, (stage,), {"__call__": __call__, "__module__": stage.__module__})


def _carry(batch: pa.Table, out: pa.Table) -> pa.Table:
    """The input's columns that the stage did not produce, onto its output rows by asset."""
    extra = [c for c in batch.column_names if c not in out.column_names]
    if not extra:
        return out
    position = {asset: i for i, asset in enumerate(batch["asset_id"].to_pylist())}
    rows = pa.array([position[a] for a in out["asset_id"].to_pylist()], pa.int64())
    for column in extra:
        out = out.append_column(batch.schema.field(column), batch[column].take(rows))
    return out


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
    """speech → remaster → segment → keyframe models → text, one asset per block so actors
    share the work."""
    ds = ray.data.from_items(assets, override_num_blocks=max(1, min(len(assets), MAX_BLOCKS)))
    for binding in bindings:
        stage = instrumented(binding.name, binding.stage, fans_out=binding.name == "segment")
        ds = _map(ds, stage, binding.kwargs, binding.resources)
    return ds
