"""Runs as the pages show them: the history, one run's steps and failures, a running job's progress."""

from __future__ import annotations

import datetime as dt
from typing import Any

from catalog.state import RunRecord
from serve.dashboard import charts
from serve.dashboard.data import DashboardData

RUNS_CHARTED = 20


def run_row(run: RunRecord) -> dict[str, Any]:
    """A run as the pages show it: times in UTC, its steps in the order it recorded them with their
    throughput, the summary's counts."""
    summary = run.summary
    ended = run.finished_at
    seconds = ((ended or dt.datetime.now(dt.UTC)) - run.started_at).total_seconds()
    steps = [
        {
            "step": s.step,
            "rows": s.rows,
            "failures": s.failures,
            "seconds": s.seconds,
            "rate": s.rows / s.seconds if s.seconds >= 0.01 else None,
        }
        for s in run.steps
    ]
    assets = summary.get("assets", {})
    shots = summary.get("shots")
    return {
        "run_id": run.run_id,
        "job": run.job,
        "status": run.status,
        "error": run.error,
        "pipeline_version": run.pipeline_version,
        "started_at": run.started_at,
        "finished_at": ended,
        "seconds": seconds,
        "outcome": summary.get("outcome"),
        "assets_ok": assets.get("ok"),
        "assets_damaged": assets.get("damaged"),
        "assets_failed": assets.get("failed"),
        "outputs_failed": summary.get("outputs", {}).get("failed"),
        "assets_skipped": assets.get("skipped"),
        "shots": shots,
        "shots_per_s": shots / seconds if shots and seconds > 0 else None,
        "steps": steps,
        "failures": sum(s["failures"] for s in steps),
    }


def with_progress(data: DashboardData, run: dict[str, Any]) -> dict[str, Any]:
    """A running job's row with its progress: the assets it has spooled so far, and how many its
    fingerprint step found (its steps come as they end)."""
    found = next((s["rows"] for s in run["steps"] if s["step"] == "fingerprint"), None)
    return {**run, "spooled": data.spooled_count(run["run_id"]), "found": found}


def shown_row(data: DashboardData, run: RunRecord) -> dict[str, Any]:
    """A run's row, with its progress while it runs."""
    row = run_row(run)
    return with_progress(data, row) if row["status"] == "running" else row


def runs_page(data: DashboardData, limit: int) -> dict[str, Any]:
    runs = [shown_row(data, r) for r in data.runs(limit)]
    charted = runs[:RUNS_CHARTED][::-1]
    return {
        "runs": runs,
        "limit": limit,
        "more": len(runs) == limit,
        "charts": {"steps": charts.steps_chart(charted), "throughput": charts.throughput_chart(charted)}
        if charted
        else {},
    }


def run_page(data: DashboardData, run_id: str) -> dict[str, Any] | None:
    """One run: its steps with a chart of where the time went, the assets it failed on, those it
    found damaged, and the outputs it failed to make."""
    found = data.run(run_id)
    if found is None:
        return None
    row = shown_row(data, found)
    failed = found.summary.get("failed")
    row["failed"] = data.failed_assets(run_id) if failed is None else failed
    damaged = found.summary.get("damaged")
    row["damaged"] = data.damaged_assets(run_id) if damaged is None else damaged
    row["failed_outputs"] = found.summary.get("outputs_failed") or []
    row["charts"] = {"steps": charts.step_seconds_chart(row["steps"])} if row["steps"] else {}
    return row


def progress(data: DashboardData, run_id: str) -> dict[str, Any] | None:
    """What a running job's page polls for."""
    found = data.run(run_id)
    if found is None:
        return None
    row = shown_row(data, found)
    return {
        "run_id": run_id,
        "status": row["status"],
        "seconds": row["seconds"],
        "spooled": row.get("spooled"),
        "steps": row["steps"],
    }
