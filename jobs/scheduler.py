"""Scheduled runs: job specs with a cron line, run unattended.

APScheduler keeps its schedule in the catalog's own database, so a restarted
scheduler knows what it missed; missed runs are coalesced into one, and a
job's database lock (catalog.locks) keeps a second scheduler process from
running the same job at the same time.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from pathlib import Path

from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.base import BaseScheduler
from apscheduler.triggers.cron import CronTrigger

from catalog.locks import JobBusyError
from catalog.settings import Settings
from jobs.cron import cron_trigger
from jobs.spec import JobSpec, SpecError, load_spec

log = logging.getLogger(__name__)

MISFIRE_GRACE_SECONDS = 6 * 3600
"""A run missed while the scheduler was down still starts if it is at most this late."""


@dataclass(frozen=True)
class ScheduledJob:
    path: Path
    spec: JobSpec

    def trigger(self) -> CronTrigger:
        assert self.spec.schedule is not None
        return cron_trigger(self.spec.schedule.cron, self.spec.schedule.timezone)

    def next_run(self, now: dt.datetime | None = None) -> dt.datetime | None:
        now = now or dt.datetime.now(dt.UTC)
        return self.trigger().get_next_fire_time(None, now)


def scheduled_jobs(paths: list[Path]) -> list[ScheduledJob]:
    """The specs with a schedule among these files and folders of *.yaml."""
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            files.extend(sorted([*path.glob("*.yaml"), *path.glob("*.yml")]))
        elif path.exists():
            files.append(path)
        else:
            raise SpecError(f"{path}: no such spec file or folder")
    jobs = [ScheduledJob(f.resolve(), load_spec(f)) for f in files]
    names = [j.spec.name for j in jobs]
    duplicated = sorted({n for n in names if names.count(n) > 1})
    if duplicated:
        raise SpecError(f"two specs share the job name {', '.join(duplicated)}; job names must be unique")
    return [j for j in jobs if j.spec.schedule is not None]


def run_scheduled(spec_path: str) -> None:
    """What the scheduler calls (by reference, so the job store can keep it)."""
    from jobs.run import run_job

    spec = load_spec(spec_path)
    try:
        summary = run_job(spec)
    except JobBusyError as exc:
        log.info("scheduled run of %s skipped: %s", spec.name, exc)
        return
    log.info("scheduled run %s of %s finished: %s", summary["run_id"], spec.name, summary["assets"])


def build_scheduler(settings: Settings, jobs: list[ScheduledJob], *, run_now: bool = False) -> BaseScheduler:
    scheduler = BackgroundScheduler(
        jobstores={
            "default": SQLAlchemyJobStore(url=settings.catalog_url_resolved, tablename="archivist_schedule")
        },
        job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": MISFIRE_GRACE_SECONDS},
        timezone=dt.UTC,
    )
    for job in jobs:
        scheduler.add_job(
            run_scheduled,
            job.trigger(),
            args=[str(job.path)],
            id=job.spec.name,
            name=job.spec.name,
            replace_existing=True,
        )
        if run_now:
            scheduler.add_job(
                run_scheduled,
                args=[str(job.path)],
                id=f"{job.spec.name}/now",
                name=f"{job.spec.name} (now)",
                replace_existing=True,
            )
    return scheduler
