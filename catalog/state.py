"""Run and asset state: what ran, how it went, and what each asset has been through.

Kept in ordinary SQL tables (beside the Iceberg catalog's own) because it
changes row by row while a run goes on, which Iceberg commits are not for.
The schema is owned by the Alembic migrations in `catalog/migrations`.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from alembic import command
from alembic.config import Config
from sqlalchemy import (
    JSON,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    String,
    Text,
    create_engine,
    func,
    make_url,
    or_,
    select,
)
from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, relationship, selectinload

from catalog.races import tolerate_first_use_race

MIGRATIONS = Path(__file__).with_name("migrations")
_MIGRATING = threading.Lock()
DATABASE_ATTEMPTS = 6
"""Tries of one database step before a run gives up on the database (backoff 0.5 s doubling,
at most 8 s: about half a minute, long enough for a PostgreSQL restart)."""

log = logging.getLogger(__name__)
T = TypeVar("T")


class DatabaseUnavailableError(RuntimeError):
    """The state and catalog database could not be reached, after retries; says which."""


def database_name(url: str) -> str:
    """The database URL as it may be shown: without its password."""
    return make_url(url).render_as_string(hide_password=True)


def retry_database(step: Callable[[], T], url: str, *, what: str) -> T:
    """Run `step` (one transaction, safe to repeat), again with backoff while the database
    cannot be reached (restarted, its connections killed, a failover): pooled connections
    that died are replaced on the next try. A `DatabaseUnavailableError` naming the database
    if it is still unreachable. SQLite's own errors (locked: it waits itself; disk full)
    are not a lost connection and are raised as they are."""
    for attempt in range(1, DATABASE_ATTEMPTS + 1):
        try:
            return step()
        except OperationalError as exc:
            if make_url(url).get_backend_name() == "sqlite":
                raise
            if attempt == DATABASE_ATTEMPTS:
                raise DatabaseUnavailableError(
                    f"{what}: the database {database_name(url)} is unreachable after "
                    f"{DATABASE_ATTEMPTS} attempts: {exc.orig or exc}"
                ) from exc
            log.warning("%s: database unreachable (attempt %d), retrying: %s", what, attempt, exc.orig)
            time.sleep(min(0.5 * 2 ** (attempt - 1), 8.0))
    raise AssertionError("unreachable")


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class Base(DeclarativeBase):
    pass


class Run(Base):
    __tablename__ = "archivist_runs"

    run_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    job: Mapped[str] = mapped_column(String(200), index=True)
    spec: Mapped[dict[str, Any]] = mapped_column(JSON)
    pipeline_version: Mapped[str] = mapped_column(String(64))
    started_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    finished_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    # running, succeeded (completed: summary["outcome"] says 'ok' or 'problems'), failed (raised)
    status: Mapped[str] = mapped_column(String(16), default="running")
    error: Mapped[str | None] = mapped_column(Text)
    summary: Mapped[dict[str, Any] | None] = mapped_column(JSON)

    steps: Mapped[list[RunStep]] = relationship(
        back_populates="run", cascade="all, delete-orphan", order_by="(RunStep.position, RunStep.step)"
    )


class RunStep(Base):
    """What one step of a run (discover, a pipeline stage, the commit, an index) did and cost."""

    __tablename__ = "archivist_run_steps"

    run_id: Mapped[str] = mapped_column(ForeignKey("archivist_runs.run_id"), primary_key=True)
    step: Mapped[str] = mapped_column(String(64), primary_key=True)
    rows: Mapped[int] = mapped_column(Integer, default=0)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    seconds: Mapped[float] = mapped_column(Float, default=0.0)
    # 1 for the run's first step, then in the order they were first recorded (migration 0004).
    position: Mapped[int] = mapped_column(Integer, default=lambda context: _next_step_position(context))

    run: Mapped[Run] = relationship(back_populates="steps")


class AssetState(Base):
    """An asset's processing state under one pipeline version."""

    __tablename__ = "archivist_asset_state"

    asset_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    pipeline_version: Mapped[str] = mapped_column(String(64), primary_key=True)
    uri: Mapped[str] = mapped_column(Text)
    # 'spooled': results written to `spool_uri`, not yet committed; then the asset's status
    # (one of catalog.schema.ASSET_STATUSES).
    status: Mapped[str] = mapped_column(String(16))
    error: Mapped[str | None] = mapped_column(Text)
    spool_uri: Mapped[str | None] = mapped_column(Text)
    run_id: Mapped[str] = mapped_column(String(40))
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Fingerprint(Base):
    """What a file's bytes hashed to when it had this version (size and mtime, or ETag),
    so an unchanged file is not read again to learn its asset id."""

    __tablename__ = "archivist_fingerprints"

    uri: Mapped[str] = mapped_column(Text, primary_key=True)
    version: Mapped[str] = mapped_column(Text)
    asset_id: Mapped[str] = mapped_column(String(64))


def migrate(url: str) -> Engine:
    """The state database at `url`, brought to the newest schema."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    with _MIGRATING:  # alembic keeps its context in module globals: one thread at a time
        tolerate_first_use_race(lambda: command.upgrade(config, "head"))
    # Check a pooled connection before using it: after a database restart the pool holds
    # dead connections, and each would otherwise fail one statement.
    return create_engine(url, pool_pre_ping=True)


class StateStore:
    """Reads and writes of run and asset state, one short transaction each."""

    def __init__(self, url: str) -> None:
        self.engine = migrate(url)

    def start_run(self, job: str, spec: dict[str, Any], pipeline_version: str) -> str:
        run_id = f"{utcnow():%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}"
        with Session(self.engine) as session, session.begin():
            session.add(
                Run(
                    run_id=run_id,
                    job=job,
                    spec=json.loads(json.dumps(spec, default=str)),
                    pipeline_version=pipeline_version,
                )
            )
        return run_id

    def record_step(self, run_id: str, step: str, *, rows: int, failures: int, seconds: float) -> None:
        with Session(self.engine) as session, session.begin():
            session.merge(RunStep(run_id=run_id, step=step, rows=rows, failures=failures, seconds=seconds))

    def finish_run(
        self, run_id: str, status: str, *, summary: dict[str, Any] | None = None, error: str | None = None
    ) -> None:
        with Session(self.engine) as session, session.begin():
            run = session.get(Run, run_id)
            if run is None:
                raise KeyError(f"no run {run_id!r} to finish")
            run.status, run.error, run.summary, run.finished_at = status, error, summary, utcnow()

    def run(self, run_id: str) -> Run | None:
        with Session(self.engine, expire_on_commit=False) as session:
            run = session.get(Run, run_id)
            if run is not None:
                _ = run.steps
            return run

    def runs(self, *, job: str | None = None, limit: int = 20) -> list[Run]:
        """The latest runs, newest first, with their steps."""
        query = select(Run).order_by(Run.started_at.desc()).limit(limit)
        if job is not None:
            query = query.where(Run.job == job)
        with Session(self.engine, expire_on_commit=False) as session:
            runs = list(session.scalars(query))
            for run in runs:
                _ = run.steps
            return runs

    def settled(
        self, pipeline_version: str, asset_ids: Iterable[str], *, retry_failed: bool = False
    ) -> set[str]:
        """The assets this pipeline version has already finished (and, unless
        retrying, already failed on), which a run therefore skips."""
        ids = list(asset_ids)
        statuses = ("ok", "damaged") if retry_failed else ("ok", "damaged", "failed")
        found: set[str] = set()
        with Session(self.engine) as session:
            for start in range(0, len(ids), 500):
                chunk = ids[start : start + 500]
                found.update(
                    session.scalars(
                        select(AssetState.asset_id).where(
                            AssetState.pipeline_version == pipeline_version,
                            AssetState.asset_id.in_(chunk),
                            AssetState.status.in_(statuses),
                        )
                    )
                )
        return found

    def known_fingerprints(self, found: dict[str, str]) -> dict[str, str]:
        """Asset ids of the files (uri → version) whose version has not changed."""
        known: dict[str, str] = {}
        uris = list(found)
        with Session(self.engine) as session:
            for start in range(0, len(uris), 500):
                for row in session.scalars(
                    select(Fingerprint).where(Fingerprint.uri.in_(uris[start : start + 500]))
                ):
                    if row.version == found[row.uri]:
                        known[row.uri] = row.asset_id
        return known

    def remember_fingerprints(self, rows: Iterable[tuple[str, str, str]]) -> None:
        """Store (uri, version, asset_id) triples."""
        with Session(self.engine) as session, session.begin():
            for uri, version, asset_id in rows:
                session.merge(Fingerprint(uri=uri, version=version, asset_id=asset_id))

    def spool(
        self, run_id: str, pipeline_version: str, assets: Iterable[dict[str, Any]], spool_uri: str
    ) -> None:
        """Record assets whose results are written to `spool_uri` but not yet committed:
        a run that dies now leaves them for the next run to commit, not to redo."""
        self._record(run_id, pipeline_version, assets, status="spooled", spool_uri=spool_uri)

    def spooled(self, pipeline_version: str, *, for_run: str | None = None) -> dict[str, str]:
        """Assets spooled under this pipeline version and not committed: asset_id → spool_uri.

        With `for_run`, only what that run may commit: its own, and what runs that are no
        longer running left behind (a run of another job going on at the same time keeps its own).
        """
        query = (
            select(AssetState.asset_id, AssetState.spool_uri)
            .join(Run, Run.run_id == AssetState.run_id, isouter=True)
            .where(AssetState.pipeline_version == pipeline_version, AssetState.status == "spooled")
        )
        if for_run is not None:
            query = query.where(
                or_(AssetState.run_id == for_run, Run.status.is_(None), Run.status != "running")
            )
        with Session(self.engine) as session:
            return {asset_id: uri for asset_id, uri in session.execute(query) if uri is not None}

    def settle(self, run_id: str, pipeline_version: str, assets: Iterable[dict[str, Any]]) -> None:
        """Record assets as finished; called only after their rows are committed."""
        self._record(run_id, pipeline_version, assets, status=None, spool_uri=None)

    def _record(
        self,
        run_id: str,
        pipeline_version: str,
        assets: Iterable[dict[str, Any]],
        *,
        status: str | None,
        spool_uri: str | None,
    ) -> None:
        now = utcnow()
        with Session(self.engine) as session, session.begin():
            for asset in assets:
                session.merge(
                    AssetState(
                        asset_id=asset["asset_id"],
                        pipeline_version=pipeline_version,
                        uri=asset["uri"],
                        status=status or asset["status"],
                        error=asset.get("error"),
                        spool_uri=spool_uri,
                        run_id=run_id,
                        updated_at=now,
                    )
                )

    # -- reads as plain data, for the packages that show run state (the dashboard) -----------------

    def run_record(self, run_id: str) -> RunRecord | None:
        """One run and its steps, in the order the run recorded them."""
        with Session(self.engine) as session:
            run = session.scalar(select(Run).options(selectinload(Run.steps)).where(Run.run_id == run_id))
            return None if run is None else RunRecord.of(run)

    def run_records(self, *, job: str | None = None, limit: int = 20) -> list[RunRecord]:
        """The latest runs, newest first, each with its steps in the order it recorded them."""
        query = select(Run).options(selectinload(Run.steps)).order_by(Run.started_at.desc()).limit(limit)
        if job is not None:
            query = query.where(Run.job == job)
        with Session(self.engine) as session:
            return [RunRecord.of(run) for run in session.scalars(query)]

    def run_count(self, *, job: str | None = None) -> int:
        query = select(func.count()).select_from(Run)
        if job is not None:
            query = query.where(Run.job == job)
        with Session(self.engine) as session:
            return int(session.scalar(query) or 0)

    def failed_assets(self, run_id: str, *, status: str = "failed") -> list[dict[str, str | None]]:
        """The assets a run failed on (or, with status='damaged', found damaged), as the asset
        state holds them: their URI and error."""
        query = select(AssetState.uri, AssetState.error).where(
            AssetState.run_id == run_id, AssetState.status == status
        )
        with Session(self.engine) as session:
            return [{"uri": uri, "error": error} for uri, error in session.execute(query)]

    def spooled_count(self, run_id: str) -> int:
        """How many assets a run has spooled whose rows are not committed yet."""
        query = (
            select(func.count())
            .select_from(AssetState)
            .where(AssetState.run_id == run_id, AssetState.status == "spooled")
        )
        with Session(self.engine) as session:
            return int(session.scalar(query) or 0)


@dataclass(frozen=True)
class StepRecord:
    """What one step of a run did and cost, as plain data."""

    step: str
    rows: int
    failures: int
    seconds: float


@dataclass(frozen=True)
class RunRecord:
    """A run as plain data: times in UTC, its steps in the order it recorded them."""

    run_id: str
    job: str
    spec: dict[str, Any]
    pipeline_version: str
    status: str
    error: str | None
    started_at: dt.datetime
    finished_at: dt.datetime | None
    summary: dict[str, Any]
    steps: tuple[StepRecord, ...]

    @classmethod
    def of(cls, run: Run) -> RunRecord:
        return cls(
            run_id=run.run_id,
            job=run.job,
            spec=dict(run.spec or {}),
            pipeline_version=run.pipeline_version,
            status=run.status,
            error=run.error,
            started_at=as_utc(run.started_at),
            finished_at=as_utc(run.finished_at) if run.finished_at else None,
            summary=dict(run.summary or {}),
            steps=tuple(StepRecord(s.step, s.rows, s.failures, s.seconds) for s in run.steps),
        )


def as_utc(when: dt.datetime) -> dt.datetime:
    """SQLite hands back naive datetimes for timezone-aware columns; they were written in UTC."""
    return when if when.tzinfo else when.replace(tzinfo=dt.UTC)


def _next_step_position(context: Any) -> int:
    """A new step's place in its run: after every step the run recorded before it."""
    run_id = context.get_current_parameters()["run_id"]
    query = select(func.coalesce(func.max(RunStep.position), 0) + 1).where(RunStep.run_id == run_id)
    return int(context.connection.execute(query).scalar_one())
