"""`archivist estimate`'s arithmetic on figures known by hand, and its answer to bad input."""

from __future__ import annotations

import math

import pytest
from typer.testing import CliRunner

from jobs.cli import app
from jobs.estimate import Calibration, EstimateError, StageWork, estimate, fit_line, with_spec
from jobs.spec import parse_spec


def calibration(**changes: object) -> Calibration:
    """Segment costs 600 actor-seconds an hour of footage, OCR half a second a shot; 1000 shots
    an hour; a run starts in 30 s; the pipeline takes 1.5 s a second of its work; the commit
    takes 10 s plus 36 s an hour."""
    figures: dict[str, object] = {
        "source": "by hand",
        "runs": ("r1",),
        "hours": 1.0,
        "shots_per_hour": 1000.0,
        "keyframes_per_shot": 1.0,
        "stages": (
            StageWork("segment", "segment", "hour", 600.0, num_cpus=1.0, num_gpus=0.0, max_actors=2),
            StageWork("ocr", "keyframes", "shot", 0.5, num_cpus=1.0, num_gpus=0.0, max_actors=2),
        ),
        "driver_seconds": {"commit": (10.0, 36.0)},
        "startup_seconds": 30.0,
        "machine_cpus": 2,
        "overhead": 1.5,
    }
    return Calibration(**{**figures, **changes})  # type: ignore[arg-type]


def test_a_stage_bound_by_its_declared_actors_sets_the_wall_time() -> None:
    result = estimate(calibration(), hours=10, cpus=4, cpu_price=0.05)
    segment, ocr = result.stages
    assert (segment.actors, ocr.actors) == (2, 2)  # max_actors 2, though 4 CPUs would hold 4
    assert math.isclose(segment.wall_hours, 6000 / 2 / 3600)
    assert math.isclose(ocr.cpu_hours, 10 * 1000 * 0.5 / 3600)
    assert result.bottleneck == "segment"
    assert math.isclose(result.pipeline_hours, 3000 * 1.5 / 3600)
    assert math.isclose(result.driver_hours["commit"], (10 + 36 * 10) / 3600)
    assert math.isclose(result.wall_hours, (30 + 4500 + 370) / 3600)
    assert math.isclose(result.cost, result.wall_hours * 4 * 0.05)
    assert math.isclose(result.work_cost, 11000 / 3600 * 0.05)


def test_a_small_cluster_is_the_bound_when_every_cpu_is_busy() -> None:
    result = estimate(calibration(), hours=10, cpus=2)
    assert result.bottleneck == "the cluster"
    assert math.isclose(result.pipeline_hours, 11000 / 2 * 1.5 / 3600)
    doubled = estimate(calibration(), hours=20, cpus=2)
    assert math.isclose(doubled.pipeline_hours, 2 * result.pipeline_hours)  # work grows with hours


def test_fractional_gpu_stages_share_the_cluster_gpus() -> None:
    on_gpu = StageWork("visual", "keyframes", "shot", 0.1, num_cpus=1.0, num_gpus=0.25, max_actors=8)
    figures = calibration(stages=(on_gpu,))
    result = estimate(figures, hours=1, cpus=16, gpus=1, gpu_price=0.5)
    assert result.stages[0].actors == 4  # four quarter-GPU actors on one GPU
    assert math.isclose(result.stages[0].gpu_hours, 1000 * 0.1 * 0.25 / 3600)
    assert math.isclose(result.cost, result.wall_hours * (16 * 0.0446 + 1 * 0.5))
    with pytest.raises(EstimateError, match="--gpus"):
        estimate(figures, hours=1, cpus=16, gpus=0)


def test_the_fixed_part_and_the_overhead_come_from_runs_of_two_sizes() -> None:
    assert fit_line([(10.0, 40.0), (20.0, 60.0)]) == pytest.approx((20.0, 2.0))
    assert fit_line([(10.0, 40.0)]) is None  # one size cannot tell the two apart
    assert fit_line([(10.0, 5.0), (20.0, 30.0)]) == pytest.approx((0.0, 1.3))  # no negative start: 650 / 500


@pytest.mark.parametrize(
    ("args", "option"),
    [
        (["--hours", "-1"], "--hours"),
        (["--hours", "0"], "--hours"),
        (["--hours", "many"], "--hours"),
        (["--hours", "nan"], "--hours"),
        (["--hours", "5", "--gpus", "x"], "--gpus"),
        (["--hours", "5", "--gpus", "-2"], "--gpus"),
        (["--hours", "5", "--cpus", "0"], "--cpus"),
        (["--hours", "5", "--cpu-price", "-0.1"], "--cpu-price"),
    ],
)
def test_bad_input_is_one_line_naming_the_option(home, args: list[str], option: str) -> None:
    result = CliRunner().invoke(app, ["estimate", *args])
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {option}:"), result.stderr
    assert not home.exists()  # refused before any calibration run made an archive


def test_a_spec_reschedules_the_measured_stages() -> None:
    """`--spec`: the stages it runs, with its resources; what no run measured is named, not guessed."""
    decode = StageWork("decode", "keyframes", "shot", 0.01, num_cpus=1.0, num_gpus=0.0, max_actors=2)
    figures = calibration(stages=(*calibration().stages, decode))
    spec = parse_spec(
        {
            "name": "big",
            "source": {"uri": "/tmp"},
            "stages": {
                "keyframes": {"resources": {"max_actors": 8, "num_cpus": 2}, "ocr": {"enabled": False}}
            },
        }
    )
    rescheduled, unmeasured = with_spec(figures, spec)
    stages = {s.name: s for s in rescheduled.stages}
    assert set(stages) == {"segment", "decode"}  # ocr is off in the spec
    assert (stages["decode"].max_actors, stages["decode"].num_cpus) == (8, 2.0)  # the group's resources
    assert stages["segment"].max_actors == 2
    assert "visual" in unmeasured and "segment" not in unmeasured
    assert estimate(rescheduled, hours=1, cpus=32).stages[1].actors == 8
