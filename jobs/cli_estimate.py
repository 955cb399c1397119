"""`archivist estimate`: how long a run over an archive of N hours would take, and what it would
cost, on a cluster of C CPUs and G GPUs, from the figures earlier runs recorded."""

from __future__ import annotations

import json
import math
import os
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from jobs.estimate import DEFAULT_CPU_HOUR_PRICE, DEFAULT_GPU_HOUR_PRICE, Estimate, EstimateError


def estimate_command(
    hours: Annotated[str, typer.Option("--hours", metavar="N", help="hours of footage in the archive")],
    cpus: Annotated[
        str | None, typer.Option("--cpus", metavar="C", help="the cluster's CPUs (default: this machine's)")
    ] = None,
    gpus: Annotated[str, typer.Option("--gpus", metavar="G", help="the cluster's GPUs")] = "0",
    cpu_price: Annotated[
        str,
        typer.Option(
            "--cpu-price",
            envvar="ARCHIVIST_PRICE_CPU_HOUR",
            metavar="USD",
            help="price of a CPU-hour (default: AWS c7i.large on demand, us-east-1, per vCPU)",
        ),
    ] = str(DEFAULT_CPU_HOUR_PRICE),
    gpu_price: Annotated[
        str,
        typer.Option(
            "--gpu-price",
            envvar="ARCHIVIST_PRICE_GPU_HOUR",
            metavar="USD",
            help="price of a GPU-hour (default: AWS g4dn.xlarge on demand, us-east-1, one T4)",
        ),
    ] = str(DEFAULT_GPU_HOUR_PRICE),
    job: Annotated[str | None, typer.Option("--job", help="estimate from this job's runs")] = None,
    spec: Annotated[
        str | None,
        typer.Option("--spec", help="a job spec whose stages and resources the estimate schedules"),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="one JSON document on standard output")] = False,
) -> None:
    """Predict wall time and cost per stage for an archive, from the figures this catalog's runs
    recorded (or, with none yet, from calibration runs on the bundled samples), and say what the
    prediction assumes."""
    from catalog.settings import Settings
    from jobs.estimate import calibration_for, check_request, estimate, with_spec
    from jobs.spec import load_spec

    n_hours = _number("--hours", hours, float)
    n_cpus = int(_number("--cpus", cpus, int)) if cpus is not None else os.cpu_count() or 1
    n_gpus = int(_number("--gpus", gpus, int))
    prices = _number("--cpu-price", cpu_price, float), _number("--gpu-price", gpu_price, float)
    check_request(n_hours, n_cpus, n_gpus, *prices)  # before a calibration run, not after it
    planned = load_spec(spec) if spec is not None else None

    def made() -> Estimate:
        calibration = calibration_for(Settings(), job=job)
        if planned is not None:
            calibration, unmeasured = with_spec(calibration, planned)
            if unmeasured:
                typer.echo(
                    f"no figures for stages {', '.join(unmeasured)}: left out of the estimate", err=True
                )
        return estimate(
            calibration, hours=n_hours, cpus=n_cpus, gpus=n_gpus, cpu_price=prices[0], gpu_price=prices[1]
        )

    if as_json:  # a calibration run's progress and logs must not reach the document
        from jobs.cli import _stdout_kept_for_json

        with _stdout_kept_for_json() as write:
            write(json.dumps(made().as_dict(), indent=2) + "\n")
        return
    show(made(), Console())


def _number(option: str, text: str, kind: type[int] | type[float]) -> float:
    """The option's value as a number, or an error naming the option (typer's own is a boxed panel)."""
    try:
        value = kind(text)
    except ValueError:
        what = "a whole number" if kind is int else "a number"
        raise EstimateError(f"{option}: {what} is wanted, not {text!r}") from None
    if isinstance(value, float) and not math.isfinite(value):
        raise EstimateError(f"{option}: a finite number is wanted, not {text!r}")
    return value


def show(result: Estimate, out: Console) -> None:
    """The estimate as a person sizing a cluster reads it: per stage, the total, then what it took
    for granted. Fits an 80-column terminal."""
    cal = result.calibration
    out.print(
        f"[bold]{result.hours:g} h of footage on {result.cpus} CPUs, {result.gpus} GPUs[/bold]; "
        f"figures from {cal.source}: {cal.hours * 60:.1f} min of footage, "
        f"{cal.shots_per_hour:.0f} shots/h"
        + (f", {cal.keyframes_per_shot:.2f} keyframes/shot" if cal.keyframes_per_shot is not None else ""),
        highlight=False,
    )
    table = Table(title="per stage (stages stream together: their hours overlap)")
    for column in ("stage", "actors", "s per unit", "busy h", "CPU·h", "GPU·h", "cost $"):
        table.add_column(column, justify="left" if column == "stage" else "right")
    for stage in result.stages:
        name = stage.name if stage.pool == stage.name else f"{stage.pool}.{stage.name}"
        table.add_row(
            name,
            str(stage.actors),
            f"{stage.seconds_per_unit:.3g}/{stage.per}",
            _hours(stage.wall_hours),
            _hours(stage.cpu_hours),
            _hours(stage.gpu_hours),
            f"{stage.cost:,.2f}",
        )
    out.print(table)
    driver = sum(result.driver_hours.values())
    bound = (
        "the cluster's size"
        if result.bottleneck == "the cluster"
        else (f"{result.bottleneck}'s declared max_actors (raise its resources to use more of the cluster)")
    )
    out.print(
        f"wall time {_hours(result.wall_hours)} h: start {_hours(result.startup_hours)} h + stages "
        f"{_hours(result.pipeline_hours)} h (bound by {bound}; overhead ×{cal.overhead:.2f}) + driver "
        f"steps {_hours(driver)} h",
        highlight=False,
    )
    if len(cal.runs) == 1:
        out.print(
            "[yellow]one run measured:[/yellow] its fixed and per-hour parts cannot be told apart, so "
            "the driver steps count all per hour and the estimate errs long; a second run of another "
            "size sharpens it",
            highlight=False,
        )
    out.print(
        f"cost ${result.cost:,.2f} renting the cluster for the wall time "
        f"(${result.cpu_price:g}/CPU-h, ${result.gpu_price:g}/GPU-h); ${result.work_cost:,.2f} "
        "for the stages' work alone, billed by use",
        highlight=False,
    )
    assumes = Table.grid(padding=(0, 1))
    assumes.add_column()
    assumes.add_column()
    for assumption in result.assumptions:
        assumes.add_row("-", assumption)
    out.print("assumes:", highlight=False)
    out.print(assumes, highlight=False)


def _hours(value: float) -> str:
    return f"{value:.3g}" if value < 100 else f"{value:,.0f}"
