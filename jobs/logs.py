"""Logs a machine can read: one JSON object per line, carrying the run it belongs to.

Plain text on a terminal; JSON lines (`ARCHIVIST_LOG_FORMAT=json`) where a log
collector reads them, each with the run id and job of the run in progress, so
a night's runs can be followed and filtered without parsing sentences.
"""

from __future__ import annotations

import contextvars
import datetime as dt
import json
import logging
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

current_run: contextvars.ContextVar[dict[str, str] | None] = contextvars.ContextVar(
    "current_run", default=None
)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            **(current_run.get() or {}),
        }
        for key in ("stage", "asset_id", "uri", "rows", "seconds"):
            if hasattr(record, key):
                entry[key] = getattr(record, key)
        if record.exc_info:
            entry["error"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


@contextmanager
def run_context(run_id: str, job: str) -> Iterator[None]:
    """Every log line inside carries this run's id and job."""
    token = current_run.set({"run_id": run_id, "job": job})
    try:
        yield
    finally:
        current_run.reset(token)


class _CurrentStderr(logging.StreamHandler):
    """Writes to whatever `sys.stderr` is when a line is logged, not the one it was made with: a
    caller that swaps stderr for one command (a test runner, a notebook) and closes it afterwards
    would otherwise leave every later line failing on a closed file."""

    @property
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, _: Any) -> None:
        pass


def configure(level: str | None = None, fmt: str | None = None) -> None:
    """Set up archivist's loggers from ARCHIVIST_LOG_LEVEL / ARCHIVIST_LOG_FORMAT."""
    level = (level or os.environ.get("ARCHIVIST_LOG_LEVEL", "INFO")).upper()
    fmt = fmt or os.environ.get("ARCHIVIST_LOG_FORMAT", "text")
    handler = _CurrentStderr()
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    for name in ("jobs", "catalog", "indexes", "actors", "serve"):
        logger = logging.getLogger(name)
        logger.handlers = [handler]
        logger.setLevel(level)
        logger.propagate = False
