"""One audit of one run: identity drift, manipulation signals and provenance of the run's remastered
outputs, bias over the catalog as that run left it; rows into ``audits``, a report beside the run's.

Every row of one audit shares its ``audit_id`` (readers take the latest
audit of a run); re-auditing appends a new set rather than rewriting the
old, because an audit is a dated observation, and a later one that
disagrees is itself a finding.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import logging
import time
import uuid
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import cv2
import fsspec
import numpy as np
import pyarrow as pa
from pyiceberg.expressions import EqualTo

from catalog.iceberg import append, open_catalog, read
from catalog.schema import AUDITS
from catalog.settings import Settings
from catalog.state import StateStore
from jobs.audit import bias, identity, provenance, report
from jobs.audit.config import AuditConfig
from jobs.audit.manipulation import ManipulationDetector
from jobs.spec import SpecError

log = logging.getLogger(__name__)

FACE_COLUMNS = ("shot_id", "asset_id", "perceived_gender", "perceived_age_band", "skin_tone_group")


class AuditError(SpecError):
    """An audit that cannot start (an unknown run), said plainly."""


def audit_run(
    settings: Settings, run_id: str, config: AuditConfig | None = None, *, analyzer: Any = None
) -> dict[str, Any]:
    """Audit the run, append its findings to ``audits``, write the HTML report; returns the summary.

    ``analyzer`` is a ``FaceAnalyzer`` to reuse (tests share one); by default
    one is loaded when something needs faces found.
    """
    config = config or AuditConfig()
    started = time.perf_counter()
    audit = RunAudit(settings, config, gather_outputs(settings, run_id), _LazyAnalyzer(analyzer))
    findings = Findings.start(audit.outputs, config)
    for each in (audit_faces, audit_provenance, audit_bias):
        each(audit, findings)
    table = findings.table()
    findings.clock["total"] = time.perf_counter() - started
    summary = _summary(run_id, findings.audit_id, findings.rows, findings.clock)
    if config.report:
        summary["report"] = write_report(settings, findings, summary)
    append(audit.outputs.catalog, "audits", table, run_id=run_id)
    return summary


@dataclass(frozen=True)
class RunOutputs:
    """What the audits read of one run: its remastered outputs, the catalog's shots, its state row."""

    run_id: str
    catalog: Any
    remasters: list[dict[str, Any]]
    """The run's rows of ``remasters``, failed ones too."""
    shots: list[dict[str, Any]]
    """Every shot of the catalog (bias is measured over the catalog as the run left it)."""
    job: str | None
    status: str | None

    @property
    def ok(self) -> list[dict[str, Any]]:
        return [r for r in self.remasters if r["status"] == "ok"]

    def keyframes(self) -> dict[str, list[int]]:
        """The keyframe frame numbers of each asset, where identity sampling looks first."""
        found: dict[str, list[int]] = defaultdict(list)
        for shot in self.shots:
            if shot["keyframe_frame"] is not None:
                found[shot["asset_id"]].append(shot["keyframe_frame"])
        return found


def gather_outputs(settings: Settings, run_id: str) -> RunOutputs:
    """The run's outputs; AuditError when neither the state database nor the catalog knows the run."""
    catalog = open_catalog(settings)
    remasters = read(catalog, "remasters", row_filter=EqualTo(term="run_id", value=run_id)).to_pylist()
    run = StateStore(settings.catalog_url_resolved).run(run_id)
    if (
        run is None
        and not remasters
        and not read(
            catalog, "shots", columns=("shot_id",), row_filter=EqualTo(term="run_id", value=run_id)
        ).num_rows
    ):
        raise AuditError(
            f"no run {run_id!r} in the state database or the catalog: "
            "see `archivist jobs history` for run ids"
        )
    shots = read(catalog, "shots", columns=("shot_id", "asset_id", "keyframe_frame")).to_pylist()
    return RunOutputs(
        run_id, catalog, remasters, shots, getattr(run, "job", None), getattr(run, "status", None)
    )


@dataclass
class Findings:
    """What one audit found so far: its rows for ``audits``, the report's context and evidence, and
    the seconds each part took."""

    run_id: str
    audit_id: str
    context: dict[str, Any]
    rows: list[dict[str, Any]] = field(default_factory=list)
    evidence: dict[str, str] = field(default_factory=dict)
    """Evidence JPEGs by URI, base64, for the report to embed."""
    clock: dict[str, float] = field(default_factory=lambda: defaultdict(float))

    @classmethod
    def start(cls, outputs: RunOutputs, config: AuditConfig) -> Findings:
        audit_id = f"audit-{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:6]}"
        context = {
            "run_id": outputs.run_id,
            "audit_id": audit_id,
            "job": outputs.job,
            "run_status": outputs.status,
            "config": config.model_dump(mode="json"),
        }
        return cls(outputs.run_id, audit_id, context)

    @contextmanager
    def timed(self, name: str) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        finally:
            self.clock[name] += time.perf_counter() - started

    def table(self) -> pa.Table:
        """The rows as ``audits`` rows of this audit, stamped now."""
        now = dt.datetime.now(dt.UTC)
        blank = dict.fromkeys(AUDITS.names)
        return pa.Table.from_pylist(
            [
                {**blank, **r, "audit_id": self.audit_id, "run_id": self.run_id, "audited_at": now}
                for r in self.rows
            ],
            schema=AUDITS,
        )


@dataclass(frozen=True)
class RunAudit:
    """What every audit reads: the settings, the audit's configuration, the run's outputs and the
    face analyzer (loaded the first time one asks for it)."""

    settings: Settings
    config: AuditConfig
    outputs: RunOutputs
    faces: _LazyAnalyzer


def audit_faces(audit: RunAudit, findings: Findings) -> None:
    """Identity drift and manipulation signals of each remastered output of the configured kinds."""
    settings, config, outputs = audit.settings, audit.config, audit.outputs
    ok = outputs.ok
    if not ok or not (config.identity.enabled or config.manipulation.enabled):
        return
    with findings.timed("faces"):
        detector = (
            ManipulationDetector.load(config.manipulation.weights) if config.manipulation.enabled else None
        )
        findings.context["detector"] = _detector_facts(config.manipulation.weights) if detector else None
        keyframes = outputs.keyframes()
        for row in ok:
            if row["kind"] not in config.identity.kinds:
                continue
            frames = identity.sample_frames(
                row["frame_count"] or 0,
                config.identity.frames_per_output,
                keyframes.get(row["asset_id"], ()),
            )
            comparisons = identity.compare_outputs(
                row["source_uri"],
                row["output_uri"],
                audit.faces(),
                frames,
                storage_options=settings.storage_options(),
                min_iou=config.identity.min_iou,
            )
            findings.rows.extend(
                _face_rows(settings, outputs.run_id, row, comparisons, config, detector, findings.evidence)
            )


def audit_provenance(audit: RunAudit, findings: Findings) -> None:
    """Each output checked against its manifest and, where it carries them, its content credentials."""
    remasters = audit.outputs.remasters
    if not (audit.config.provenance.enabled and remasters):
        return
    with findings.timed("provenance"):
        options = audit.settings.storage_options()
        findings.rows.extend(_provenance_rows(remasters, audit.config, options, findings.context))


def audit_bias(audit: RunAudit, findings: Findings) -> None:
    """Representation in the catalog, exposure in search and recommendations, and (when asked)
    the face model's quality parity."""
    settings, config, outputs = audit.settings, audit.config, audit.outputs
    if not config.bias.enabled:
        return
    with findings.timed("bias"):
        faces = read(outputs.catalog, "faces", columns=FACE_COLUMNS).to_pandas()
        findings.rows.extend(bias.representation(faces, config.bias))
        shot_assets = {s["shot_id"]: s["asset_id"] for s in outputs.shots}
        lists, note = _ranked_lists(settings, outputs.catalog, config, sorted(shot_assets))
        findings.context["exposure_note"] = note
        for source, ranked in lists.items():
            findings.rows.extend(bias.exposure(ranked, faces, shot_assets, config.bias, source=source))
        findings.context["catalog_faces"] = len(faces)
        if config.bias.quality_parity:
            findings.rows.extend(_quality_rows(settings, config, audit.faces, settings.storage_options()))


def write_report(settings: Settings, findings: Findings, summary: dict[str, Any]) -> str:
    """The HTML report beside the run's reports; returns its URI."""
    from catalog.storage import write_atomic

    uri = settings.location("reports", findings.run_id, "audit.html")
    html = report.render(
        {**findings.context, "summary": summary, "rows": findings.rows, "evidence": findings.evidence}
    )
    write_atomic(uri, html.encode(), settings.storage_options())
    return uri


class _LazyAnalyzer:
    """The face analyzer, loaded the first time something needs it (most audits of small runs do not)."""

    def __init__(self, analyzer: Any = None) -> None:
        self.analyzer = analyzer

    def __call__(self) -> Any:
        if self.analyzer is None:
            from actors.faces import FaceAnalyzer

            self.analyzer = FaceAnalyzer()
        return self.analyzer


def _detector_facts(weights: str | None) -> dict[str, Any]:
    from jobs.audit.manipulation import DEFAULT_WEIGHTS

    with open(weights or DEFAULT_WEIGHTS) as handle:
        trained = json.load(handle)
    return {"held_out": trained["held_out"], "recipe": trained["recipe"]}


def _face_rows(
    settings: Settings,
    run_id: str,
    row: dict[str, Any],
    comparisons: list[identity.FrameComparison],
    config: AuditConfig,
    detector: ManipulationDetector | None,
    evidence: dict[str, str],
) -> list[dict[str, Any]]:
    """Identity-drift and manipulation findings for one output."""
    subject = {"subject": row["output_uri"], "asset_id": row["asset_id"]}
    rows = []
    if config.identity.enabled:
        found = identity.drift(comparisons, config.identity.threshold)
        uri = None
        if found["worst"] is not None:
            uri = _evidence(settings, run_id, row["output_uri"], found["worst"], evidence)
        rows.append(
            {
                **subject,
                "audit": "identity_drift",
                "metric": "max_identity_distance",
                "value": found["value"],
                "threshold": config.identity.threshold,
                "flagged": found["flagged"],
                "detail": json.dumps({**found["detail"], "kind": row["kind"]}),
                "evidence_uri": uri,
            }
        )
    if detector is not None:
        threshold = config.manipulation.threshold or detector.threshold
        pairs = [p for c in comparisons for p in c.pairs if min(p.source_crop.shape[:2]) >= 16]
        scores = [(detector.score(p.output_crop), detector.score(p.source_crop)) for p in pairs]
        introduced = [out for out, src in scores if out > threshold >= src]
        value = max((out for out, _ in scores), default=None)
        rows.append(
            {
                **subject,
                "audit": "manipulation",
                "metric": "max_face_score",
                "value": value,
                "threshold": threshold,
                "flagged": bool(introduced),
                "detail": json.dumps(
                    {
                        "model": detector.model,
                        "faces_scored": len(scores),
                        "output_scores": [round(o, 4) for o, _ in scores],
                        "source_scores": [round(s, 4) for _, s in scores],
                        "introduced_by_output": len(introduced),
                        "kind": row["kind"],
                    }
                ),
            }
        )
    return rows


def _evidence(
    settings: Settings, run_id: str, output_uri: str, pair: identity.FacePair, evidence: dict[str, str]
) -> str:
    """Source and output face side by side, as a JPEG beside the report; the report embeds it too."""
    from catalog.storage import write_atomic

    height = 160
    crops = [
        cv2.resize(c, (max(1, round(c.shape[1] * height / c.shape[0])), height))
        for c in (pair.source_crop, pair.output_crop)
    ]
    strip = np.concatenate([crops[0], np.full((height, 8, 3), 255, np.uint8), crops[1]], axis=1)
    ok, data = cv2.imencode(".jpg", cv2.cvtColor(strip, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 85])
    assert ok
    name = hashlib.sha256(f"{output_uri}:{pair.frame}".encode()).hexdigest()[:16]
    uri = settings.location("reports", run_id, "evidence", f"{name}.jpg")
    write_atomic(uri, data.tobytes(), settings.storage_options())
    evidence[uri] = base64.b64encode(data.tobytes()).decode()
    return uri


def _provenance_rows(
    remasters: list[dict[str, Any]], config: AuditConfig, options: dict[str, Any], context: dict[str, Any]
) -> list[dict[str, Any]]:
    rows = []
    c2pa = config.provenance.c2pa
    context["c2pa_configured"] = c2pa.configured
    by_asset: dict[str, dict[str, str]] = defaultdict(dict)
    for row in remasters:
        if row["status"] == "ok" and row["output_sha256"]:
            by_asset[row["asset_id"]][row["kind"]] = row["output_sha256"]
    for row in remasters:
        if row["status"] != "ok":
            continue
        checked = provenance.verify_output(row, options)
        credentials = None
        if provenance.c2pa_format(row["output_uri"]):
            credentials = provenance.verify_credentials(row, checked["manifest"], options)
            if credentials is None and c2pa.configured and c2pa.seal and not checked["flagged"]:
                related = {k: v for k, v in by_asset[row["asset_id"]].items() if k != row["kind"]}
                uri = provenance.seal(
                    row, checked["manifest"], c2pa, related=related, storage_options=options
                )
                sealed = provenance.verify_credentials(row, checked["manifest"], options)
                if sealed is None:
                    raise RuntimeError(
                        f"{row['output_uri']}: sealed, but its credentials cannot be read back"
                    )
                credentials = {
                    **sealed,
                    "sealed_by_audit": True,
                    "uri": uri,
                }
        flagged = checked["flagged"] or bool(credentials and credentials["flagged"])
        problems = checked["problems"] + (credentials["problems"] if credentials else [])
        rows.append(
            {
                "audit": "provenance",
                "subject": row["output_uri"],
                "asset_id": row["asset_id"],
                "metric": "verified",
                "value": 0.0 if flagged else 1.0,
                "flagged": flagged,
                "detail": json.dumps(
                    {**checked["detail"], "kind": row["kind"], "problems": problems, "c2pa": credentials}
                ),
            }
        )
    return rows


def _ranked_lists(
    settings: Settings, catalog: Any, config: AuditConfig, shot_ids: list[str]
) -> tuple[dict[str, dict[str, list[str]]], str]:
    """Top results of search and of recommendations for the configured (or sampled) query shots,
    and "for you" lists of users with events, from the query engine the API serves."""
    from indexes import recommend
    from indexes.query import SHOT_SPACES, QueryEngine, QueryError

    bias_config = config.bias
    engine = QueryEngine(settings, catalog)
    try:
        engine.state.require(SHOT_SPACES)
    except LookupError as exc:
        return {}, f"exposure was not measured: {exc}"
    queries = list(bias_config.queries)
    if not queries and bias_config.sample_queries and shot_ids:
        rng = np.random.default_rng(bias_config.seed)
        pool = sorted(shot_ids)
        picks = rng.choice(len(pool), min(len(pool), bias_config.sample_queries), replace=False)
        queries = [pool[i] for i in sorted(picks)]
    top = bias_config.top_k
    lists: dict[str, dict[str, list[str]]] = {"search": {}, "recommendations": {}}
    for query in queries:
        for source, ask in (
            ("search", engine.by_shot),
            ("recommendations", partial(recommend.more_like_this, engine)),
        ):
            try:
                lists[source][query] = [hit.shot_id for hit in ask(query, top=top).hits]
            except (LookupError, QueryError) as exc:
                log.info("audit query %s gave no %s results: %s", query, source, exc)
    users = sorted(set(read(catalog, "events", columns=("user_id",))["user_id"].to_pylist()))
    for user in users[: bias_config.sample_queries]:
        try:
            lists["recommendations"][f"user:{user}"] = [
                hit.shot_id for hit in recommend.for_you(engine, user, top=top).hits
            ]
        except (LookupError, QueryError) as exc:
            log.info("no recommendations for user %s: %s", user, exc)
    origin = "configured" if bias_config.queries else "drawn at random from the catalog"
    note = (
        f"{len(lists['search'])} query shots ({origin}), top {top} results each; recommendations: "
        f"{len(lists['recommendations'])} lists ('more like this' for the same shots, 'for you' for "
        f"{min(len(users), bias_config.sample_queries)} users with events)"
    )
    return lists, note


def _quality_rows(
    settings: Settings, config: AuditConfig, faces_needed: _LazyAnalyzer, options: dict[str, Any]
) -> list[dict[str, Any]]:
    """Quality parity on the labelled set; its outcomes depend only on the face model, so they are kept."""
    import pandas as pd

    analyzer = faces_needed()
    model = analyzer.faces_model
    uri = settings.location(
        "reports", "quality-parity", hashlib.sha256(model.encode()).hexdigest()[:16] + ".json"
    )
    fs, path = fsspec.core.url_to_fs(uri, **options)
    if fs.exists(path):
        outcomes = pd.DataFrame(json.loads(fs.cat_file(path)))
    else:
        outcomes = bias.labelled_outcomes(analyzer)
        from catalog.storage import write_atomic

        write_atomic(uri, outcomes.to_json(orient="records").encode(), options)
    return bias.quality_parity(outcomes, config.bias, model=model)


def _summary(
    run_id: str, audit_id: str, rows: list[dict[str, Any]], clock: dict[str, float]
) -> dict[str, Any]:
    counts: dict[str, dict[str, int]] = defaultdict(lambda: {"checked": 0, "flagged": 0})
    for row in rows:
        counts[row["audit"]]["checked"] += 1
        counts[row["audit"]]["flagged"] += int(bool(row.get("flagged")))
    return {
        "run_id": run_id,
        "audit_id": audit_id,
        "audits": dict(counts),
        "flagged": [
            {"audit": r["audit"], "subject": r.get("subject"), "metric": r["metric"], "value": r["value"]}
            for r in rows
            if r.get("flagged")
        ],
        "seconds": {k: round(v, 2) for k, v in clock.items()},
    }
