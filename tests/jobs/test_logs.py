"""Structured logs: JSON lines that carry the run they belong to."""

from __future__ import annotations

import json
import logging

from jobs.logs import JsonFormatter, run_context


def test_json_lines_carry_the_run_and_the_stage_figures() -> None:
    formatter = JsonFormatter()
    record = logging.LogRecord("jobs.run", logging.INFO, __file__, 1, "stage %s done", ("segment",), None)
    record.stage, record.rows, record.seconds = "segment", 12, 1.5
    with run_context("20261124T020000-abcd", "nightly"):
        entry = json.loads(formatter.format(record))
    assert entry["message"] == "stage segment done" and entry["level"] == "info"
    assert entry["run_id"] == "20261124T020000-abcd" and entry["job"] == "nightly"
    assert (entry["stage"], entry["rows"], entry["seconds"]) == ("segment", 12, 1.5)
    assert "run_id" not in json.loads(formatter.format(record))  # outside a run, no run id
