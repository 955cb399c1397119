"""Scheduled jobs: the schedule lives in the catalog's database, and two schedulers
never run the same job at once."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from conftest import LIGHT_STAGES
from typer.testing import CliRunner

from catalog.settings import Settings
from catalog.state import StateStore
from jobs.cli import app
from jobs.scheduler import MISFIRE_GRACE_SECONDS, build_scheduler, scheduled_jobs
from jobs.spec import SpecError


def write_spec(folder: Path, name: str, source: Path, cron: str | None = "0 2 * * *") -> Path:
    path = folder / f"{name}.yaml"
    schedule = f"schedule:\n  cron: '{cron}'\n" if cron else ""
    path.write_text(f"name: {name}\nsource:\n  uri: {source}\nstages:\n{LIGHT_STAGES}{schedule}")
    return path


def test_only_specs_with_a_schedule_are_scheduled(tmp_path: Path) -> None:
    write_spec(tmp_path, "nightly", tmp_path)
    write_spec(tmp_path, "adhoc", tmp_path, cron=None)
    jobs = scheduled_jobs([tmp_path])
    assert [j.spec.name for j in jobs] == ["nightly"]
    assert jobs[0].next_run().hour == 2


def test_two_specs_with_one_name_are_refused(tmp_path: Path) -> None:
    write_spec(tmp_path, "a", tmp_path)
    (tmp_path / "b.yaml").write_text(
        f"name: a\nsource: {{uri: {tmp_path}}}\nschedule: {{cron: '* * * * *'}}\n"
    )
    with pytest.raises(SpecError, match="share the job name a"):
        scheduled_jobs([tmp_path])


def test_the_schedule_is_stored_with_coalescing_and_a_misfire_grace(
    settings: Settings, tmp_path: Path
) -> None:
    jobs = scheduled_jobs([write_spec(tmp_path, "nightly", tmp_path)])
    scheduler = build_scheduler(settings, jobs)
    scheduler.start(paused=True)
    scheduler.shutdown(wait=False)
    store = SQLAlchemyJobStore(url=settings.catalog_url_resolved, tablename="archivist_schedule")
    (stored,) = store.get_all_jobs()
    assert stored.id == "nightly" and stored.coalesce and stored.max_instances == 1
    assert stored.misfire_grace_time == MISFIRE_GRACE_SECONDS
    assert stored.next_run_time.hour == 2


def test_jobs_list_shows_the_next_run(settings: Settings, tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["jobs", "list", str(write_spec(tmp_path, "nightly", tmp_path))])
    assert result.exit_code == 0, result.output
    assert "nightly" in result.stdout and "0 2 * * *" in result.stdout and "never" in result.stdout


@pytest.mark.slow
def test_two_scheduler_processes_run_a_job_once(home: Path, footage: Path, tmp_path: Path) -> None:
    spec = write_spec(tmp_path, "nightly", footage, cron="0 3 * * *")
    command = [sys.executable, "-m", "jobs.cli", "scheduler", str(spec), "--run-now", "--for-seconds", "3"]
    env = {**os.environ, "ARCHIVIST_HOME": str(home)}
    first = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    second = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    outputs = [p.communicate(timeout=600)[0] for p in (first, second)]
    assert [p.returncode for p in (first, second)] == [0, 0], outputs
    runs = StateStore(Settings().catalog_url_resolved).runs(job="nightly")
    assert [r.status for r in runs] == ["succeeded"], outputs
    history = CliRunner().invoke(app, ["jobs", "history", "--job", "nightly", "--json"])
    (row,) = json.loads(history.stdout)
    assert row["assets_ok"] == 2 and row["steps"]["segment"]["rows"] == row["shots"] > 0


@pytest.mark.parametrize(
    ("weekday", "fires_on"),
    [("1", "Mon"), ("0", "Sun"), ("7", "Sun"), ("1-5", "Wed"), ("sat,sun", "Sat"), ("5-7", "Fri")],
)
def test_weekdays_mean_what_crontab_means(weekday: str, fires_on: str) -> None:
    import datetime as dt

    from jobs.cron import cron_trigger

    tuesday_night = dt.datetime(2026, 11, 24, 23, 0, tzinfo=dt.UTC)
    # the first matching day strictly after Tuesday 23:00, at 02:00
    expected = {"Mon": 30, "Sun": 29, "Wed": 25, "Sat": 28, "Fri": 27}[fires_on]
    fire = cron_trigger(f"0 2 * * {weekday}").get_next_fire_time(None, tuesday_night)
    assert (fire.strftime("%a"), fire.day) == (fires_on, expected)


def test_a_crontab_with_the_wrong_number_of_fields_is_named() -> None:
    from jobs.cron import cron_trigger

    with pytest.raises(ValueError, match="has 4 fields"):
        cron_trigger("0 2 * *")
