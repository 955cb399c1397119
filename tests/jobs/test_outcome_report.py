"""How a run's outcome reads, without Ray: the last line of the report, the history table, the exit
status, and `--json`'s standard output holding nothing but the document even when a library or a
child process writes to fd 1."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
import textwrap
from pathlib import Path
from types import SimpleNamespace

import pytest
import typer
from rich.console import Console

from jobs import report
from jobs.cli import EXIT_PROBLEMS, _exit_for
from jobs.run import run_outcome

ROOT = Path(__file__).resolve().parents[2]


def _summary(ok: int, damaged: int, failed: int, outputs_failed: int = 0) -> dict:
    return {
        "run_id": "20261202T120000-abcd1234",
        "job": "tapes",
        "pipeline_version": "p1",
        "outcome": run_outcome(failed, damaged, outputs_failed),
        "assets": {"ok": ok, "damaged": damaged, "failed": failed, "skipped": 0, "resumed": 0},
        "outputs": {"ok": 0, "failed": outputs_failed},
        "shots": 7,
        "seconds": {"total": 1.0},
        "failed": [{"uri": "/tapes/empty.mov", "error": "MediaError: the file is empty"}] * failed,
        "damaged": [{"uri": "/tapes/cut.mov", "error": "damaged: 40 frames of the 100 declared decoded"}]
        * damaged,
        "indexes": {},
        "remasters": [],
    }


def _printed(write) -> str:
    console = Console(width=200, record=True, file=open("/dev/null", "w"))  # noqa: SIM115
    write(console)
    return console.export_text()


def test_outcome_is_problems_for_any_failure_damage_or_failed_output() -> None:
    assert run_outcome(0, 0, 0) == "ok"
    assert run_outcome(1, 0, 0) == run_outcome(0, 1, 0) == run_outcome(0, 0, 1) == "problems"


def test_the_last_line_says_how_many_failed_and_are_damaged() -> None:
    text = _printed(
        lambda c: (report.run_summary(_summary(3, 2, 1), c), report.outcome_line(_summary(3, 2, 1), c))
    )
    last = text.strip().splitlines()[-1]
    assert "completed with problems" in last and "1 assets failed, 2 damaged, 0 outputs failed" in last
    assert "damaged assets" in text and "/tapes/cut.mov" in text and "40 frames of the 100" in text
    clean = _printed(lambda c: report.outcome_line(_summary(3, 0, 0), c)).strip()
    assert "completed: 3 assets ok, nothing failed or damaged" in clean and "problems" not in clean
    outputs = _printed(lambda c: report.outcome_line(_summary(3, 0, 0, outputs_failed=2), c))
    assert "completed with problems" in outputs and "2 outputs failed" in outputs


def test_history_shows_damaged_and_a_run_with_problems() -> None:
    run = SimpleNamespace(
        run_id="r-problems",
        job="tapes",
        status="succeeded",
        started_at=dt.datetime(2026, 12, 2, 12, 0, tzinfo=dt.UTC),
        finished_at=dt.datetime(2026, 12, 2, 12, 1, tzinfo=dt.UTC),
        summary=_summary(3, 2, 1),
        steps=[],
        error=None,
    )
    row = report.run_row(run)
    assert (row["assets_ok"], row["assets_damaged"], row["assets_failed"]) == (3, 2, 1)
    assert row["outcome"] == "problems"
    text = _printed(lambda c: report.runs_table([row], c))
    assert "damaged" in text and "completed with problems" in text


def test_exit_status_is_3_for_a_run_with_problems_and_0_otherwise() -> None:
    _exit_for([_summary(3, 0, 0), _summary(1, 0, 0)])  # returns: the command ends with status 0
    for summary in (_summary(3, 1, 0), _summary(3, 0, 1), _summary(3, 0, 0, outputs_failed=1)):
        with pytest.raises(typer.Exit) as raised:
            _exit_for([_summary(3, 0, 0), summary])  # the demo's two runs: either one's problems
        assert raised.value.exit_code == EXIT_PROBLEMS == 3


def test_json_stdout_holds_only_the_document_whatever_writes_to_fd_1() -> None:
    script = textwrap.dedent(
        """
        import os, subprocess, sys
        from jobs.cli import _stdout_kept_for_json
        print("before")  # not part of the run: on stdout as it was
        sys.stdout.flush()
        with _stdout_kept_for_json() as write:
            print("a third-party print")
            os.write(1, b"a C library writing to fd 1\\n")
            subprocess.run([sys.executable, "-c", "print('a child process, like a Ray worker')"])
            write('{"run_id": "r1", "outcome": "problems"}\\n')
        print("after the run: Ray's threads still printing")
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[0] == "before"
    assert json.loads(done.stdout.split("\n", 1)[1]) == {"run_id": "r1", "outcome": "problems"}
    for noise in ("a third-party print", "a C library", "a child process", "after the run"):
        assert noise in done.stderr and noise not in done.stdout, noise


def test_a_json_run_that_crashes_still_writes_one_document_and_exits_1(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from typer.testing import CliRunner

    import jobs.run
    from jobs.cli import app

    def crash(spec, **_):
        print("noise from the run")
        raise RuntimeError("the cluster went away")

    monkeypatch.setattr(jobs.run, "run_job", crash)
    (tmp_path / "footage").mkdir()
    result = CliRunner(env={"ARCHIVIST_HOME": str(tmp_path / "home")}).invoke(
        app, ["run", str(tmp_path / "footage"), "--json"]
    )
    assert result.exit_code == 1
    document = json.loads(result.stdout)
    assert document["outcome"] == "error" and document["error"] == "RuntimeError: the cluster went away"
    assert "noise from the run" in result.stderr
