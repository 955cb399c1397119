"""How figures read on the pages: the templates' filters."""

from __future__ import annotations

import datetime as dt
import math
import posixpath
from collections.abc import Callable
from typing import Any

from catalog.state import as_utc


def seconds_text(value: float | None) -> str:
    """A time in a video, as players show it: m:ss.s."""
    if value is None or not math.isfinite(value):
        return "?"
    minutes, rest = divmod(float(value), 60)
    return f"{int(minutes)}:{rest:04.1f}"


def duration_text(value: float | None) -> str:
    if value is None:
        return "—"
    if value < 60:
        return f"{value:.1f} s"
    if value < 3600:
        return f"{value / 60:.1f} min"
    return f"{value / 3600:.1f} h"


def hours_text(value: float) -> str:
    hours = value / 3600
    return f"{hours:,.1f}" if hours >= 10 else f"{hours:.2f}"


def when_text(value: dt.datetime | None) -> str:
    return as_utc(value).strftime("%Y-%m-%d %H:%M UTC") if value else "—"


def number_text(value: float | None) -> str:
    return "—" if value is None else f"{value:,}"


def rate_text(value: float | None) -> str:
    return "—" if value is None else f"{value:,.1f}" if value >= 10 else f"{value:.2f}"


FILTERS: dict[str, Callable[[Any], str]] = {
    "seconds": seconds_text,
    "duration": duration_text,
    "hours": hours_text,
    "when": when_text,
    "num": number_text,
    "rate": rate_text,
    "pct": lambda share: f"{100 * share:.1f}%",
    "basename": lambda uri: posixpath.basename(uri or "") or uri,
}
