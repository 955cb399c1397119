"""`archivist catalog expire`: the catalog's maintenance, typed by an archive team on purpose."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from catalog.maintenance import DEFAULT_RETENTION_DAYS, ExpiryReport, expire
from catalog.settings import Settings


def expire_command(
    retention_days: Annotated[
        float,
        typer.Option(
            "--older-than-days",
            envvar="ARCHIVIST_RETENTION_DAYS",
            min=0,
            help="keep every version, snapshot and file younger than this (time travel reaches this far)",
        ),
    ] = DEFAULT_RETENTION_DAYS,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="report what would go, change nothing")] = False,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Expire snapshots and catalog versions older than the retention and remove orphan files,
    never what the latest version, a version within the retention or a live index reads."""
    from catalog.iceberg import open_catalog

    settings = Settings()
    report = expire(open_catalog(settings), settings, retention_days=retention_days, dry_run=dry_run)
    if as_json:
        print(json.dumps(report.as_dict()))
        return
    _print(report, Console())


def _print(report: ExpiryReport, out: Console) -> None:
    table = Table(title=f"catalog expiry before {report.cutoff}" + (" (dry run)" if report.dry_run else ""))
    for column in ("table", "snapshots kept", "snapshots expired", "orphan files", "orphan MB"):
        table.add_column(column, justify="left" if column == "table" else "right")
    for name, figures in report.tables.items():
        table.add_row(
            name,
            str(figures.snapshots_kept),
            str(figures.snapshots_expired),
            str(figures.orphan_files),
            f"{figures.orphan_bytes / 2**20:.1f}",
        )
    out.print(table)
    verb = "would drop" if report.dry_run else "dropped"
    out.print(
        f"versions: {report.versions_kept} kept, {report.versions_dropped} {verb}; "
        f"{report.orphan_bytes / 2**20:.1f} MB of orphan files {'would be ' if report.dry_run else ''}removed"
    )
