"""At most one run of a job at a time, even with two schedulers on two hosts.

A row per job in the state database says who holds it and when they last
said so. Taking the lock is one conditional write, so two takers cannot both
win; a holder that died (its heartbeat went stale, or its process is gone from
this host) loses the lock to the next taker instead of blocking the job forever.
"""

from __future__ import annotations

import datetime as dt
import os
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import DateTime, String, delete, insert, update
from sqlalchemy.engine import CursorResult, Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, Session, mapped_column

from catalog.state import Base, Run, retry_database, utcnow

STALE_AFTER = dt.timedelta(seconds=90)
HEARTBEAT_EVERY = 20.0
WAIT_STEP = 0.2  # how often a waiting taker tries again


class JobLock(Base):
    __tablename__ = "archivist_job_locks"

    job: Mapped[str] = mapped_column(String(200), primary_key=True)
    holder: Mapped[str] = mapped_column(String(200))
    run_id: Mapped[str | None] = mapped_column(String(40))
    acquired_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    heartbeat_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))


class JobBusyError(RuntimeError):
    """The job is already running elsewhere."""


def this_holder() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _dead(holder: str) -> bool:
    """True when the holder is a process on this host that no longer exists."""
    host, _, pid = holder.rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def acquire(engine: Engine, job: str, holder: str) -> bool:
    now = utcnow()
    with Session(engine) as session, session.begin():
        try:
            session.execute(insert(JobLock).values(job=job, holder=holder, acquired_at=now, heartbeat_at=now))
            return True
        except IntegrityError:
            pass
    with Session(engine) as session, session.begin():
        current = session.get(JobLock, job)
        if current is None:
            return acquire(engine, job, holder)
        previous, previous_run, beat = current.holder, current.run_id, current.heartbeat_at
        if previous != holder and not (_aware(beat) < now - STALE_AFTER or _dead(previous)):
            return False
        # Conditional on what we read: if another taker got there first, nothing is updated.
        result = session.execute(
            update(JobLock)
            .where(JobLock.job == job, JobLock.holder == previous, JobLock.heartbeat_at == beat)
            .values(holder=holder, run_id=None, acquired_at=now, heartbeat_at=now)
        )
        assert isinstance(result, CursorResult)  # an UPDATE's result counts its rows
        taken = result.rowcount
        if taken and previous_run and previous != holder:
            _abandon(session, previous_run, previous)
        return bool(taken)


def _abandon(session: Session, run_id: str, holder: str) -> None:
    run = session.get(Run, run_id)
    if run is not None and run.status == "running":
        run.status, run.finished_at = "abandoned", utcnow()
        run.error = f"its process ({holder}) stopped without finishing; a later run resumes its work"


def _aware(moment: dt.datetime) -> dt.datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)  # SQLite drops the zone


def attach_run(engine: Engine, job: str, holder: str, run_id: str) -> None:
    with Session(engine) as session, session.begin():
        session.execute(
            update(JobLock).where(JobLock.job == job, JobLock.holder == holder).values(run_id=run_id)
        )


def heartbeat(engine: Engine, job: str, holder: str) -> None:
    with Session(engine) as session, session.begin():
        session.execute(
            update(JobLock).where(JobLock.job == job, JobLock.holder == holder).values(heartbeat_at=utcnow())
        )


def release(engine: Engine, job: str, holder: str) -> None:
    with Session(engine) as session, session.begin():
        session.execute(delete(JobLock).where(JobLock.job == job, JobLock.holder == holder))


def holder_of(engine: Engine, job: str) -> JobLock | None:
    with Session(engine, expire_on_commit=False) as session:
        return session.get(JobLock, job)


@contextmanager
def job_lock(engine: Engine, job: str, *, wait: float = 0.0) -> Iterator[str]:
    """Hold the job's lock for the block, with a heartbeat; raise JobBusyError if it is still
    taken after `wait` seconds."""
    holder = this_holder()
    deadline = time.monotonic() + wait
    url = str(engine.url)  # a database that restarts is waited for, then named if it stays away
    while not retry_database(lambda: acquire(engine, job, holder), url, what=f"taking the lock of {job!r}"):
        if time.monotonic() < deadline:
            time.sleep(WAIT_STEP)
            continue
        other = holder_of(engine, job)
        since = f" since {other.acquired_at:%Y-%m-%d %H:%M:%S}" if other else ""
        who = f" by {other.holder}{since} (run {other.run_id})" if other else ""
        raise JobBusyError(f"job {job!r} is already running{who}")
    stop = threading.Event()

    def beat() -> None:
        while not stop.wait(HEARTBEAT_EVERY):
            heartbeat(engine, job, holder)

    thread = threading.Thread(target=beat, name=f"lock-heartbeat-{job}", daemon=True)
    thread.start()
    try:
        yield holder
    finally:
        stop.set()
        thread.join()
        retry_database(lambda: release(engine, job, holder), url, what=f"releasing the lock of {job!r}")
