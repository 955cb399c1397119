"""The overview: the archive at a glance, what each stage has covered, runs going on, the last run."""

from __future__ import annotations

import posixpath
from typing import Any

from serve.dashboard import charts
from serve.dashboard.data import DashboardData
from serve.dashboard.runs import run_row, with_progress

RUNS_SHOWN = 50


def overview_page(data: DashboardData) -> dict[str, Any]:
    state = data.engine.state
    view = state.view
    assets = data.assets(state).num_rows
    statuses = data.status_counts(state)
    ok_assets, audited = data.catalogued_and_audited(state)
    seconds = sum(s["seconds"] or 0.0 for s in statuses if s["status"] == "ok")
    visual = state.spaces.get("visual")
    coverage = [
        _share("segmented", "assets with shots", data.segmented(view), assets),
        _share(
            "remastered",
            "catalogued assets with a master or access copy",
            data.remastered_count(state),
            ok_assets,
        ),
        _share("described", "shots with a caption or tags", int(data.described(view).sum()), view.size),
        _share(
            "indexed",
            "shots in the visual search index",
            int((visual.positions >= 0).sum()) if visual is not None else 0,
            view.size,
        ),
        _share("audited", "catalogued assets whose run was audited", audited, ok_assets),
    ]
    runs = [run_row(r) for r in data.runs(RUNS_SHOWN)]
    finished = next((r for r in runs if r["status"] != "running"), None)
    return {
        "assets": assets,
        "shots": view.size,
        "seconds": seconds,
        "statuses": statuses,
        "coverage": coverage,
        "runs": data.run_count(),
        "running": [with_progress(data, r) for r in runs if r["status"] == "running"],
        "last": changes(data, finished) if finished else None,
        "charts": {
            "statuses": charts.bar_chart(
                [s["status"] for s in statuses],
                [s["assets"] for s in statuses],
                "assets",
                colour_by_status=True,
            ),
            "coverage": charts.coverage_chart(coverage),
        },
    }


def changes(data: DashboardData, run: dict[str, Any]) -> dict[str, Any]:
    """What a run changed: rows its commits added and removed per table, the assets it wrote."""
    written = [
        {"name": posixpath.basename(r["uri"]), **r}
        for r in data.assets_of_run(data.engine.state, run["run_id"])
    ]
    return {
        "run": run,
        "tables": data.table_changes(run["run_id"]),
        "assets": sorted(written, key=lambda r: (r["status"] != "failed", r["name"])),
    }


def _share(stage: str, meaning: str, done: int, total: int) -> dict[str, Any]:
    return {
        "stage": stage,
        "meaning": meaning,
        "done": done,
        "total": total,
        "share": done / total if total else 0.0,
    }
