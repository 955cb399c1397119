"""The Iceberg catalog: tables of Parquet files in the warehouse, named in SQL.

pyiceberg's SQL catalog keeps table pointers in the same database as the run
state, so one SQLAlchemy URL (SQLite on a laptop, PostgreSQL on a cluster)
and one warehouse URI (a folder or S3) are the whole deployment.
"""

from __future__ import annotations

import errno
import logging
import time
import warnings
from collections.abc import Iterable

import pyarrow as pa
from pyiceberg.catalog.sql import SqlCatalog
from pyiceberg.exceptions import CommitFailedException, NoSuchTableError, ValidationException
from pyiceberg.expressions import AlwaysTrue, BooleanExpression, In
from pyiceberg.table import Table
from pyiceberg.table.snapshots import Snapshot

from catalog.races import tolerate_first_use_race
from catalog.schema import DERIVED_TABLES, NAMESPACE, TABLES
from catalog.settings import Settings
from catalog.state import migrate, retry_database
from catalog.storage import StorageError, failure
from catalog.versions import Version, latest_version

log = logging.getLogger(__name__)

COMMIT_ATTEMPTS = 8


def open_catalog(settings: Settings) -> SqlCatalog:
    """The Iceberg catalog, with the state tables its versions and commit lock live in
    (migrating is a few milliseconds once they are there)."""
    migrate(settings.catalog_url_resolved)

    def connect() -> SqlCatalog:
        catalog = SqlCatalog(
            "archivist",
            uri=settings.catalog_url_resolved,
            warehouse=settings.location("warehouse"),
            **settings.iceberg_properties(),
        )
        catalog.create_namespace_if_not_exists(NAMESPACE)
        return catalog

    return tolerate_first_use_race(connect)


def table(catalog: SqlCatalog, name: str) -> Table:
    """The table, created on first use and widened when the code added columns."""
    schema = TABLES[name]
    identifier = f"{NAMESPACE}.{name}"
    try:
        tbl = catalog.load_table(identifier)
    except NoSuchTableError:
        return catalog.create_table_if_not_exists(identifier, schema=schema)
    known = {f.name for f in tbl.schema().fields}
    if any(f.name not in known for f in schema):
        with tbl.update_schema() as update:
            update.union_by_name(schema)
        tbl = catalog.load_table(identifier)
    return tbl


def replace_assets(
    catalog: SqlCatalog,
    name: str,
    rows: pa.Table,
    asset_ids: Iterable[str],
    *,
    run_id: str,
) -> int | None:
    """Make `rows` the table's only rows for these assets, in one commit.

    Replacing by asset is what makes a re-run idempotent: whatever an earlier
    (or crashed) run wrote for the same assets is removed in the same commit
    that adds the new rows, so readers see the old rows or the new, never both.
    Returns the new snapshot id.
    """
    ids = sorted(set(asset_ids))
    if not ids:
        return None
    return _commit(catalog, name, rows, run_id=run_id, replacing=In(term="asset_id", literals=ids))


def replace_matching(
    catalog: SqlCatalog, name: str, rows: pa.Table, replacing: BooleanExpression, *, run_id: str
) -> int | None:
    """Make `rows` the table's only rows matching `replacing`, in one commit (a stage's rows
    of some assets, where several stages write rows of one table)."""
    return _commit(catalog, name, rows, run_id=run_id, replacing=replacing)


def replace_all(catalog: SqlCatalog, name: str, rows: pa.Table, *, run_id: str) -> int | None:
    """Make `rows` the whole table, in one commit (for tables derived from the whole catalog)."""
    return _commit(catalog, name, rows, run_id=run_id, replacing=AlwaysTrue())


def append(catalog: SqlCatalog, name: str, rows: pa.Table, *, run_id: str = "") -> int | None:
    """Add rows, in one commit (for tables that only grow, such as events)."""
    return _commit(catalog, name, rows, run_id=run_id, replacing=None)


def _commit(
    catalog: SqlCatalog, name: str, rows: pa.Table, *, run_id: str, replacing: BooleanExpression | None
) -> int | None:
    rows = rows.select(TABLES[name].names).cast(TABLES[name])
    props = {"archivist.run-id": run_id} if run_id else {}

    def once() -> int | None:
        tbl = table(catalog, name)
        if replacing is None:
            if rows.num_rows:
                tbl.append(rows, snapshot_properties=props)
        elif rows.num_rows:
            with warnings.catch_warnings():  # a first run has nothing to replace; that is fine
                warnings.filterwarnings("ignore", "Delete operation did not match any records")
                tbl.overwrite(rows, overwrite_filter=replacing, snapshot_properties=props)
        elif tbl.current_snapshot() is not None:
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", "Delete operation did not match any records")
                tbl.delete(replacing, snapshot_properties=props)
        snapshot = catalog.load_table(f"{NAMESPACE}.{name}").current_snapshot()
        return snapshot.snapshot_id if snapshot else None

    for attempt in range(1, COMMIT_ATTEMPTS + 1):
        try:
            # A lost database connection is retried with backoff (replacing by filter makes a
            # repeated commit land the same rows); a storage failure that the FileIO's own
            # retries did not cure ends the commit before the table's pointer moves, naming
            # the table and the object.
            return retry_database(once, catalog.properties.get("uri", ""), what=f"committing to table {name}")
        except OSError as exc:
            cause = failure(catalog.properties.get("warehouse", ""), exc)
            raise StorageError(cause.errno or errno.EIO, f"commit to table {name} failed: {cause}") from exc
        except (CommitFailedException, ValidationException):
            # Another run committed to this table first. pyiceberg says so with
            # CommitFailedException, or with ValidationException when the other commit added
            # files whose column bounds overlap the rows this one replaces (two runs of
            # different assets, ids interleaved): either way, reload and try again.
            log.info("commit to %s lost a race (attempt %d); retrying", name, attempt)
            time.sleep(min(0.1 * 2**attempt, 3.0))
    raise RuntimeError(f"could not commit to table {name} after {COMMIT_ATTEMPTS} attempts")


def visible(catalog: SqlCatalog, name: str, at: Version | None = None) -> Snapshot | None:
    """The snapshot of the table that readers see: the one in catalog version `at` (default:
    the latest), so that every table read is of one complete run. A table written outside
    runs, or a catalog without versions yet, is seen at its current snapshot."""
    tbl = table(catalog, name)
    version = at or (latest_version(catalog) if name not in DERIVED_TABLES else None)
    if version is None or name in DERIVED_TABLES:
        return tbl.current_snapshot()
    snapshot_id = version.snapshots.get(name)
    return tbl.snapshot_by_id(snapshot_id) if snapshot_id is not None else None


def read(
    catalog: SqlCatalog,
    name: str,
    *,
    columns: tuple[str, ...] = ("*",),
    row_filter: str | BooleanExpression = "true",
    snapshot_id: int | None = None,
    at: Version | None = None,
    current: bool = False,
) -> pa.Table:
    """Rows of the table as readers see it (`visible`; at version `at`, or a given snapshot).
    `current`: the table's newest snapshot whether or not a version holds it, which only a
    writer holding the commit lock should want."""
    tbl = table(catalog, name)
    if snapshot_id is None and not current:
        seen = visible(catalog, name, at)
        if seen is None:  # the version has no rows of this table yet
            return _empty(name, columns)
        snapshot_id = seen.snapshot_id
    return tbl.scan(row_filter=row_filter, selected_fields=columns, snapshot_id=snapshot_id).to_arrow()


def _empty(name: str, columns: tuple[str, ...]) -> pa.Table:
    schema = TABLES[name]
    return schema.empty_table() if columns == ("*",) else schema.empty_table().select(list(columns))
