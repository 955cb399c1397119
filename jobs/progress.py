"""A run's progress as a person follows it: assets, shots and keyframes done, and how long is left.

On a terminal, rich bars redrawn in place; anywhere else (a log file, a CI job, a
scheduler's output) one line every few seconds, so that a night's log says how far a
run got without a line per block. Counts come from the rows the plan hands the driver,
which are the rows the run keeps: what is shown is what is done.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from types import TracebackType
from typing import IO

import pyarrow as pa
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from catalog.rows import keyframe_rows, shot_rows

log = logging.getLogger(__name__)

LINE_EVERY_S = 10.0
"""How often a run's progress line is written where no terminal shows bars."""


class RunProgress:
    """Counts a run's finished assets, shots and keyframes and shows them while it runs."""

    def __init__(
        self,
        assets: int,
        *,
        stream: IO[str] | None = None,
        interactive: bool | None = None,
        every_s: float = LINE_EVERY_S,
    ) -> None:
        self.total = assets
        self.assets = 0
        self.shots = 0
        self.keyframes = 0
        self.started = time.monotonic()
        self.every_s = every_s
        self._stop = threading.Event()
        self._beat = threading.Thread(target=self._lines, name="run-progress", daemon=True)
        stream = stream or sys.stderr
        interactive = stream.isatty() if interactive is None else interactive
        self._bars: Progress | None = None
        if interactive:
            self._bars = Progress(
                TextColumn("{task.description:<10}"),
                BarColumn(bar_width=30),
                MofNCompleteColumn(),
                TextColumn("{task.fields[rate]}"),
                TimeRemainingColumn(),
                console=Console(file=stream),
                transient=False,
            )
            self._tasks = {
                "assets": self._bars.add_task("assets", total=assets, rate=""),
                "shots": self._bars.add_task("shots", total=None, rate=""),
                "keyframes": self._bars.add_task("keyframes", total=None, rate=""),
            }

    def __enter__(self) -> RunProgress:
        if self._bars is not None:
            self._bars.start()
        else:
            self._beat.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        if self._bars is not None:
            self._bars.stop()
            return
        self._stop.set()
        self._beat.join()
        if kind is None:
            log.info(self.line())

    def rows(self, batch: pa.Table) -> None:
        """Count the keyframes and shots of rows the plan has just handed over."""
        if "shot_id" not in batch.column_names or not batch.num_rows:
            return
        self.keyframes += keyframe_rows(batch).num_rows
        self.shots += shot_rows(batch).num_rows
        self._show()

    def asset_done(self, count: int = 1) -> None:
        """Count assets whose every row has come through."""
        self.assets += count
        self._show()

    def eta_s(self) -> float | None:
        """Seconds left at the pace of the assets done so far; None before the first."""
        if not self.assets:
            return None
        spent = time.monotonic() - self.started
        return spent / self.assets * (self.total - self.assets)

    def line(self) -> str:
        """The progress as one line of text."""
        spent = time.monotonic() - self.started
        rate = self.keyframes / spent if spent > 0 else 0.0
        eta = self.eta_s()
        left = f", about {_duration(eta)} left" if eta is not None and self.assets < self.total else ""
        return (
            f"progress: {self.assets}/{self.total} assets, {self.shots} shots, {self.keyframes} keyframes"
            f" ({rate:.2f} keyframes/s) in {_duration(spent)}{left}"
        )

    def _show(self) -> None:
        if self._bars is None:
            return
        spent = max(time.monotonic() - self.started, 1e-9)
        self._bars.update(self._tasks["assets"], completed=self.assets)
        self._bars.update(self._tasks["shots"], completed=self.shots, rate=f"{self.shots / spent:.2f}/s")
        self._bars.update(
            self._tasks["keyframes"], completed=self.keyframes, rate=f"{self.keyframes / spent:.2f}/s"
        )

    def _lines(self) -> None:
        """A line every `every_s` seconds, whether or not rows came in (a stalled run says so)."""
        while not self._stop.wait(self.every_s):
            log.info(self.line())


def _duration(spent: float) -> str:
    seconds = round(spent)
    if seconds < 60:
        return f"{seconds} s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {seconds:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"
