"""One run of a job, end to end: discover → fingerprint → the stages → commit → index,
recorded in the run state whatever happens."""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pyarrow as pa
from ray.exceptions import NodeDiedError, ObjectLostError, RayActorError, WorkerCrashedError

from catalog.iceberg import open_catalog
from catalog.locks import attach_run, job_lock
from catalog.schema import EMBEDDING_SPACES
from catalog.settings import Settings
from catalog.state import StateStore
from catalog.storage import refused_in
from catalog.voices import refresh_voices
from indexes.build import build_index
from indexes.duplicates import refresh_dup_groups
from jobs.catalog_shots import CatalogShots, catalog_shots
from jobs.commit import commit_tables
from jobs.discover import discover
from jobs.logs import run_context
from jobs.people import refresh_people
from jobs.plan import fingerprint_plan, plan_steps, stage_plan
from jobs.progress import RunProgress
from jobs.ray_runtime import cluster_cpus, ensure_ray, local_cpus
from jobs.rows import failed_assets
from jobs.spec import JobSpec
from jobs.spool import OUTCOMES, AssetAssembler, Spooler, discard, read_spooled

log = logging.getLogger(__name__)

INDEXED_SPACES = tuple(EMBEDDING_SPACES)


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


OUTCOMES_OF_RUNS = {
    "ok": "every asset read decoded whole and every output was made",
    "problems": "the run completed, but some assets failed or are damaged, or some outputs failed",
}
"""A completed run's `outcome` in its summary (a run that raised has none: its status is failed)."""


def run_outcome(failed: int, damaged: int, outputs_failed: int) -> str:
    """'ok' when nothing failed and nothing is damaged, else 'problems'."""
    return "problems" if failed or damaged or outputs_failed else "ok"


def run_job(spec: JobSpec, *, settings: Settings | None = None) -> dict[str, Any]:
    """Run the job once and return its summary. Holds the job's lock throughout (a second
    run of the same job refuses to start), and records the run as failed if it raises."""
    settings = spec.settings(settings)
    state = StateStore(settings.catalog_url_resolved)
    version = spec.pipeline_version()
    with job_lock(state.engine, spec.name) as holder:
        run_id = state.start_run(spec.name, spec.model_dump(mode="json"), version)
        attach_run(state.engine, spec.name, holder, run_id)
        with run_context(run_id, spec.name):
            log.info("run started (pipeline %s)", version)
            try:
                summary = _run(spec, settings, state, run_id, version)
            except BaseException as exc:
                log.exception("run failed")
                state.finish_run(run_id, "failed", error=f"{type(exc).__name__}: {exc}")
                raise
            state.finish_run(run_id, "succeeded", summary=summary)
            log.info(
                "run %s: %s assets ok, %s damaged, %s failed, %s skipped, %s outputs failed, %s shots",
                "succeeded" if summary["outcome"] == "ok" else "completed with problems",
                summary["assets"]["ok"],
                summary["assets"]["damaged"],
                summary["assets"]["failed"],
                summary["assets"]["skipped"],
                summary["outputs"]["failed"],
                summary["shots"],
            )
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
    _record_step(state, run_id, "discover", rows=len(found), failures=0, seconds=clock.seconds["discover"])

    assets, unreadable = _fingerprint(found, state, settings, source_options, clock)
    _record_step(
        state,
        run_id,
        "fingerprint",
        rows=len(assets),
        failures=len(unreadable),
        seconds=clock.seconds.get("fingerprint", 0.0),
    )

    ids = [a["asset_id"] for a in assets]
    settled = state.settled(version, ids, retry_failed=spec.retry_failed)
    adopted = state.spooled(version, for_run=run_id)  # staged by a run that died before its commit
    todo = [a for a in assets if a["asset_id"] not in settled and a["asset_id"] not in adopted]
    log.info(
        "run %s: %d assets found, %d done before, %d staged by an earlier run, %d to process",
        run_id,
        len(assets),
        len(settled),
        len(adopted),
        len(todo),
    )

    enabled = spec.enabled()
    stages = [e.stage for e in enabled]
    spooler = Spooler(
        settings,
        state,
        run_id=run_id,
        pipeline_version=version,
        stages=stages,
        flush_assets=spec.distribution.spool_every_assets,
        flush_seconds=spec.distribution.spool_every_seconds,
    )
    catalog = open_catalog(settings)
    # Unreadable files become asset rows only where this run owns the assets table: a run of
    # one stage must not replace the asset rows of the files it could read.
    if unreadable and any(o.table == "assets" for s in stages for o in s.owns):
        spooler.add_failed(failed_assets(unreadable, run_id=run_id, pipeline_version=version))
    if todo:
        with clock("start ray"):
            ensure_ray(settings)
        with clock("process"):
            _process(
                lambda assets, cpus: _plan(assets, enabled, settings, catalog, source_options, cpus),
                todo,
                spooler,
                replans=spec.distribution.replans,
            )
        per_asset = {s.name for s in stages if s.level == "asset" and not s.fans_out}
        for part, seconds in spooler.busy.items():
            failures = {"segment": spooler.failed, "remaster": spooler.outputs_failed}.get(part, 0)
            rows = len(todo) if part in per_asset else spooler.shots
            _record_step(state, run_id, part, rows=rows, failures=failures, seconds=seconds)

    staged = state.spooled(version, for_run=run_id)
    with clock("commit"):
        tables = read_spooled(settings, staged)
        commit_tables(catalog, tables, stages, staged, run_id=run_id)
        if staged:
            state.settle(run_id, version, tables[OUTCOMES].to_pylist())
            discard(settings, staged.values())
    _record_step(state, run_id, "commit", rows=len(staged), failures=0, seconds=clock.seconds["commit"])

    indexes = []
    if staged:
        with clock("duplicates"):
            duplicated = refresh_dup_groups(catalog, run_id=run_id)
        _record_step(
            state, run_id, "duplicates", rows=duplicated, failures=0, seconds=clock.seconds["duplicates"]
        )
        with clock("index"):
            indexes = [v for v in (build_index(catalog, settings, space=s) for s in INDEXED_SPACES) if v]
        _record_step(
            state,
            run_id,
            "index",
            rows=sum(v.count for v in indexes),
            failures=0,
            seconds=clock.seconds["index"],
        )
        with clock("people"):
            people = refresh_people(catalog, run_id=run_id)
        _record_step(
            state, run_id, "people", rows=people["tracks"], failures=0, seconds=clock.seconds["people"]
        )
        if any(s.name == "diarize" for s in stages):  # the asset's speakers join the archive's voices
            with clock("voices"):
                voices = refresh_voices(catalog, run_id=run_id)
            _record_step(state, run_id, "voices", rows=voices, failures=0, seconds=clock.seconds["voices"])

    audit = _audit(spec, settings, state, run_id, clock) if staged and spec.audit is not None else None

    outcomes = tables[OUTCOMES].to_pylist() if OUTCOMES in tables else []
    failed = [{"uri": a["uri"], "error": a["error"]} for a in outcomes if a["status"] == "failed"]
    failed += [{"uri": a["uri"], "error": a["error"]} for a in unreadable if a["asset_id"] not in staged]
    damaged = [{"uri": a["uri"], "error": a["error"]} for a in outcomes if a["status"] == "damaged"]
    remasters = tables["remasters"].to_pylist() if "remasters" in tables else []
    outputs_failed = [
        {"uri": r["source_uri"], "kind": r["kind"], "error": r["error"]}
        for r in remasters
        if r["status"] == "failed"
    ]
    return {
        "run_id": run_id,
        "job": spec.name,
        "pipeline_version": version,
        "outcome": run_outcome(len(failed), len(damaged), len(outputs_failed)),
        "assets": {
            "ok": sum(a["status"] == "ok" for a in outcomes),
            "damaged": len(damaged),
            "failed": len(failed),
            "skipped": len(settled),
            "resumed": len(adopted),
        },
        "outputs": {"ok": sum(r["status"] == "ok" for r in remasters), "failed": len(outputs_failed)},
        "shots": tables["shots"].num_rows if "shots" in tables else spooler.shots,
        "seconds": {
            **{k: round(v, 3) for k, v in clock.seconds.items()},
            **{f"{k} (busy)": round(v, 3) for k, v in spooler.busy.items()},
            "total": round(time.perf_counter() - started, 3),
        },
        "failed": failed,
        "damaged": damaged,
        "outputs_failed": outputs_failed,
        "indexes": {v.space: {"snapshot_id": v.snapshot_id, "vectors": v.count} for v in indexes},
        "audit": audit,
        "remasters": tables["remasters"].drop_columns(["run_id", "pipeline_version"]).to_pylist()
        if "remasters" in tables
        else [],
    }


def _audit(
    spec: JobSpec, settings: Settings, state: StateStore, run_id: str, clock: StageClock
) -> dict | None:
    """Audit what this run committed. A failing audit is logged and reported, not fatal: the
    run's rows are already committed, and `archivist audit RUN_ID` can be run again."""
    from jobs.audit.run import audit_run

    with clock("audit"):
        try:
            audited = audit_run(settings, run_id, spec.audit)
        except Exception as exc:
            log.exception("audit of run %s failed", run_id)
            return {"error": f"{type(exc).__name__}: {exc}"}
    flagged = sum(counts["flagged"] for counts in audited["audits"].values())
    checked = sum(counts["checked"] for counts in audited["audits"].values())
    _record_step(state, run_id, "audit", rows=checked, failures=flagged, seconds=clock.seconds["audit"])
    return {"checked": checked, "flagged": flagged, "report": audited.get("report")}


def _record_step(
    state: StateStore, run_id: str, stage: str, *, rows: int, failures: int, seconds: float
) -> None:
    state.record_step(run_id, stage, rows=rows, failures=failures, seconds=seconds)
    log.info(
        "stage %s: %d rows, %d failures, %.2f s",
        stage,
        rows,
        failures,
        seconds,
        extra={"stage": stage, "rows": rows, "seconds": round(seconds, 3)},
    )


def _plan(
    todo: list[dict[str, Any]],
    enabled: list,
    settings: Settings,
    catalog: Any,
    source_options: dict[str, Any],
    cpus: float | None,
) -> Any:
    """The Ray Data plan of the enabled stages over the assets to process, fitted to `cpus`
    when given. Without a stage that makes shots, shot stages work on the shots the catalog
    already has."""
    context = {
        "storage_options": source_options,
        "keyframe_root": settings.location("keyframes"),
        "masters_root": settings.location("masters"),
    }
    from_catalog = None
    stages = [e.stage for e in enabled]
    if not any(s.fans_out for s in stages) and any(s.level == "shot" for s in stages):
        shots = catalog_shots(catalog, [a["asset_id"] for a in todo])
        from_catalog = (CatalogShots, {"shots": shots, "storage_options": settings.storage_options()})
    return stage_plan(todo, plan_steps(enabled), context, shots_from_catalog=from_catalog, cpus=cpus)


LOST_WORKERS = (RayActorError, ObjectLostError, NodeDiedError, WorkerCrashedError)
"""What Ray raises when a worker or node that held part of the plan is gone: the run re-plans."""


def _process(
    plan: Callable[[list[dict[str, Any]], float | None], Any],
    todo: list[dict[str, Any]],
    spooler: Spooler,
    *,
    replans: int,
) -> None:
    """Stream the plan's output into the spool, asset by asset as each completes. When Ray loses
    a worker or a node, the assets not yet finished are planned again on what is left of the
    cluster, up to `replans` times: the actors do not restart in place (`jobs.plan`), so a
    finished asset is never redone and an unfinished one never waits for a node that is gone.
    A plan made again fits the CPUs the cluster has left: a step whose actors found no room
    would wait for the steps before it, which hold the CPUs (`jobs.plan.fit_to_cpus`)."""
    remaining, cpus = todo, local_cpus()
    with RunProgress(len(todo)) as progress:
        for attempt in range(replans + 1):
            try:
                _drain(plan(remaining, cpus), spooler, progress)
                return
            except LOST_WORKERS as exc:
                spooler.flush()
                remaining = [a for a in remaining if a["asset_id"] not in spooler.assets]
                if not remaining:  # the loss came after the last asset was in
                    return
                if attempt == replans:
                    raise
                cpus = local_cpus() or cluster_cpus()
                log.warning(
                    "Ray lost a worker (%s: %s); planning the %d unfinished assets again on %g CPUs"
                    " (%d of %d)",
                    type(exc).__name__,
                    str(exc).splitlines()[0] if str(exc) else "",
                    len(remaining),
                    cpus,
                    attempt + 1,
                    replans,
                )


def _drain(ds: Any, spooler: Spooler, progress: RunProgress) -> None:
    """One plan's output into the spool. An asset whose write the archive's storage refused
    (a keyframe on a full disk) fails the run with that refusal, which names the object, and is
    left for the next run (`catalog.storage.refused_in`)."""
    assembler = AssetAssembler()
    for batch in ds.iter_batches(batch_format="pyarrow", batch_size=None):
        kept = batch.drop_columns([c for c in ("keyframe_jpeg",) if c in batch.column_names])
        progress.rows(kept)
        for asset_rows in assembler.add(kept):
            refused = next(filter(None, map(refused_in, _errors(asset_rows))), None)
            if refused is not None:
                raise refused
            spooler.add(asset_rows)
            progress.asset_done()
    spooler.flush()
    if assembler.incomplete():
        raise RuntimeError(f"the plan lost rows of assets {assembler.incomplete()}")


def _errors(rows: pa.Table) -> list[str | None]:
    """What went wrong with an asset, as its rows say: their own `error`, and each remaster
    output's."""
    errors = rows["error"].to_pylist() if "error" in rows.column_names else []
    if "remasters" in rows.column_names:
        errors += [o.get("error") for outputs in rows["remasters"].to_pylist() for o in outputs or []]
    return errors


def _fingerprint(
    found: list, state: StateStore, settings: Settings, storage_options: dict[str, Any], clock: StageClock
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Asset references for the files found (one per distinct content), and the unreadable."""
    known = state.known_fingerprints({f.uri: f.version for f in found})
    fresh = [
        {"uri": f.uri, "size_bytes": f.size_bytes, "version": f.version} for f in found if f.uri not in known
    ]
    hashed: list[dict[str, Any]] = []
    if fresh:
        with clock("start ray"):
            ensure_ray(settings)
        with clock("fingerprint"):
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
