"""The pages' charts: Plotly figure specs (plain dicts), embedded in the page and drawn by its script."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

STATUS_COLOURS = {
    "ok": "#2e7d32",
    "damaged": "#e65100",
    "failed": "#c62828",
    "running": "#1565c0",
    "succeeded": "#2e7d32",
}
LAYOUT = {
    "margin": {"l": 50, "r": 20, "t": 30, "b": 40},
    "height": 280,
    "font": {"family": "system-ui, sans-serif", "size": 12},
    "paper_bgcolor": "rgba(0,0,0,0)",
    "plot_bgcolor": "rgba(0,0,0,0)",
}
RUNS_AXIS = {"type": "category", "showticklabels": False, "title": {"text": "runs, oldest first"}}


def bar_chart(
    labels: Sequence[str], values: Sequence[float], axis: str, *, colour_by_status: bool = False
) -> dict[str, Any]:
    colours = [STATUS_COLOURS.get(label, "#607d8b") for label in labels] if colour_by_status else "#3f51b5"
    return {
        "data": [{"type": "bar", "x": list(labels), "y": list(values), "marker": {"color": colours}}],
        "layout": {**LAYOUT, "yaxis": {"title": {"text": axis}}},
    }


def coverage_chart(coverage: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The share of the catalog each stage has been through, as horizontal bars."""
    return _horizontal_bars(
        [c["stage"] for c in coverage],
        [round(100 * c["share"], 1) for c in coverage],
        {"range": [0, 100], "title": {"text": "%"}},
        text=[f"{c['done']:,} of {c['total']:,}" for c in coverage],
    )


def step_seconds_chart(steps: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Where one run's time went, a bar a step, in the order the run recorded them."""
    spent = [s for s in steps if s["seconds"] > 0]
    chart = _horizontal_bars(
        [s["step"] for s in spent], [round(s["seconds"], 3) for s in spent], {"title": {"text": "seconds"}}
    )
    chart["layout"]["height"] = max(200, 24 * len(spent) + 60)
    return chart


def _horizontal_bars(
    labels: Sequence[str], values: Sequence[float], xaxis: dict[str, Any], *, text: Sequence[str] = ()
) -> dict[str, Any]:
    """Bars listed top down in the order given."""
    bars: dict[str, Any] = {
        "type": "bar",
        "orientation": "h",
        "y": list(labels)[::-1],
        "x": list(values)[::-1],
        "marker": {"color": "#3f51b5"},
    }
    if text:
        bars.update(text=list(text)[::-1], textposition="auto")
    margin: dict[str, Any] = {**LAYOUT["margin"], "l": 90}  # type: ignore[dict-item]
    return {"data": [bars], "layout": {**LAYOUT, "margin": margin, "xaxis": xaxis}}


def step_names(runs: Sequence[Mapping[str, Any]]) -> list[str]:
    """Every step of these runs once, each in the order the runs recorded them: a step that one run
    has and another lacks goes right after the step it followed."""
    names: list[str] = []
    for run in runs:
        at = 0
        for step in run["steps"]:
            if step["step"] in names:
                at = names.index(step["step"]) + 1
            else:
                names.insert(at, step["step"])
                at += 1
    return names


def steps_chart(runs: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Seconds per step, stacked, per run (oldest left): where each run's time went."""
    names = [r["run_id"] for r in runs]
    traces = []
    for step in step_names(runs[::-1]):
        seconds = [next((s["seconds"] for s in r["steps"] if s["step"] == step), 0.0) for r in runs]
        if any(seconds):
            traces.append({"type": "bar", "name": step, "x": names, "y": [round(v, 3) for v in seconds]})
    return {
        "data": traces,
        "layout": {
            **LAYOUT,
            "height": 320,
            "barmode": "stack",
            "yaxis": {"title": {"text": "seconds"}},
            "xaxis": RUNS_AXIS,
        },
    }


def throughput_chart(runs: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    return {
        "data": [
            {
                "type": "scatter",
                "mode": "lines+markers",
                "name": "shots per second",
                "x": [r["run_id"] for r in runs],
                "y": [round(r["shots_per_s"], 3) if r["shots_per_s"] else 0 for r in runs],
            },
            {
                "type": "bar",
                "name": "failures",
                "x": [r["run_id"] for r in runs],
                "y": [(r["assets_failed"] or 0) + r["failures"] for r in runs],
                "yaxis": "y2",
                "marker": {"color": "#c62828"},
                "opacity": 0.5,
            },
        ],
        "layout": {
            **LAYOUT,
            "yaxis": {"title": {"text": "shots / s"}},
            "yaxis2": {
                "title": {"text": "failures"},
                "overlaying": "y",
                "side": "right",
                "rangemode": "tozero",
            },
            "xaxis": RUNS_AXIS,
            "legend": {"orientation": "h"},
        },
    }


def interval_chart(rows: Sequence[Mapping[str, Any]], *, reference: bool = False) -> dict[str, Any]:
    """Values with their confidence intervals as error bars, and beside each the mark it is judged
    by: the reference share it is held against, or the value above which it is flagged."""
    labels = [r["label"] or r["subject"] for r in rows]
    values = [r["value"] or 0.0 for r in rows]
    low = [max(0.0, (r["value"] or 0.0) - r["ci_low"]) if r["ci_low"] is not None else 0.0 for r in rows]
    high = [max(0.0, r["ci_high"] - (r["value"] or 0.0)) if r["ci_high"] is not None else 0.0 for r in rows]
    data: list[dict[str, Any]] = [
        {
            "type": "bar",
            "name": "estimate",
            "x": labels,
            "y": values,
            "marker": {"color": ["#c62828" if r["flagged"] else "#3f51b5" for r in rows]},
            "error_y": {
                "type": "data",
                "symmetric": False,
                "array": high,
                "arrayminus": low,
                "color": "#222",
            },
        }
    ]
    name, marks = (
        ("reference", [r["detail"].get("reference") for r in rows])
        if reference
        else ("flagged above", [r["threshold"] for r in rows])
    )
    if any(v is not None for v in marks):
        data.append(
            {
                "type": "scatter",
                "mode": "markers",
                "name": name,
                "x": labels,
                "y": marks,
                "marker": {"symbol": "line-ew-open", "size": 28, "color": "#ff8f00", "line": {"width": 3}},
            }
        )
    return {
        "data": data,
        "layout": {
            **LAYOUT,
            "yaxis": {"rangemode": "tozero"},
            "legend": {"orientation": "h"},
            "showlegend": len(data) > 1,
        },
    }
