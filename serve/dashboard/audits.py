"""The audits page: a run's latest audit, its bias charts with their intervals, flags and evidence."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from serve.dashboard import charts
from serve.dashboard.data import DashboardData
from serve.dashboard.urls import evidence_key, evidence_url, report_url
from serve.media import MediaNotFoundError

SHARES = ("representation_share", "exposure_share")
PARITY = ("detection_rate", "gender_agreement")
CONCENTRATION = ("exposure_gini", "exposure_coverage")
FACES = ("identity_drift", "manipulation")


def audit_page(data: DashboardData, run_id: str | None) -> dict[str, Any]:
    """The latest audit of `run_id` (or of the latest audited run), grouped as the page shows it."""
    choices = data.latest_audits()
    chosen = next((c for c in choices if c["run_id"] == run_id), choices[0] if choices else None)
    if chosen is None:
        return {"choices": [], "chosen": None, "missing": run_id}
    rows = [
        {**r, "detail": _json(r["detail"]), "evidence_url": evidence_url(r["evidence_uri"])}
        for r in data.audit_rows(chosen["audit_id"])
    ]
    bias = [r for r in rows if r["audit"] == "bias"]
    shares = [{**r, "label": r["detail"].get("group")} for r in bias if r["metric"] in SHARES]
    parity = [
        {**r, "label": f"{r['detail'].get('group')} · {r['metric'].replace('_', ' ')}"}
        for r in bias
        if r["metric"] in PARITY
    ]
    concentration = [
        {**r, "label": f"{r['subject']} · {r['metric'].removeprefix('exposure_')}"}
        for r in bias
        if r["metric"] in CONCENTRATION
    ]
    groups: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
    for r in shares:
        key = (r["metric"], r["detail"].get("source", ""), r["detail"].get("attribute", r["subject"]))
        groups.setdefault(key, []).append(r)
    return {
        "choices": choices,
        "chosen": chosen,
        "missing": run_id if run_id and run_id != chosen["run_id"] else None,
        "counts": _audit_counts(rows),
        "share_charts": [
            {
                "title": _share_title(*name),
                "rows": members,
                "chart": charts.interval_chart(members, reference=True),
            }
            for name, members in groups.items()
        ],
        "parity": parity,
        "parity_chart": charts.interval_chart(parity) if parity else None,
        "concentration": concentration,
        "concentration_chart": charts.interval_chart(concentration) if concentration else None,
        "notes": [r for r in bias if r["value"] is None],
        "faces": [r for r in rows if r["audit"] in FACES],
        "provenance": [r for r in rows if r["audit"] == "provenance"],
        "others": [r for r in rows if r["audit"] not in ("bias", "provenance", *FACES)],
        "report_url": report_url(chosen["run_id"]),
    }


def evidence_uri(data: DashboardData, key: str) -> str:
    """The evidence frame a key names; keys are hashes of the catalog's URIs, never paths."""
    uris = data.evidence_uris(evidence_key)
    if key not in uris:
        raise MediaNotFoundError("no audit names that evidence")
    return uris[key]


def report_uri(data: DashboardData, run_id: str) -> str:
    """Where the audit job wrote a run's HTML report."""
    if run_id not in data.audited_runs():
        raise MediaNotFoundError(f"run {run_id[:80]!r} has not been audited: archivist audit RUN_ID")
    return data.settings.location("reports", run_id, "audit.html")


def _audit_counts(rows: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    counts: dict[str, dict[str, Any]] = {}
    for r in rows:
        entry = counts.setdefault(r["audit"], {"audit": r["audit"], "checks": 0, "flagged": 0})
        entry["checks"] += 1
        entry["flagged"] += int(bool(r["flagged"]))
    return list(counts.values())


def _share_title(metric: str, source: str, attribute: str) -> str:
    where = "in the catalog" if metric == "representation_share" else f"in {source} results (rank-weighted)"
    return f"{attribute.replace('_', ' ')}: share of faces {where}"


def _json(text: str | None) -> dict[str, Any]:
    try:
        value = json.loads(text) if text else {}
    except ValueError:
        return {"text": text}
    return value if isinstance(value, dict) else {"value": value}
