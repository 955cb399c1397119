"""One run of a job, end to end: discover → fingerprint → segment → understand →
commit → index, recorded in the run state whatever happens."""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from catalog.iceberg import open_catalog, replace_assets
from catalog.settings import Settings
from catalog.state import StateStore
from indexes.build import build_index
from jobs.discover import discover
from jobs.plan import BUSY_PREFIX, describe_plan, fingerprint_plan, stage_bindings
from jobs.ray_runtime import ensure_ray
from jobs.rows import catalog_rows, failed_assets
from jobs.spec import JobSpec

log = logging.getLogger(__name__)

# Assets last: a reader that finds an asset row finds its shots, tags and vectors.
COMMIT_ORDER = ("shots", "tags", "embeddings", "assets")


class StageClock:
    """Wall seconds of the driver-side steps of a run."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    @contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - started


def run_job(spec: JobSpec, *, settings: Settings | None = None) -> dict[str, Any]:
    """Run the job once and return its summary; the run is recorded as failed if it raises."""
    settings = spec.settings(settings)
    state = StateStore(settings.catalog_url_resolved)
    version = spec.pipeline_version()
    run_id = state.start_run(spec.name, spec.model_dump(mode="json"), version)
    try:
        summary = _run(spec, settings, state, run_id, version)
    except BaseException as exc:
        state.finish_run(run_id, "failed", error=f"{type(exc).__name__}: {exc}")
        raise
    state.finish_run(run_id, "succeeded", summary=summary)
    return summary


def _run(spec: JobSpec, settings: Settings, state: StateStore, run_id: str, version: str) -> dict[str, Any]:
    clock = StageClock()
    started = time.perf_counter()
    source_options = {**settings.storage_options(), **spec.source.storage_options}
    with clock("discover"):
        found = discover(
            spec.source.uri,
            include=spec.source.include,
            exclude=spec.source.exclude,
            storage_options=source_options,
        )
    state.record_stage(run_id, "discover", rows=len(found), failures=0, seconds=clock.seconds["discover"])

    with clock("fingerprint"):
        assets, unreadable = _fingerprint(found, state, settings, source_options)
    state.record_stage(
        run_id,
        "fingerprint",
        rows=len(assets),
        failures=len(unreadable),
        seconds=clock.seconds["fingerprint"],
    )

    settled = state.settled(version, [a["asset_id"] for a in assets], retry_failed=spec.retry_failed)
    todo = [a for a in assets if a["asset_id"] not in settled]
    log.info(
        "run %s: %d assets found, %d already done, %d to process",
        run_id,
        len(assets),
        len(settled),
        len(todo),
    )

    tables: dict[str, pa.Table] = {}
    busy: dict[str, float] = {}
    if todo:
        ensure_ray(settings)
        bindings = stage_bindings(spec, settings)
        with clock("describe"):
            described = _collect(describe_plan(todo, bindings))
        busy = {b.name: float(pc.sum(described[BUSY_PREFIX + b.name]).as_py() or 0.0) for b in bindings}
        tables = catalog_rows(described, run_id=run_id, pipeline_version=version)
        for binding in bindings:
            failures = _failed_count(tables["assets"]) if binding.name == "segment" else 0
            rows = tables["shots"].num_rows
            state.record_stage(run_id, binding.name, rows=rows, failures=failures, seconds=busy[binding.name])
    if unreadable:
        lost = failed_assets(unreadable, run_id=run_id, pipeline_version=version)
        tables["assets"] = pa.concat_tables([tables["assets"], lost]) if "assets" in tables else lost

    catalog = open_catalog(settings)
    with clock("commit"):
        processed = tables["assets"]["asset_id"].to_pylist() if "assets" in tables else []
        for name in COMMIT_ORDER:
            if name in tables:
                replace_assets(catalog, name, tables[name], processed, run_id=run_id)
        if processed:
            state.settle(
                run_id, version, tables["assets"].select(["asset_id", "uri", "status", "error"]).to_pylist()
            )
    state.record_stage(run_id, "commit", rows=len(processed), failures=0, seconds=clock.seconds["commit"])

    with clock("index"):
        index = build_index(catalog, settings, space="visual") if processed else None
    if index is not None:
        state.record_stage(run_id, "index", rows=index.count, failures=0, seconds=clock.seconds["index"])

    asset_rows = tables["assets"].to_pylist() if "assets" in tables else []
    failed = [{"uri": a["uri"], "error": a["error"]} for a in asset_rows if a["status"] == "failed"]
    return {
        "run_id": run_id,
        "job": spec.name,
        "pipeline_version": version,
        "assets": {"ok": len(asset_rows) - len(failed), "failed": len(failed), "skipped": len(settled)},
        "shots": tables["shots"].num_rows if "shots" in tables else 0,
        "seconds": {
            **{k: round(v, 3) for k, v in clock.seconds.items()},
            **{f"{k} (busy)": round(v, 3) for k, v in busy.items()},
            "total": round(time.perf_counter() - started, 3),
        },
        "failed": failed,
        "index": None
        if index is None
        else {"space": index.space, "snapshot_id": index.snapshot_id, "vectors": index.count},
    }


def _fingerprint(
    found: list, state: StateStore, settings: Settings, storage_options: dict[str, Any]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Asset references for the files found (one per distinct content), and the unreadable."""
    known = state.known_fingerprints({f.uri: f.version for f in found})
    fresh = [
        {"uri": f.uri, "size_bytes": f.size_bytes, "version": f.version} for f in found if f.uri not in known
    ]
    hashed: list[dict[str, Any]] = []
    if fresh:
        ensure_ray(settings)
        hashed = fingerprint_plan(fresh, storage_options).take_all()
        state.remember_fingerprints((r["uri"], r["version"], r["asset_id"]) for r in hashed if r["asset_id"])
    ids = {**known, **{r["uri"]: r["asset_id"] for r in hashed if r["asset_id"]}}
    assets: dict[str, dict[str, Any]] = {}
    for f in found:
        if f.uri in ids:  # the same bytes under two names are one asset: keep the first name
            assets.setdefault(ids[f.uri], {"asset_id": ids[f.uri], "uri": f.uri, "size_bytes": f.size_bytes})
    unreadable = [
        {
            "asset_id": _unreadable_id(r["uri"]),
            "uri": r["uri"],
            "size_bytes": r["size_bytes"],
            "error": r["error"],
        }
        for r in hashed
        if not r["asset_id"]
    ]
    return list(assets.values()), unreadable


def _unreadable_id(uri: str) -> str:
    return hashlib.sha256(f"unreadable:{uri}".encode()).hexdigest()


def _collect(ds: Any) -> pa.Table:
    """The plan's output at the driver, without the keyframe images (they are in storage)."""
    batches = [
        b.drop_columns(["keyframe_jpeg"]) for b in ds.iter_batches(batch_format="pyarrow", batch_size=None)
    ]
    return pa.concat_tables(batches, promote_options="default")


def _failed_count(assets: pa.Table) -> int:
    return int(pc.sum(pc.equal(assets["status"], "failed")).as_py() or 0)
