"""What the pages read: the catalog's tables at the engine's snapshots and the run state.

Reads go through the catalog's interfaces only: `catalog.iceberg` for tables and their
snapshots, `StateStore`'s plain-data reads for runs. Small tables (assets, remasters, audits,
events) are read once per snapshot and aggregated with DuckDB; anything derived from a snapshot
(the explore order, tag counts, on-screen text) is computed once per snapshot and kept.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pyiceberg.catalog.sql import SqlCatalog
from pyiceberg.expressions import BooleanExpression, EqualTo

from catalog.iceberg import read, table
from catalog.settings import Settings
from catalog.state import RunRecord, StateStore
from indexes.query import EngineState, QueryEngine
from indexes.view import CatalogView

FACET_LABELS = 200
USERS_LISTED = 200

RUN_TABLES = (
    "assets",
    "shots",
    "tags",
    "captions",
    "transcripts",
    "faces",
    "embeddings",
    "remasters",
    "dup_groups",
)
"""The tables a run writes (audits and events are written by others, under other ids)."""

ASSET_COLUMNS = (
    "asset_id",
    "uri",
    "status",
    "error",
    "duration_s",
    "width",
    "height",
    "fps",
    "video_codec",
    "container",
    "audio_streams",
    "shot_count",
    "processed_at",
    "run_id",
)
REMASTER_COLUMNS = (
    "asset_id",
    "kind",
    "status",
    "error",
    "codec",
    "width",
    "height",
    "upscale",
    "operations",
    "noise_before",
    "noise_after",
    "sharpness_before",
    "sharpness_after",
    "run_id",
)

T = TypeVar("T")


class Memo:
    """One value per name, kept while the snapshots it was computed from stay current. A value
    computed twice by two requests at once is harmless (both are right), so no lock is held
    while computing."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._values: dict[str, tuple[Any, Any]] = {}

    def get(self, name: str, key: Any, compute: Callable[[], T]) -> T:
        with self._lock:
            held = self._values.get(name)
        if held is not None and held[0] == key:
            return held[1]
        value = compute()
        with self._lock:
            self._values[name] = (key, value)
        return value


@dataclass(frozen=True)
class ScreenText:
    """Text read on screen (tags of kind 'text'), by shot row: what the explore filter searches."""

    labels: list[str]
    rows: np.ndarray
    label_of: np.ndarray

    def matching(self, words: str, size: int) -> np.ndarray:
        wanted = words.strip().lower()
        hits = [i for i, label in enumerate(self.labels) if wanted in label.lower()]
        keep = np.zeros(size, bool)
        keep[self.rows[np.isin(self.label_of, hits)]] = True
        return keep

    def of_row(self, row: int) -> list[str]:
        return sorted({self.labels[i] for i in self.label_of[self.rows == row]})


class DashboardData:
    """Reads for the pages, each from the engine's current state and the tables at its snapshots."""

    def __init__(self, settings: Settings, engine: QueryEngine) -> None:
        self.settings = settings
        self.engine = engine
        self.memo = Memo()
        self._store: StateStore | None = None
        self._store_lock = threading.Lock()

    @property
    def catalog(self) -> SqlCatalog:
        return self.engine.catalog

    @property
    def store(self) -> StateStore:
        """The run state (opened on first use: it migrates the database, which a page need not
        wait for at start)."""
        with self._store_lock:
            if self._store is None:
                self._store = StateStore(self.settings.catalog_url_resolved)
            return self._store

    # -- runs ------------------------------------------------------------------------------------

    def runs(self, limit: int) -> list[RunRecord]:
        return self.store.run_records(limit=limit)

    def run(self, run_id: str) -> RunRecord | None:
        return self.store.run_record(run_id)

    def run_count(self) -> int:
        return self.store.run_count()

    def failed_assets(self, run_id: str) -> list[dict[str, str | None]]:
        return self.store.failed_assets(run_id)

    def damaged_assets(self, run_id: str) -> list[dict[str, str | None]]:
        return self.store.failed_assets(run_id, status="damaged")

    def spooled_count(self, run_id: str) -> int:
        return self.store.spooled_count(run_id)

    def table_changes(self, run_id: str) -> list[dict[str, Any]]:
        """Rows a run's commits added and removed, per table it wrote (kept per catalog view)."""

        def changes() -> list[dict[str, Any]]:
            found = []
            for name in RUN_TABLES:
                added = deleted = 0
                for snapshot in table(self.catalog, name).snapshots():
                    summary = snapshot.summary
                    if summary is not None and summary.get("archivist.run-id") == run_id:
                        added += int(summary.get("added-records", 0) or 0)
                        deleted += int(summary.get("deleted-records", 0) or 0)
                if added or deleted:
                    found.append({"table": name, "added": added, "deleted": deleted})
            return found

        return self.memo.get("changes", (run_id, self.engine.state.view.key), changes)

    # -- tables, once per snapshot ---------------------------------------------------------------

    def _table_at(self, state: EngineState, name: str, columns: tuple[str, ...]) -> pa.Table:
        snapshot = state.tables.get(name, (None, 0))[0]
        return self.memo.get(name, snapshot, lambda: read_at(self.catalog, name, columns, snapshot))

    def assets(self, state: EngineState) -> pa.Table:
        return self._table_at(state, "assets", ASSET_COLUMNS)

    def remasters(self, state: EngineState) -> pa.Table:
        return self._table_at(state, "remasters", REMASTER_COLUMNS)

    def asset(self, state: EngineState, asset_id: str) -> dict[str, Any] | None:
        assets = self.assets(state)
        found = assets.filter(pc.equal(assets["asset_id"], asset_id)).to_pylist()
        return found[0] if found else None

    def assets_of_run(self, state: EngineState, run_id: str) -> list[dict[str, Any]]:
        assets = self.assets(state)
        mine = assets.filter(pc.equal(assets["run_id"], run_id))
        return mine.select(["asset_id", "uri", "status", "error"]).to_pylist()

    def status_counts(self, state: EngineState) -> list[dict[str, Any]]:
        """Assets and their seconds of footage per status, the commonest first."""
        with duckdb.connect() as sql:
            sql.register("assets", self.assets(state))
            by_status = sql.execute(
                "SELECT status, count(*) AS assets, sum(duration_s) AS seconds "
                "FROM assets GROUP BY status ORDER BY assets DESC, status"
            ).fetchall()
        return [{"status": s, "assets": n, "seconds": secs} for s, n, secs in by_status]

    def catalogued_and_audited(self, state: EngineState) -> tuple[int, int]:
        """Catalogued (ok) assets, and how many of them were written by a run that was audited."""
        with duckdb.connect() as sql:
            sql.register("assets", self.assets(state))
            sql.register("audited", pa.table({"run_id": pa.array(sorted(self.audited_runs()), pa.string())}))
            ok, audited = sql.execute(
                "SELECT count(*), count(*) FILTER (WHERE run_id IN (SELECT run_id FROM audited)) "
                "FROM assets WHERE status = 'ok'"
            ).fetchall()[0]
        return int(ok), int(audited)

    def remastered_count(self, state: EngineState) -> int:
        """Assets with a master or access copy made."""
        remasters = self.remasters(state)
        return len(pc.unique(remasters.filter(pc.equal(remasters["status"], "ok"))["asset_id"]))

    def transcript(self, asset_id: str, start: float, end: float) -> list[dict[str, Any]]:
        """The asset's speech segments that overlap the time from `start` to `end`."""
        rows = read(
            self.catalog,
            "transcripts",
            columns=("start_s", "end_s", "text", "language"),
            row_filter=_equal("asset_id", asset_id),
        ).to_pylist()
        return sorted(
            (r for r in rows if (r["end_s"] or 0) > start and (r["start_s"] or 0) < end and r["text"]),
            key=lambda r: r["start_s"],
        )

    def qc_record(self, asset_id: str) -> dict[str, Any] | None:
        """The asset's preservation QC record (the `qc` table), None where the qc stage has not run."""
        rows = read(self.catalog, "qc", row_filter=_equal("asset_id", asset_id)).to_pylist()
        return rows[0] if rows else None

    def users(self, state: EngineState) -> list[tuple[str, int]]:
        """Users with events, most active first: whom "for you" can be asked for."""
        snapshot = state.tables.get("events", (None, 0))[0]

        def load() -> list[tuple[str, int]]:
            events = read_at(self.catalog, "events", ("user_id",), snapshot)
            with duckdb.connect() as sql:
                sql.register("events", events)
                return sql.execute(
                    "SELECT user_id, count(*) AS n FROM events "
                    f"GROUP BY user_id ORDER BY n DESC, user_id LIMIT {USERS_LISTED}"
                ).fetchall()

        return self.memo.get("users", snapshot, load)

    # -- audits (not part of the engine's state: the audit job appends) ---------------------------

    def audits(self) -> tuple[int | None, pa.Table]:
        """The audits table and its snapshot."""
        snapshot = table(self.catalog, "audits").current_snapshot()
        snapshot_id = snapshot.snapshot_id if snapshot else None
        rows = self.memo.get(
            "audits", snapshot_id, lambda: read_at(self.catalog, "audits", ("*",), snapshot_id)
        )
        return snapshot_id, rows

    def audited_runs(self) -> set[str]:
        return set(pc.unique(self.audits()[1]["run_id"]).to_pylist())

    def latest_audits(self) -> list[dict[str, Any]]:
        """Each audited run's latest audit, the latest first: its id, time, checks and flags."""
        with duckdb.connect() as sql:
            sql.register("audits", self.audits()[1])
            done = sql.execute(
                "SELECT run_id, audit_id, max(audited_at) AS audited, count(*) AS checks, "
                "count(*) FILTER (WHERE flagged) AS flagged FROM audits "
                "GROUP BY run_id, audit_id ORDER BY audited DESC"
            ).fetchall()
        latest: dict[str, tuple[str, dt.datetime, int, int]] = {}
        for run, audit_id, at, checks, flagged in done:
            latest.setdefault(run, (audit_id, at, checks, flagged))
        return [
            {"run_id": r, "audit_id": a, "at": at, "checks": c, "flagged": f}
            for r, (a, at, c, f) in latest.items()
        ]

    def audit_rows(self, audit_id: str) -> list[dict[str, Any]]:
        audits = self.audits()[1]
        return audits.filter(pc.equal(audits["audit_id"], audit_id)).to_pylist()

    def evidence_uris(self, key_of: Callable[[str], str]) -> dict[str, str]:
        """The audits' evidence URIs by `key_of` each (kept per snapshot of the audits)."""
        snapshot, audits = self.audits()
        return self.memo.get(
            "evidence", snapshot, lambda: {key_of(u): u for u in audits["evidence_uri"].to_pylist() if u}
        )

    # -- derived from the catalog view, once per snapshot -----------------------------------------

    def screen_text(self, state: EngineState) -> ScreenText:
        view = state.view

        def load() -> ScreenText:
            snapshot = view.snapshots["tags"][0]
            if snapshot is None:
                return ScreenText([], np.zeros(0, np.int64), np.zeros(0, np.int64))
            rows = read(
                self.catalog,
                "tags",
                columns=("shot_id", "label"),
                row_filter=_equal("kind", "text"),
                snapshot_id=snapshot,
            )
            shots = np.fromiter((view.row_of.get(s, -1) for s in rows["shot_id"].to_pylist()), np.int64)
            labels = np.asarray([str(v) for v in rows["label"].to_pylist()], dtype=object)
            names: Any = []
            label_of: Any = labels
            if len(labels):
                names, label_of = np.unique(labels, return_inverse=True)
            known = shots >= 0
            return ScreenText([str(n) for n in names], shots[known], np.asarray(label_of)[known])

        return self.memo.get("screen_text", view.key, load)

    def explore_order(self, view: CatalogView) -> np.ndarray:
        """Shot rows, newest catalogued asset first, then by asset and time in it."""

        def order() -> np.ndarray:
            known = view.shot_asset >= 0
            when = np.zeros(view.size, np.int64)
            stamps = view.asset_catalogued[view.shot_asset[known]]
            when[known] = np.where(np.isnat(stamps), 0, stamps.astype("datetime64[us]").astype(np.int64))
            return np.lexsort((np.nan_to_num(view.start_s), view.shot_asset, -when))

        return self.memo.get("explore_order", view.key, order)

    def facets(self, view: CatalogView) -> dict[str, list[tuple[str, int]]]:
        """The most common tags and objects, for the filter lists."""

        def count() -> dict[str, list[tuple[str, int]]]:
            return {
                name: sorted(
                    ((label, len(rows)) for label, rows in labels.items()), key=lambda i: (-i[1], i[0])
                )[:FACET_LABELS]
                for name, labels in (("tags", view.tag_rows), ("objects", view.object_rows))
            }

        return self.memo.get("facets", view.key, count)

    def described(self, view: CatalogView) -> np.ndarray:
        """Which shots have a caption or tags."""

        def described() -> np.ndarray:
            keep = np.fromiter((c is not None for c in view.captions), bool, view.size)
            for labels in (view.tag_rows, view.object_rows):
                if labels:
                    keep[np.concatenate(list(labels.values()))] = True
            return keep

        return self.memo.get("described", view.key, described)

    def segmented(self, view: CatalogView) -> int:
        """Assets with shots."""
        return len(np.unique(view.shot_asset[view.shot_asset >= 0]))


def _equal(column: str, value: str) -> BooleanExpression:
    """column = value, as a scan's row filter (pyiceberg's positional constructor, which the
    pydantic plugin of mypy does not see)."""
    return EqualTo(column, value)  # type: ignore[call-arg]


def read_at(catalog: SqlCatalog, name: str, columns: tuple[str, ...], snapshot_id: int | None) -> pa.Table:
    """A table's columns at a snapshot; no snapshot (nothing committed yet), no rows."""
    if snapshot_id is None:
        schema = table(catalog, name).schema().as_arrow()
        empty = pa.Table.from_pylist([], schema=schema)
        return empty if columns == ("*",) else empty.select(list(columns))
    return read(catalog, name, columns=columns, snapshot_id=snapshot_id)
