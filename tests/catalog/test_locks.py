"""Job locks: one run of a job at a time, and a dead holder does not block the job forever."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys

import pytest
from sqlalchemy import update
from sqlalchemy.orm import Session

from catalog import locks
from catalog.settings import Settings
from catalog.state import StateStore


@pytest.fixture
def engine(settings: Settings):
    return StateStore(settings.catalog_url_resolved).engine


def test_a_held_job_refuses_a_second_holder_until_released(engine) -> None:
    assert locks.acquire(engine, "nightly", "host-a:1")
    assert not locks.acquire(engine, "nightly", "host-b:2")
    assert locks.acquire(engine, "other-job", "host-b:2")
    locks.release(engine, "nightly", "host-a:1")
    assert locks.acquire(engine, "nightly", "host-b:2")


def test_a_stale_heartbeat_frees_the_job_and_abandons_its_run(engine, settings: Settings) -> None:
    state = StateStore(settings.catalog_url_resolved)
    run_id = state.start_run("nightly", {}, "p1")
    assert locks.acquire(engine, "nightly", "elsewhere:1")
    locks.attach_run(engine, "nightly", "elsewhere:1", run_id)
    with Session(engine) as session, session.begin():
        long_ago = locks.utcnow() - locks.STALE_AFTER - dt.timedelta(seconds=5)
        session.execute(update(locks.JobLock).values(heartbeat_at=long_ago))
    assert locks.acquire(engine, "nightly", "here:2")
    run = state.run(run_id)
    assert run.status == "abandoned" and "elsewhere:1" in run.error


def test_a_holder_whose_process_died_on_this_host_loses_the_lock(engine) -> None:
    gone = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True, check=True
    ).stdout.strip()
    host = locks.this_holder().rpartition(":")[0]
    assert locks.acquire(engine, "nightly", f"{host}:{gone}")
    assert locks.acquire(engine, "nightly", locks.this_holder())


def test_the_context_manager_names_the_current_holder(engine) -> None:
    with locks.job_lock(engine, "nightly"):
        assert locks.holder_of(engine, "nightly").holder == locks.this_holder()
        assert not locks.acquire(engine, "nightly", "someone-else:1")
    assert locks.holder_of(engine, "nightly") is None
    locks.acquire(engine, "nightly", "elsewhere:1")
    with (
        pytest.raises(locks.JobBusyError, match="already running by elsewhere:1"),
        locks.job_lock(engine, "nightly"),
    ):
        pass
