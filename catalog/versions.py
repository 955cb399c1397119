"""Catalog versions: readers see the whole of one run's commits or none of them.

A run commits one Iceberg snapshot per table. A reader between two of those commits
could join new shots with old tags; so after all of a run's tables have committed, the
snapshot id of every run-written table is recorded as one version (one row, one
transaction, in the state database beside the Iceberg catalog's pointers), and readers
read every table at the latest version. A run that dies between its table commits leaves
the version before it in force until the next run's commit. Commits of several runs are
serialised by a lock in the same database, so each version is a state some run left.

A catalog that has no version yet (made before versions, or never committed by a run)
is read at its tables' current snapshots.

What a dead run committed is not left for the next version to pick up: whoever takes the
commit lock next first puts every run-written table back at the latest version's snapshot
(`abandon_unversioned`). Otherwise a run of another job, recording its version over the
tables' current snapshots, would publish the dead run's half (its shots without their asset
rows). The dead run's rows are not lost: they are in its spool, and the next run of its job
commits them whole.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from pyiceberg.catalog.sql import SqlCatalog
from pyiceberg.expressions import AlwaysTrue
from sqlalchemy import JSON, DateTime, Integer, String, insert, inspect, select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError, ProgrammingError
from sqlalchemy.orm import Mapped, Session, mapped_column

from catalog.locks import job_lock
from catalog.schema import DERIVED_TABLES, NAMESPACE, TABLES
from catalog.state import Base, as_utc, utcnow

log = logging.getLogger(__name__)

COMMIT_LOCK = "~catalog-commit"
"""The lock a run holds from its first table commit to its version (not a job name: jobs
are named by specs, which cannot start with '~')."""
COMMIT_LOCK_WAIT = 600.0
_IN_PROCESS = threading.Lock()  # the database lock is per process; threads of one take turns here

VERSIONED_TABLES = tuple(name for name in TABLES if name not in DERIVED_TABLES)


class CatalogVersion(Base):
    __tablename__ = "archivist_catalog_versions"

    version: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_id: Mapped[str | None] = mapped_column(String(40))
    recorded_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    snapshots: Mapped[dict[str, int | None]] = mapped_column(JSON)


@dataclass(frozen=True)
class Version:
    """One complete state of the run-written tables: each table's snapshot id (None: the
    table had no rows yet)."""

    number: int
    run_id: str | None
    recorded_at: dt.datetime
    snapshots: dict[str, int | None]


EXPIRED = " (versions older than the retention are dropped by `archivist catalog expire`)"


class NoSuchVersionError(LookupError):
    """No catalog version matches what was asked for."""


def _engine(catalog: SqlCatalog) -> Engine:
    return catalog.engine


@contextmanager
def committing(catalog: SqlCatalog) -> Iterator[None]:
    """Hold the catalog's commit lock for a run's table commits and its version."""
    with _IN_PROCESS, job_lock(_engine(catalog), COMMIT_LOCK, wait=COMMIT_LOCK_WAIT):
        abandon_unversioned(catalog)
        yield


def abandon_unversioned(catalog: SqlCatalog) -> list[str]:
    """Put each run-written table whose current snapshot no version holds back at the latest
    version's (empty, where that version had none of it); the tables put back. Call it holding
    the commit lock: then only a run that died can have left such a commit."""
    latest = latest_version(catalog)
    if latest is None:
        return []
    restored = []
    for name in VERSIONED_TABLES:
        identifier = f"{NAMESPACE}.{name}"
        if not catalog.table_exists(identifier):
            continue
        tbl = catalog.load_table(identifier)
        current = tbl.current_snapshot()
        wanted = latest.snapshots.get(name)
        if current is None or current.snapshot_id == wanted:
            continue
        if wanted is not None and tbl.snapshot_by_id(wanted) is not None:
            tbl.manage_snapshots().set_current_snapshot(snapshot_id=wanted).commit()
        else:  # the version had no rows of this table
            tbl.delete(AlwaysTrue())
        log.warning(
            "table %s was put back to catalog version %d: a run that died between its commits "
            "left snapshot %d, which no version holds",
            name,
            latest.number,
            current.snapshot_id,
        )
        restored.append(name)
    return restored


def record_version(catalog: SqlCatalog, run_id: str | None) -> Version:
    """The current snapshot of every run-written table, recorded as the newest version (call
    it holding `committing`, after the run's last table commit)."""
    snapshots: dict[str, int | None] = {}
    for name in VERSIONED_TABLES:
        identifier = f"{NAMESPACE}.{name}"
        if catalog.table_exists(identifier):
            current = catalog.load_table(identifier).current_snapshot()
            snapshots[name] = current.snapshot_id if current else None
    at = utcnow()
    with Session(_engine(catalog)) as session, session.begin():
        number = session.execute(
            insert(CatalogVersion)
            .values(run_id=run_id, recorded_at=at, snapshots=snapshots)
            .returning(CatalogVersion.version)
        ).scalar_one()
    return Version(number, run_id, at, snapshots)


def latest_version(catalog: SqlCatalog) -> Version | None:
    """The newest complete version; None before the first (or where the state database was
    never migrated, as a bare Iceberg catalog is not)."""
    return _one(catalog, select(CatalogVersion).order_by(CatalogVersion.version.desc()).limit(1))


def version_as_of(catalog: SqlCatalog, moment: str) -> Version:
    """The version a run left (`moment` a run id), or the newest at a time (ISO 8601)."""
    by_run = select(CatalogVersion).where(CatalogVersion.run_id == moment)
    found = _one(catalog, by_run.order_by(CatalogVersion.version.desc()).limit(1))
    if found is not None:
        return found
    try:
        when = as_utc(dt.datetime.fromisoformat(moment))
    except ValueError:
        raise NoSuchVersionError(
            f"{moment!r} is neither a run whose version the catalog keeps nor an ISO time{EXPIRED}"
        ) from None
    at = select(CatalogVersion).where(CatalogVersion.recorded_at <= when)
    found = _one(catalog, at.order_by(CatalogVersion.version.desc()).limit(1))
    if found is None:
        raise NoSuchVersionError(f"the catalog has no version as old as {moment}{EXPIRED}")
    return found


def _one(catalog: SqlCatalog, query: object) -> Version | None:
    engine = _engine(catalog)
    try:
        with Session(engine) as session:
            row = session.execute(query).scalar_one_or_none()  # type: ignore[call-overload]
    except (OperationalError, ProgrammingError):
        if inspect(engine).has_table(CatalogVersion.__tablename__):
            raise
        return None  # a catalog whose state database was never migrated has no versions
    if row is None:
        return None
    return Version(row.version, row.run_id, as_utc(row.recorded_at), dict(row.snapshots))
