"""Expiring old snapshots and removing orphan files: explicit maintenance, never a side effect.

Every commit leaves the snapshot before it readable (time travel: `archivist sql --as-of`), and
its data files on storage; nothing is ever deleted by a run. An archive that runs nightly grows
by a snapshot per table a night, so `archivist catalog expire` is the one place that forgets:

- **What stays.** Every catalog version recorded within the retention (and always the latest)
  keeps the snapshot of each table it names; so does each table's current snapshot, and the
  embeddings snapshot every live search index was built from. A snapshot younger than the
  retention is never expired, whatever names it.
- **What goes.** Older snapshots (Iceberg's own expire-snapshots commit), the versions older
  than the retention (so `--as-of` before it says the catalog keeps no such version), and the
  files under a table's location that no remaining snapshot or metadata file names (orphans:
  data of expired snapshots, files a crashed run wrote but never committed). A file younger
  than the retention is never removed: a run may be writing it now.
- **Under the commit lock.** No run commits while what is referenced is worked out, so a file
  is never judged an orphan between its write and its commit.

`--dry-run` reports the same figures and changes nothing.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from typing import Any

import fsspec
from pyiceberg.catalog.sql import SqlCatalog
from pyiceberg.table import Table
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from catalog.schema import EMBEDDING_SPACES, NAMESPACE, TABLES
from catalog.settings import Settings
from catalog.state import as_utc, utcnow
from catalog.versions import CatalogVersion, committing

DEFAULT_RETENTION_DAYS = 7.0


@dataclass
class TableExpiry:
    snapshots_kept: int = 0
    snapshots_expired: int = 0
    orphan_files: int = 0
    orphan_bytes: int = 0


@dataclass
class ExpiryReport:
    retention_days: float
    cutoff: str
    dry_run: bool
    versions_kept: int = 0
    versions_dropped: int = 0
    tables: dict[str, TableExpiry] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def orphan_bytes(self) -> int:
        return sum(t.orphan_bytes for t in self.tables.values())


def expire(
    catalog: SqlCatalog,
    settings: Settings,
    *,
    retention_days: float = DEFAULT_RETENTION_DAYS,
    dry_run: bool = False,
    now: dt.datetime | None = None,
) -> ExpiryReport:
    """Forget what is older than the retention and nothing anyone still reads (see above)."""
    now = as_utc(now) if now is not None else utcnow()
    cutoff = now - dt.timedelta(days=retention_days)
    report = ExpiryReport(retention_days, cutoff.isoformat(), dry_run)
    with committing(catalog):
        keep, dropped = _kept_snapshots(catalog, settings, cutoff, report)
        for name in TABLES:
            identifier = f"{NAMESPACE}.{name}"
            if catalog.table_exists(identifier):
                tbl = catalog.load_table(identifier)
                report.tables[name] = _expire_table(tbl, keep[name], cutoff, dry_run, settings)
        if dropped and not dry_run:
            with Session(catalog.engine) as session, session.begin():
                session.execute(delete(CatalogVersion).where(CatalogVersion.version.in_(dropped)))
    return report


def _kept_snapshots(
    catalog: SqlCatalog, settings: Settings, cutoff: dt.datetime, report: ExpiryReport
) -> tuple[dict[str, set[int]], list[int]]:
    """Per table, the snapshot ids a kept version or a live index names; and the versions to drop."""
    from indexes.store import IndexMissingError, current

    keep: dict[str, set[int]] = defaultdict(set)
    with Session(catalog.engine) as session:
        versions = session.execute(select(CatalogVersion).order_by(CatalogVersion.version)).scalars().all()
    dropped = []
    for position, version in enumerate(versions):
        latest = position == len(versions) - 1
        if latest or as_utc(version.recorded_at) >= cutoff:
            report.versions_kept += 1
            for name, snapshot_id in (version.snapshots or {}).items():
                if snapshot_id is not None:
                    keep[name].add(int(snapshot_id))
        else:
            dropped.append(version.version)
    report.versions_dropped = len(dropped)
    for space in EMBEDDING_SPACES:
        try:
            keep["embeddings"].add(current(settings, space).snapshot_id)
        except IndexMissingError:
            continue
    return keep, dropped


def _expire_table(
    tbl: Table, keep: set[int], cutoff: dt.datetime, dry_run: bool, settings: Settings
) -> TableExpiry:
    cutoff_ms = int(cutoff.timestamp() * 1000)
    current = tbl.current_snapshot()
    if current is not None:
        keep = keep | {current.snapshot_id}
    old = [s.snapshot_id for s in tbl.snapshots() if s.snapshot_id not in keep and s.timestamp_ms < cutoff_ms]
    result = TableExpiry(snapshots_kept=len(tbl.snapshots()) - len(old), snapshots_expired=len(old))
    if old and not dry_run:
        tbl.maintenance.expire_snapshots().by_ids(old).commit()
        tbl = tbl.refresh()
    fs, root = fsspec.core.url_to_fs(tbl.location(), **settings.storage_options())
    referenced = _referenced(tbl, fs, set(old) if dry_run else set())
    try:
        found = fs.find(root, detail=True)
    except FileNotFoundError:
        found = {}
    orphans = []
    for path, info in found.items():
        if _strip(fs, path) in referenced or info.get("type") == "directory":
            continue
        modified = _modified(info)
        if modified is not None and modified < cutoff:
            orphans.append(path)
            result.orphan_bytes += int(info.get("size") or 0)
    result.orphan_files = len(orphans)
    if orphans and not dry_run:
        fs.rm(orphans)
    return result


def _referenced(tbl: Table, fs: fsspec.AbstractFileSystem, expiring: set[int]) -> set[str]:
    """Every file the table's metadata still names (less what the snapshots in `expiring`, about
    to go in a dry run, alone name)."""
    named = {tbl.metadata_location, *(entry.metadata_file for entry in tbl.metadata.metadata_log)}
    for snapshot in tbl.snapshots():
        if snapshot.snapshot_id in expiring:
            continue
        named.add(snapshot.manifest_list)
        for manifest in snapshot.manifests(tbl.io):
            named.add(manifest.manifest_path)
            for entry in manifest.fetch_manifest_entry(tbl.io, discard_deleted=False):
                named.add(entry.data_file.file_path)
    return {_strip(fs, uri) for uri in named}


def _strip(fs: fsspec.AbstractFileSystem, uri: str) -> str:
    return str(fs._strip_protocol(uri)).rstrip("/")


def _modified(info: dict[str, Any]) -> dt.datetime | None:
    """A listed file's last change, from a local folder's `mtime` or an object's `LastModified`."""
    stamp = info.get("mtime", info.get("LastModified", info.get("last_modified")))
    if isinstance(stamp, dt.datetime):
        return as_utc(stamp)
    if isinstance(stamp, int | float):
        return dt.datetime.fromtimestamp(stamp, dt.UTC)
    return None
