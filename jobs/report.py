"""How runs, queries and hits look on a terminal."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

import pyarrow as pa
from rich import box
from rich.console import Console
from rich.table import Table

MAX_CELL = 60


def run_summary(summary: dict[str, Any], console: Console) -> None:
    assets = summary["assets"]
    head = Table(title=f"run {summary['run_id']} · job {summary['job']} · {summary['pipeline_version']}")
    for column in ("assets ok", "damaged", "failed", "skipped", "resumed", "shots", "indexes"):
        head.add_column(column, justify="right")
    indexes = ", ".join(f"{space} {v['vectors']}" for space, v in summary["indexes"].items()) or "unchanged"
    head.add_row(
        str(assets["ok"]),
        str(assets.get("damaged", 0)),
        str(assets["failed"]),
        str(assets["skipped"]),
        str(assets["resumed"]),
        str(summary["shots"]),
        indexes,
    )
    console.print(head)
    timing = Table(title="seconds per stage")
    timing.add_column("stage")
    timing.add_column("seconds", justify="right")
    for stage, seconds in summary["seconds"].items():
        timing.add_row(stage, f"{seconds:.2f}")
    console.print(timing)
    _asset_errors(console, "failed assets", "error", summary["failed"])
    damaged = "damaged assets (decoded in part: what decoded is catalogued)"
    _asset_errors(console, damaged, "damage", summary.get("damaged") or [])


def outcome_line(summary: dict[str, Any], console: Console) -> None:
    """The last line of a run's report: whether everything came out whole, and if not, how many
    assets failed or are damaged and how many outputs failed (the run then exits with status 3)."""
    assets = summary["assets"]
    outputs_failed = summary.get("outputs", {}).get("failed", 0)
    if summary.get("outcome") == "ok":
        console.print(
            f"run {summary['run_id']} completed: {assets['ok']} assets ok, nothing failed or damaged",
            highlight=False,
        )
        return
    console.print(
        f"[bold red]run {summary['run_id']} completed with problems:[/bold red] "
        f"{assets['failed']} assets failed, {assets.get('damaged', 0)} damaged, "
        f"{outputs_failed} outputs failed ({assets['ok']} ok)",
        highlight=False,
    )


def run_row(run: Any) -> dict[str, Any]:
    """A run as one flat record: what `jobs history` shows and prints as JSON."""
    summary = run.summary or {}
    assets = summary.get("assets", {})
    ended = run.finished_at
    return {
        "run_id": run.run_id,
        "job": run.job,
        "status": run.status,
        "started_at": run.started_at,
        "seconds": round((ended - run.started_at).total_seconds(), 1) if ended else None,
        "outcome": summary.get("outcome"),
        "assets_ok": assets.get("ok"),
        "assets_damaged": assets.get("damaged"),
        "assets_failed": assets.get("failed"),
        "outputs_failed": summary.get("outputs", {}).get("failed"),
        "assets_skipped": assets.get("skipped"),
        "shots": summary.get("shots"),
        "steps": {
            s.step: {"rows": s.rows, "failures": s.failures, "seconds": round(s.seconds, 3)}
            for s in run.steps
        },
        "error": run.error,
    }


def runs_table(rows: list[dict[str, Any]], console: Console) -> None:
    out = Table(title="runs")
    columns = ("run", "job", "status", "started", "seconds", "ok", "damaged", "failed", "skipped", "shots")
    for column in (*columns, "error"):
        out.add_column(column, overflow="fold")
    for row in rows:
        out.add_row(
            row["run_id"],
            row["job"],
            _run_status(row),
            f"{row['started_at']:%Y-%m-%d %H:%M:%S}",
            _cell(row["seconds"]),
            _cell(row["assets_ok"]),
            _cell(row["assets_damaged"]),
            _cell(row["assets_failed"]),
            _cell(row["assets_skipped"]),
            _cell(row["shots"]),
            _cell(row["error"]),
        )
    console.print(out)


def _run_status(row: dict[str, Any]) -> str:
    """A run's status as history shows it: a run that completed with problems says so."""
    if row["status"] == "succeeded" and row.get("outcome") == "problems":
        return "completed with problems"
    return row["status"]


def remasters_table(outputs: list[dict[str, Any]], console: Console) -> None:
    """Where each output went (its manifest sits beside it), what restoration changed, and how far
    the access copy stands from its source (VMAF). The file's name says which output it is
    (`master.mkv`, `access.mp4`), so no column repeats it; a failed asset's error is its own line."""
    table = Table(
        title="remastered outputs (manifest: <output>.manifest.json beside each)",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
        collapse_padding=True,
    )
    table.add_column("output", no_wrap=True)
    for column in ("codec", "size", "noise", "sharp", "flicker", "VMAF"):
        table.add_column(column, no_wrap=True, justify="right" if column == "VMAF" else "left")
    room = _path_room(console, 30)
    failed = []
    for row in outputs:
        if row["status"] != "ok":
            failed.append(row)
            continue
        change = [
            f"{_figure(row[f'{m}_before'])}→{_figure(row[f'{m}_after'])}"
            for m in ("noise", "sharpness", "flicker")
        ]
        vmaf = row.get("vmaf_vs_source")  # the access copy against its source; none for a master
        table.add_row(
            _path(row["output_uri"], room),
            row.get("codec") or row["kind"],
            f"{row['width']}×{row['height']}",
            *change,
            "" if vmaf is None else f"{vmaf:.1f}",
        )
    console.print(table)
    for row in failed:
        console.print(f"[red]failed:[/red] {row['source_uri']}: {row['error']}", highlight=False)


def _figure(value: float | None) -> str:
    """A before/after figure in three significant digits: the change, not the decimals, is read."""
    return "" if value is None else f"{value:.3g}"


def audit_line(audit: dict[str, Any], console: Console) -> None:
    if "error" in audit:
        console.print(f"[red]audit failed:[/red] {audit['error']} (run it again: archivist audit RUN_ID)")
        return
    flagged = f"[bold red]{audit['flagged']} flagged[/bold red]" if audit["flagged"] else "nothing flagged"
    console.print(f"audit: {audit['checked']} checks, {flagged}; report: {audit.get('report') or 'none'}")


def hits_table(hits: list[dict[str, Any]], console: Console, *, title: str | None = None) -> None:
    """Search hits as a person reads them: which file, when, what is in it, how close."""
    out = Table(title=title)
    right = ("time", "score", "copies")
    for column in ("shot", "file", "time", "score", "caption", "copies"):
        out.add_column(column, justify="right" if column in right else "left", overflow="fold")
    for hit in hits:
        name = hit["uri"].rstrip("/").rsplit("/", 1)[-1]
        out.add_row(
            hit["shot_id"][:12],
            name,
            f"{hit['start_s']:.1f}–{hit['end_s']:.1f} s",
            f"{hit['score']:.3f}",
            hit.get("caption") or "",
            str(len(hit.get("duplicates") or [])),
        )
    console.print(out)


def arrow_table(rows: pa.Table, console: Console, *, title: str | None = None) -> None:
    out = Table(title=title)
    for name in rows.column_names:
        out.add_column(name, overflow="fold")
    for row in rows.to_pylist():
        out.add_row(*(_cell(v) for v in row.values()))
    console.print(out)
    console.print(f"[dim]{rows.num_rows} rows[/dim]")


def as_json(rows: pa.Table) -> str:
    return json.dumps(rows.to_pylist(), default=str, indent=2)


def as_csv(rows: pa.Table) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(rows.column_names)
    for row in rows.to_pylist():
        writer.writerow(["" if v is None else v for v in row.values()])
    return buffer.getvalue()


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4g}"
    text = str(value)
    return text if len(text) <= MAX_CELL else text[: MAX_CELL - 1] + "…"


def stage_reference(reference: list[dict[str, Any]], console: Console) -> None:
    """`archivist stages`: a table per stage of its parameters, under what it reads and owns."""
    for entry in reference:
        off = "" if entry["enabled_by_default"] else " (off unless enabled)"
        console.print(f"\n[bold]{entry['section']}[/bold]{off}: {entry['about']}", highlight=False)
        console.print(f"  per {entry['level']}; reads {', '.join(entry['reads'] + entry['uses']) or '-'}")
        console.print(f"  owns {'; '.join(entry['owns']) or 'nothing'}", highlight=False)
        table = Table(show_edge=False, pad_edge=False)
        for column in ("parameter", "default", "bounds", "meaning"):
            table.add_column(column)
        for p in entry["parameters"]:
            bounds = " ".join(f"{k} {v}" for k, v in p["bounds"].items())
            meaning = p["description"] + ("" if p["changes_output"] else " (does not change the output)")
            table.add_row(p["name"], repr(p["default"]), bounds, meaning)
        if entry["parameters"]:
            console.print(table)


def _asset_errors(console: Console, title: str, what: str, items: list[dict[str, Any]]) -> None:
    """A table of assets and what went wrong with each, when there are any."""
    if not items:
        return
    table = Table(title=title)
    table.add_column("uri", no_wrap=True)
    table.add_column(what, overflow="fold")
    room = _path_room(console, 40)
    for item in items:
        table.add_row(_path(item["uri"], room), item["error"] or "")
    console.print(table)


def _path_room(console: Console, share: int) -> int:
    """Characters a path column gets: `share` percent of the console's width, at least 24."""
    return max(24, console.width * share // 100)


def _path(path: str, room: int) -> str:
    """A path or URI in `room` characters, on one line: its end (the file's name, the folders
    nearest it) kept, its start elided, rather than the whole folded a letter per line."""
    if len(path) <= room:
        return path
    return "…" + path[-(room - 1) :]
