"""Sizing a cluster before renting one: wall time and cost of a run over N hours of footage.

The figures are what earlier runs recorded (each stage's busy seconds, the driver's steps, the
run's wall time, in the run state; the footage's duration and the shots and keyframes it made, in
the catalog), or, for a catalog with no run yet, those of a small run over the bundled sample
clips. The model is stated in `ASSUMPTIONS`, printed beside every estimate, because a figure a
team rents a cluster on must say what it took for granted.
"""

from __future__ import annotations

import math
import os
import tempfile
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import TYPE_CHECKING, Any, Literal

from catalog.settings import Settings
from jobs.errors import SpecError

if TYPE_CHECKING:
    from actors.stage import Resources
    from catalog.state import RunRecord
    from jobs.spec import JobSpec

DEFAULT_CPU_HOUR_PRICE = 0.0446
"""US dollars per vCPU-hour: AWS EC2 c7i.large on demand in us-east-1 ($0.08925 an hour for
2 vCPUs), the list price of a general compute core. Override with `--cpu-price` or
ARCHIVIST_PRICE_CPU_HOUR."""
DEFAULT_GPU_HOUR_PRICE = 0.526
"""US dollars per GPU-hour: AWS EC2 g4dn.xlarge on demand in us-east-1 (one NVIDIA T4, its
4 vCPUs included), the cheapest data-centre GPU a team is likely to rent. Override with
`--gpu-price` or ARCHIVIST_PRICE_GPU_HOUR."""

BUSY = " (busy)"
"""A run's summary names each pipeline stage's busy seconds `<stage> (busy)`; every other step it
records (discover, fingerprint, commit, indexes, people, audit…) the driver ran itself, one after
another, before or after the pipeline."""
RUNS_USED = 5
"""Recorded runs of the reference run's job and pipeline whose figures are pooled."""

ASSUMPTIONS = (
    "the archive is like the footage measured: the same shots per hour and keyframes per shot",
    "an asset stage's work grows with hours of footage, a shot stage's with shots",
    "an actor works at the speed measured (one busy second holds its num_cpus, or num_gpus, for a second)",
    "a stage's throughput grows with its actors up to its declared max_actors, and with the cluster's "
    "CPUs (GPUs) until they are all busy; the stages stream, so the slower of the two bounds is the run's",
    "starting Ray and the actors (models loading) costs what it cost the measured runs, once",
    "the pipeline's own overhead (Ray scheduling, moving blocks, spooling) grows with its work as in the "
    "measured runs (a line fitted through runs of two or more sizes; with one run, taken as none)",
    "the driver's own steps (discover, fingerprint, commit, indexes) grow with hours of footage as in "
    "the measured runs (a line through runs of two or more sizes; from one run, all of it per hour)",
    "a stage keeps the speed measured where it ran: moved to GPUs by a spec, no GPU speed-up is guessed",
    "busy seconds measured on an oversubscribed machine (more actors than cores) overstate an actor's "
    "work, so an estimate for a wider cluster errs long",
)

Per = Literal["hour", "shot"]


class EstimateError(SpecError):
    """Input or figures an estimate cannot be made from; the message says which."""


@dataclass(frozen=True)
class StageWork:
    """What one stage (or a group's shared step, such as the keyframes' decode) cost per unit."""

    name: str
    pool: str  # the plan step whose actors run it
    per: Per
    seconds_per_unit: float  # busy actor-seconds per hour of footage or per shot
    num_cpus: float
    num_gpus: float
    max_actors: int


@dataclass(frozen=True)
class Calibration:
    """The figures an estimate scales: per-stage work, fixed costs, and what the footage was like."""

    source: str
    runs: tuple[str, ...]
    hours: float
    shots_per_hour: float
    keyframes_per_shot: float | None
    stages: tuple[StageWork, ...]
    driver_seconds: dict[str, tuple[float, float]]  # step → (seconds once, seconds per footage hour)
    startup_seconds: float  # starting Ray, and the stages' actors (models loading), once a run
    machine_cpus: int
    overhead: float = 1.0  # pipeline wall per second its work explains (Ray's own costs, contention)


@dataclass(frozen=True)
class StageEstimate:
    name: str
    pool: str
    per: Per
    seconds_per_unit: float
    actors: int
    wall_hours: float  # the time its pool's actors spend on it
    cpu_hours: float
    gpu_hours: float
    cost: float


@dataclass(frozen=True)
class Estimate:
    hours: float
    cpus: int
    gpus: int
    cpu_price: float
    gpu_price: float
    calibration: Calibration
    stages: tuple[StageEstimate, ...]
    driver_hours: dict[str, float]
    startup_hours: float
    pipeline_hours: float  # the stages streaming together, after startup
    bottleneck: str  # 'the cluster' or the pool whose declared actors bound the run
    wall_hours: float
    cost: float  # the cluster rented for the wall time
    work_cost: float  # the stages' CPU- and GPU-hours alone, billed by use
    assumptions: tuple[str, ...] = field(default=ASSUMPTIONS)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def check_request(hours: float, cpus: int, gpus: int, cpu_price: float, gpu_price: float) -> None:
    """Refuse what no cluster is: the message names the option."""
    if not math.isfinite(hours) or hours <= 0:
        raise EstimateError(f"--hours: hours of footage must be a number above 0, not {hours:g}")
    if cpus < 1:
        raise EstimateError(f"--cpus: a cluster has at least 1 CPU, not {cpus}")
    if gpus < 0:
        raise EstimateError(f"--gpus: the number of GPUs is 0 or more, not {gpus}")
    for option, price in (("--cpu-price", cpu_price), ("--gpu-price", gpu_price)):
        if not math.isfinite(price) or price < 0:
            raise EstimateError(f"{option}: a price is 0 or more, not {price:g}")


def estimate(
    calibration: Calibration,
    *,
    hours: float,
    cpus: int,
    gpus: int = 0,
    cpu_price: float = DEFAULT_CPU_HOUR_PRICE,
    gpu_price: float = DEFAULT_GPU_HOUR_PRICE,
) -> Estimate:
    """Wall time and cost of a run over `hours` of footage on `cpus` CPUs and `gpus` GPUs."""
    check_request(hours, cpus, gpus, cpu_price, gpu_price)
    shots = hours * calibration.shots_per_hour
    pools = _pools(calibration.stages)
    actors = {pool: _actors(work, cpus, gpus) for pool, work in pools.items()}
    stages = []
    for work in calibration.stages:
        seconds = work.seconds_per_unit * (hours if work.per == "hour" else shots)
        cpu_h, gpu_h = seconds * work.num_cpus / 3600, seconds * work.num_gpus / 3600
        stages.append(
            StageEstimate(
                name=work.name,
                pool=work.pool,
                per=work.per,
                seconds_per_unit=work.seconds_per_unit,
                actors=actors[work.pool],
                wall_hours=seconds / actors[work.pool] / 3600,
                cpu_hours=cpu_h,
                gpu_hours=gpu_h,
                cost=cpu_h * cpu_price + gpu_h * gpu_price,
            )
        )
    per_pool = {pool: sum(s.wall_hours for s in stages if s.pool == pool) for pool in pools}
    cluster = max(sum(s.cpu_hours for s in stages) / cpus, sum(s.gpu_hours for s in stages) / max(gpus, 1))
    slowest = max(per_pool, key=lambda p: per_pool[p], default="")
    pipeline = max(cluster, per_pool.get(slowest, 0.0)) * calibration.overhead
    bottleneck = "the cluster" if cluster >= per_pool.get(slowest, 0.0) else slowest
    driver = {
        step: (fixed + per_hour * hours) / 3600
        for step, (fixed, per_hour) in calibration.driver_seconds.items()
    }
    startup = calibration.startup_seconds / 3600
    wall = startup + pipeline + sum(driver.values())
    return Estimate(
        hours=hours,
        cpus=cpus,
        gpus=gpus,
        cpu_price=cpu_price,
        gpu_price=gpu_price,
        calibration=calibration,
        stages=tuple(stages),
        driver_hours=driver,
        startup_hours=startup,
        pipeline_hours=pipeline,
        bottleneck=bottleneck,
        wall_hours=wall,
        cost=wall * (cpus * cpu_price + gpus * gpu_price),
        work_cost=sum(s.cost for s in stages),
    )


def _pools(stages: Sequence[StageWork]) -> dict[str, StageWork]:
    """Each plan step once, by the first of its stages (they share its actors' resources)."""
    pools: dict[str, StageWork] = {}
    for work in stages:
        pools.setdefault(work.pool, work)
    return pools


def _actors(work: StageWork, cpus: int, gpus: int) -> int:
    """How many of a plan step's actors the cluster holds at once, up to its declared max_actors."""
    fit = math.floor(cpus / work.num_cpus + 1e-9)
    if work.num_gpus > 0:
        if gpus == 0:
            raise EstimateError(
                f"--gpus: stage {work.name} is scheduled on GPUs ({work.num_gpus:g} a worker); "
                "give the cluster's GPUs"
            )
        fit = min(fit, math.floor(gpus / work.num_gpus + 1e-9))
    return max(1, min(work.max_actors, fit))


def with_spec(calibration: Calibration, spec: JobSpec) -> tuple[Calibration, tuple[str, ...]]:
    """The calibration scheduled as `spec` would schedule its stages (its resources, its stages),
    and the stages the spec runs that no measured run did (left out of the estimate)."""
    from jobs.plan import plan_steps

    steps = {m.stage.name: step for step in plan_steps(spec.enabled()) for m in step.members}
    pools = {step.name: step for step in steps.values()}
    kept = []
    for work in calibration.stages:
        step = steps.get(work.name) or (pools.get(work.pool) if work.name not in registry_names() else None)
        if step is None:
            continue
        res = step.resources
        kept.append(replace(work, num_cpus=res.num_cpus, num_gpus=res.num_gpus, max_actors=res.max_actors))
    measured = {w.name for w in calibration.stages}
    unmeasured = tuple(name for name in steps if name not in measured)
    return replace(calibration, stages=tuple(kept)), unmeasured


def registry_names() -> set[str]:
    from actors.stage import registry

    return set(registry())


# -- figures from recorded runs -----------------------------------------------------------------


@dataclass(frozen=True)
class RunFigures:
    """One recorded run as an estimate reads it."""

    record: RunRecord
    hours: float
    shots: int
    keyframes: int | None


def calibration_from_runs(
    figures: Sequence[RunFigures], *, source: str, machine_cpus: int | None = None
) -> Calibration:
    """Pool the runs' figures (they share a job and pipeline, so the same stages and resources):
    each stage's busy seconds over the hours or shots of the runs that recorded it."""
    if not figures:
        raise EstimateError("no recorded run to estimate from")
    cpus = machine_cpus or os.cpu_count() or 1
    reference = figures[0].record
    resources = _resources(reference)
    hours = sum(f.hours for f in figures)
    shots = sum(f.shots for f in figures)
    if hours <= 0:
        raise EstimateError(f"runs {', '.join(f.record.run_id for f in figures)} recorded no footage")
    stages: list[StageWork] = []
    busy = set(reference.summary.get("seconds", {}))
    in_pipeline = {s.step for s in reference.steps if s.step + BUSY in busy}
    for step in reference.steps:
        if step.step not in in_pipeline:
            continue
        pool, level, res = _pool_of(step.step, resources)
        spent = [s.seconds for f in figures for s in f.record.steps if s.step == step.step]
        units = hours if level == "hour" else max(shots, 1)
        stages.append(
            StageWork(
                name=step.step,
                pool=pool,
                per=level,
                seconds_per_unit=sum(spent) / units,
                num_cpus=res.num_cpus,
                num_gpus=res.num_gpus,
                max_actors=res.max_actors,
            )
        )
    driver = {s.step: _driver_line(figures, s.step) for s in reference.steps if s.step not in in_pipeline}
    calibration = Calibration(
        source=source,
        runs=tuple(f.record.run_id for f in figures),
        hours=hours,
        shots_per_hour=shots / hours,
        keyframes_per_shot=_keyframes_per_shot(figures),
        stages=tuple(stages),
        driver_seconds=driver,
        startup_seconds=0.0,
        machine_cpus=cpus,
    )
    return _with_startup(calibration, figures)


def _with_startup(calibration: Calibration, figures: Sequence[RunFigures]) -> Calibration:
    """The fixed part of a run (starting Ray and the actors) and the pipeline's overhead, from what
    each run's pipeline took against what its work explains at its size on the machine measured.

    Runs of two or more sizes give both, as a line fitted through (work, wall); one run gives the
    fixed part only, taking the overhead as 1 (the pipeline's wall is its work's)."""
    cpus, gpus = calibration.machine_cpus, _gpus(calibration)
    points = []
    for run in figures:
        seconds = run.record.summary.get("seconds", {})
        explained = estimate(calibration, hours=run.hours, cpus=cpus, gpus=gpus).pipeline_hours * 3600
        wall = float(seconds.get("process", 0.0)) + float(seconds.get("start ray", 0.0))
        points.append((explained, wall))
    fixed, overhead = fit_line(points) or (sum(max(0.0, y - x) for x, y in points) / len(points), 1.0)
    return replace(calibration, startup_seconds=fixed, overhead=overhead)


def fit_line(points: Sequence[tuple[float, float]]) -> tuple[float, float] | None:
    """(intercept, slope) of a least-squares line with the intercept kept at 0 or more and a
    positive slope; None unless the points have two or more distinct x."""
    xs = [x for x, _ in points]
    if len(points) < 2 or max(xs) - min(xs) <= 1e-9 * max(1.0, max(xs)):
        return None
    mean_x, mean_y = sum(xs) / len(xs), sum(y for _, y in points) / len(points)
    slope = sum((x - mean_x) * (y - mean_y) for x, y in points) / sum((x - mean_x) ** 2 for x in xs)
    intercept = mean_y - slope * mean_x
    if intercept >= 0 and slope > 0:
        return intercept, slope
    through_zero = sum(x * y for x, y in points) / sum(x * x for x in xs)
    return (0.0, through_zero) if through_zero > 0 else None


def _driver_line(figures: Sequence[RunFigures], step: str) -> tuple[float, float]:
    """A driver step's (seconds once, seconds per footage hour): fitted through runs of two or more
    sizes; from one run, all of it per hour (an estimate that errs long)."""
    points = [(f.hours, sum(s.seconds for s in f.record.steps if s.step == step)) for f in figures]
    return fit_line(points) or (0.0, sum(y for _, y in points) / sum(h for h, _ in points))


def _gpus(calibration: Calibration) -> int:
    needed = [w.num_gpus * w.max_actors for w in calibration.stages if w.num_gpus > 0]
    return max(1, math.ceil(max(needed))) if needed else 0


def _keyframes_per_shot(figures: Sequence[RunFigures]) -> float | None:
    counted = [f for f in figures if f.keyframes is not None and f.shots]
    if not counted:
        return None
    return sum(f.keyframes or 0 for f in counted) / sum(f.shots for f in counted)


def _resources(run: RunRecord) -> dict[str, tuple[str, str, Resources]]:
    """Stage name → (plan step, level, resources) as the run's own spec scheduled it (or, when
    its spec no longer parses under today's stages, as the defaults do)."""
    from jobs.plan import plan_steps
    from jobs.spec import default_spec, parse_spec

    try:
        spec = parse_spec(run.spec, origin=f"run {run.run_id}")
    except SpecError:
        spec = default_spec(".")
    found: dict[str, tuple[str, str, Resources]] = {}
    for step in plan_steps(spec.enabled()):
        for member in step.members:
            level = "hour" if member.stage.level == "asset" else "shot"
            found[member.stage.name] = (step.name, level, step.resources)
        if len(step.members) > 1 or step.members[0].stage.group is not None:
            found.setdefault(f"@{step.name}", (step.name, "shot", step.resources))
    return found


def _pool_of(name: str, resources: dict[str, tuple[str, str, Resources]]) -> tuple[str, Per, Resources]:
    """Where a recorded busy step ran. A name that is no stage is a group's shared preparation
    (the keyframe models' one decode): it runs in the group's actors."""
    if name in resources:
        pool, level, res = resources[name]
        return pool, "hour" if level == "hour" else "shot", res
    from actors.stage import Resources, registry

    groups = [key for key in resources if key.startswith("@")]
    if groups:
        pool, _, res = resources[groups[0]]
        return pool, "shot", res
    stage = registry().get(name)
    return name, "hour" if stage is not None and stage.level == "asset" else "shot", Resources()


def recorded_runs(settings: Settings, *, job: str | None = None, limit: int = RUNS_USED) -> list[RunFigures]:
    """The latest succeeded runs that processed footage, of the job and pipeline of the newest such
    run (of `job`, when given), with their footage's hours and the shots and keyframes they made."""
    from catalog.iceberg import open_catalog
    from catalog.query import sql
    from catalog.state import StateStore

    state = StateStore(settings.catalog_url_resolved)
    runs = [
        r
        for r in state.run_records(job=job, limit=200)
        if r.status == "succeeded" and "process" in r.summary.get("seconds", {})
    ]
    if not runs:
        return []
    reference = runs[0]
    same = [r for r in runs if r.job == reference.job and r.pipeline_version == reference.pipeline_version]
    same = same[:limit]
    catalog = open_catalog(settings)
    ids = ", ".join(f"'{r.run_id}'" for r in same)
    durations = sql(
        catalog,
        f"SELECT run_id, sum(duration_s) AS s FROM assets WHERE run_id IN ({ids}) AND status <> 'failed' "
        "GROUP BY run_id",
    ).to_pylist()
    seconds = {row["run_id"]: row["s"] or 0.0 for row in durations}
    keyframes = {
        row["run_id"]: row["n"]
        for row in sql(
            catalog, f"SELECT run_id, count(*) AS n FROM keyframes WHERE run_id IN ({ids}) GROUP BY run_id"
        ).to_pylist()
    }
    return [
        RunFigures(r, seconds[r.run_id] / 3600, int(r.summary.get("shots") or 0), keyframes.get(r.run_id))
        for r in same
        if seconds.get(r.run_id, 0.0) > 0  # a later run replaced its assets' rows: its hours are gone
    ]


def calibrate_on_samples(spec_stages: dict[str, Any] | None = None) -> Calibration:
    """Run the default pipeline (or these `stages:`) over the bundled sample clips in a throwaway
    archive, one clip a run (two sizes, so a run's fixed part is told from its per-hour part), and
    read the runs' figures as an estimate reads any."""
    import shutil

    from jobs.run import run_job
    from jobs.samples import DEMO_FILES, sample_file
    from jobs.spec import parse_spec

    with tempfile.TemporaryDirectory(prefix="archivist-calibration-") as root:
        settings = Settings(home=os.path.join(root, "archive"))
        for name in DEMO_FILES:
            footage = os.path.join(root, name.split(".")[0])
            os.makedirs(footage)
            shutil.copy(sample_file(name), os.path.join(footage, name))
            body: dict[str, Any] = {"name": "calibration", "source": {"uri": footage}}
            if spec_stages is not None:
                body["stages"] = spec_stages
            run_job(parse_spec(body, origin="<calibration>"), settings=settings)
        figures = recorded_runs(settings, job="calibration", limit=len(DEMO_FILES))
        samples = ", ".join(DEMO_FILES)
        return calibration_from_runs(figures, source=f"calibration runs on the bundled samples ({samples})")


def calibration_for(settings: Settings, *, job: str | None = None) -> Calibration:
    """The catalog's recorded figures, or a calibration run's when it has none."""
    figures = recorded_runs(settings, job=job)
    if figures:
        job_name = figures[0].record.job
        return calibration_from_runs(figures, source=f"{len(figures)} recorded run(s) of job {job_name}")
    if job is not None:
        raise EstimateError(f"--job: no succeeded run of job {job!r} with footage in this catalog")
    return calibrate_on_samples()
