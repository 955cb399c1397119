"""What a run shows while it runs: bars on a terminal, a few lines elsewhere, Ray Data's own
per-operator output off, and `--json` still one document alone on standard output."""

from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import sys
import time
from pathlib import Path

import pyarrow as pa
import pytest
from rich.console import Console

from jobs import report
from jobs.progress import RunProgress


def _rows(asset: str, shots: int) -> pa.Table:
    return pa.table(
        {
            "asset_id": [asset] * (shots + 1),
            "shot_id": [f"{asset}-{i}" for i in range(shots)] + [f"{asset}-0"],
            "keyframe_index": [0] * shots + [1],  # and a second keyframe of its first shot
        }
    )


class _Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


def test_off_a_terminal_progress_is_a_line_every_few_seconds_not_a_line_per_batch() -> None:
    lines = _Lines()
    logger = logging.getLogger("jobs.progress")
    logger.addHandler(lines)
    logger.setLevel(logging.INFO)
    started = time.monotonic()
    try:
        with RunProgress(4, stream=io.StringIO(), interactive=False, every_s=0.5) as progress:
            for i in range(200):  # 200 batches over about a second
                progress.rows(_rows(f"a{i % 4}", 3))
                if i % 50 == 49:
                    progress.asset_done()
                time.sleep(0.005)
    finally:
        logger.removeHandler(lines)
    spent = time.monotonic() - started
    assert 2 <= len(lines.lines) <= spent / 0.5 + 2 and len(lines.lines) < 50, lines.lines
    assert lines.lines[-1].startswith("progress: 4/4 assets, 600 shots, 800 keyframes")
    assert any(line.endswith("left") for line in lines.lines[:-1]) or spent < 1, lines.lines


def test_on_a_terminal_progress_is_bars_for_assets_shots_and_keyframes() -> None:
    screen = io.StringIO()
    with RunProgress(2, stream=screen, interactive=True) as progress:
        progress.rows(_rows("a", 3))
        progress.asset_done()
    shown = screen.getvalue()
    for bar in ("assets", "shots", "keyframes"):
        assert bar in shown
    assert "1/2" in shown


def test_the_demos_tables_fit_80_columns_with_paths_on_one_line() -> None:
    """A long output path keeps its file name whole on one line instead of folding a letter a line."""
    console = Console(file=io.StringIO(), width=80, color_system=None)
    output = "/home/archivist/.local/share/archivist/masters/" + "3f9a2c41d7e8" * 5 + "0c7b/access.mp4"
    report.remasters_table(
        [
            {
                "status": "ok",
                "kind": "access",
                "codec": "av1",
                "vmaf_vs_source": 93.46,
                "output_uri": output,
                "width": 1280,
                "height": 544,
                **{f"{m}_{w}": 0.5 for m in ("noise", "sharpness", "flicker") for w in ("before", "after")},
            }
        ],
        console,
    )
    report.run_summary(
        {
            "run_id": "20261202T180348-6cc5dfc3",
            "job": "demo",
            "pipeline_version": "p2-b8486261bd",
            "assets": {"ok": 2, "damaged": 0, "failed": 1, "skipped": 0, "resumed": 0},
            "shots": 24,
            "indexes": {s: {"vectors": 24} for s in ("visual", "text", "concept")},
            "seconds": {"process": 61.2},
            "failed": [{"uri": "/data/archive/tapes/1987/reel-0042-interview-uncut.mov", "error": "empty"}],
        },
        console,
    )
    shown = console.file.getvalue()  # type: ignore[attr-defined]
    assert max(len(line) for line in shown.splitlines()) <= 80
    assert "0c7b/access.mp4" in shown and "reel-0042-interview-uncut.mov" in shown
    assert "av1" in shown and "93.5" in shown  # the access copy's codec and its VMAF against the source


@pytest.mark.slow
def test_a_run_off_a_terminal_prints_a_few_lines_and_json_stays_one_document(
    footage: Path, tmp_path: Path
) -> None:
    from conftest import LIGHT_STAGES

    spec = tmp_path / "job.yaml"
    spec.write_text(f"name: quiet\nsource: {{uri: {footage}}}\nstages:\n{LIGHT_STAGES}")
    env = {**os.environ, "ARCHIVIST_HOME": str(tmp_path / "home")}
    env.pop("ARCHIVIST_RAY_PROGRESS", None)
    done = subprocess.run(
        [sys.executable, "-m", "jobs.cli", "run", str(spec), "--json"],
        capture_output=True,
        text=True,
        env=env,
        cwd=Path(__file__).parents[2],
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads(done.stdout)  # one document and nothing else
    assert summary["job"] == "quiet" and summary["assets"]["ok"] == 2
    lines = done.stderr.splitlines()
    assert len(lines) < 60, "\n".join(lines)
    assert not [line for line in lines if "logging_progress" in line or "Running Dataset" in line]
    assert any(line.split(": ", 1)[-1].startswith("progress: 2/2 assets") for line in lines), lines
