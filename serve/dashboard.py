"""The analyst dashboard: server-rendered pages over the same engine and catalog as the API.

- **Pages, not an app.** Each page is rendered on the server from the engine's
  loaded state (the in-memory `CatalogView`) and small tables read once per
  snapshot; a page works without JavaScript, which only draws charts, keeps
  two players in step and polls a running job. Nothing is built: templates,
  one stylesheet and one script are files of this package, and the charting
  library (Plotly) is served from its installed Python package, so the
  dashboard reaches nothing outside this service (the pages' CSP says so).
- **Fast at scale.** Aggregates come from the view's arrays, DuckDB over
  small tables (assets, remasters, audits) and the runs' SQL rows; anything
  derived from a snapshot (the explore order, tag counts, on-screen text) is
  computed once per snapshot and kept. The explore grid pages by offset over
  that precomputed order, 60 lazily loaded thumbnails at a time.
- **Access** is the API's rule. On loopback nothing is asked. Beyond it, a
  browser cannot send a bearer token with `<img>` or `<video>`, so the token is
  typed once into a login form and kept as an HttpOnly, SameSite=Strict cookie
  holding a keyed hash of the token (not the token itself, which also grants
  writes); a bearer header works too. Media for the pages is served under
  `/dashboard/media/…` for that reason, by id, from URIs the catalog gives.
"""

from __future__ import annotations

import datetime as dt
import gzip
import hashlib
import hmac
import importlib.metadata
import importlib.util
import json
import math
import mimetypes
import posixpath
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, TypeVar
from urllib.parse import quote, urlencode

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from fastapi import APIRouter, Depends, File, Form, Request, UploadFile
from fastapi.responses import FileResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from pyiceberg.catalog.sql import SqlCatalog
from pyiceberg.expressions import EqualTo
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from starlette.exceptions import HTTPException

from catalog.iceberg import read, table
from catalog.query import QueryError
from catalog.settings import Settings
from catalog.state import AssetState, Run, StateStore
from indexes.filters import Filters
from indexes.query import EngineState, ImageTooLargeError, QueryEngine, Result, decode_query_image
from indexes.query_image import QueryImageError
from indexes.recommend import UnknownUserError, for_you, more_like_this
from indexes.search import UnknownShotError
from indexes.store import IndexMissingError
from indexes.view import CatalogView
from serve.auth import Access, AuthError, Credentials
from serve.media import MediaNotFoundError, keyframe_response, ranged_file, stream

PREFIX = "/dashboard"
PAGE_SIZE = 60
RESULTS = 24
RUNS_SHOWN = 50
RUNS_CHARTED = 20
FACET_LABELS = 200
NEAR_DUPLICATES = 12
COOKIE = "archivist_dashboard"
CHUNK = 256 << 10

HERE = Path(__file__).parent
STATIC_FILES = {name: HERE / "static" / name for name in ("dashboard.css", "dashboard.js")}

STAGE_ORDER = (
    "discover",
    "fingerprint",
    "speech",
    "remaster",
    "segment",
    "decode",
    "visual",
    "objects",
    "ocr",
    "faces",
    "safety",
    "technical",
    "phash",
    "transcript",
    "text",
    "commit",
    "duplicates",
    "index",
)
"""Where each stage sits in a run, for listing a run's stages in the order they work."""

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
PLAYABLE_CODECS = {"h264", "vp8", "vp9", "av1"}
PLAYABLE_SUFFIXES = {".mp4", ".m4v", ".mov", ".webm"}
"""What Chromium, Firefox and Safari all play in a `<video>`; other sources show their keyframe."""

CSP = (
    "default-src 'self'; img-src 'self' data: blob:; media-src 'self'; style-src 'self' 'unsafe-inline'; "
    "script-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
"""Plotly sets inline styles; nothing else inline, and nothing from anywhere else."""
REPORT_CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'; sandbox"
"""The audit report is another module's HTML: shown, never run."""

T = TypeVar("T")


# -- how figures read ------------------------------------------------------------------------------


def seconds_text(value: float | None) -> str:
    """A time in a video, as players show it: m:ss.s."""
    if value is None or not math.isfinite(value):
        return "?"
    minutes, rest = divmod(float(value), 60)
    return f"{int(minutes)}:{rest:04.1f}"


def duration_text(value: float | None) -> str:
    if value is None:
        return "—"
    if value < 60:
        return f"{value:.1f} s"
    if value < 3600:
        return f"{value / 60:.1f} min"
    return f"{value / 3600:.1f} h"


def hours_text(value: float) -> str:
    hours = value / 3600
    return f"{hours:,.1f}" if hours >= 10 else f"{hours:.2f}"


def when_text(value: dt.datetime | None) -> str:
    return _utc(value).strftime("%Y-%m-%d %H:%M UTC") if value else "—"


def number_text(value: float | None) -> str:
    return "—" if value is None else f"{value:,}"


def rate_text(value: float | None) -> str:
    return "—" if value is None else f"{value:,.1f}" if value >= 10 else f"{value:.2f}"


TEMPLATES = Jinja2Templates(directory=HERE / "templates")
TEMPLATES.env.filters.update(
    seconds=seconds_text,
    duration=duration_text,
    hours=hours_text,
    when=when_text,
    num=number_text,
    rate=rate_text,
    pct=lambda share: f"{100 * share:.1f}%",
    basename=lambda uri: posixpath.basename(uri or "") or uri,
)


# -- access --------------------------------------------------------------------------------------


def session_value(token: str) -> str:
    """What the cookie holds: a keyed hash of the token, useless as a bearer token for writes."""
    return hmac.new(token.encode(), b"archivist dashboard session", hashlib.sha256).hexdigest()


class Gate:
    """The dashboard's two dependencies: pages (which send a browser to the login form) and media
    (which answer 401, as an `<img>` cannot follow a login)."""

    def __init__(self, access: Access) -> None:
        self.access = access

    def allowed(self, request: Request, credentials: Credentials) -> bool:
        token = self.access.token
        if self.access.open_reads:
            return True
        if not token:
            return False
        cookie = request.cookies.get(COOKIE, "")
        if cookie and hmac.compare_digest(cookie.encode(), session_value(token).encode()):
            return True
        return credentials is not None and hmac.compare_digest(
            credentials.credentials.encode(), token.encode()
        )

    async def page(self, request: Request, credentials: Credentials) -> None:
        if not self.allowed(request, credentials):
            target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            raise HTTPException(303, "log in first", headers={"location": login_url(target)})

    async def media(self, request: Request, credentials: Credentials) -> None:
        if not self.allowed(request, credentials):
            raise AuthError(401, "this needs the service's token: log in at /dashboard/login")


def login_url(target: str) -> str:
    return f"{PREFIX}/login?{urlencode({'next': target})}"


def safe_next(target: str | None) -> str:
    """Only back into the dashboard: a login link must not send anyone elsewhere."""
    if target and target.startswith(PREFIX) and not target.startswith("//") and "\\" not in target:
        return target
    return PREFIX


# -- snapshot-keyed memory -------------------------------------------------------------------------


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


@dataclass(frozen=True)
class ExploreQuery:
    """The explore page's form, as typed: kept to refill the form and to page."""

    tags: tuple[str, ...] = ()
    objects: tuple[str, ...] = ()
    text: str = ""
    faces: str = ""
    monochrome: str = ""
    duplicates: str = ""
    after: str = ""
    before: str = ""
    asset: str = ""
    page: int = 1

    @classmethod
    def parse(cls, params: Sequence[tuple[str, str]]) -> ExploreQuery:
        single = {k: v.strip() for k, v in params if k not in ("tag", "object")}
        page = single.get("page", "1")
        return cls(
            tags=tuple(dict.fromkeys(v.strip() for k, v in params if k == "tag" and v.strip())),
            objects=tuple(dict.fromkeys(v.strip() for k, v in params if k == "object" and v.strip())),
            text=single.get("text", "")[:200],
            faces=_choice(single.get("faces")),
            monochrome=_choice(single.get("monochrome")),
            duplicates=_choice(single.get("duplicates")),
            after=single.get("after", ""),
            before=single.get("before", ""),
            asset=single.get("asset", ""),
            page=max(1, int(page)) if page.isdigit() else 1,
        )

    def filters(self) -> Filters:
        """The API's filters for what they cover (FilterError names any mistake)."""
        pairs = [("tag", t) for t in self.tags] + [("object", o) for o in self.objects]
        for name, value in (
            ("has_faces", self.faces),
            ("monochrome", self.monochrome),
            ("after", self.after),
            ("before", self.before),
            ("asset", self.asset),
        ):
            if value:
                pairs.append((name, {"yes": "true", "no": "false"}.get(value, value)))
        return Filters.from_pairs(pairs)

    def params(self, **changes: Any) -> str:
        """This query as a URL query string, with `changes` (a page number) applied."""
        values = {**self.__dict__, **changes}
        pairs = [("tag", t) for t in values["tags"]] + [("object", o) for o in values["objects"]]
        for name in ("text", "faces", "monochrome", "duplicates", "after", "before", "asset"):
            if values[name]:
                pairs.append((name, values[name]))
        if values["page"] > 1:
            pairs.append(("page", str(values["page"])))
        return urlencode(pairs)

    def active(self) -> bool:
        return self.params(page=1) != ""


def _choice(value: str | None) -> str:
    return value if value in ("yes", "no") else ""


# -- the data behind the pages ---------------------------------------------------------------------


class Dashboard:
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

    # tables, once per snapshot

    def _table_at(self, state: EngineState, name: str, columns: tuple[str, ...]) -> pa.Table:
        snapshot = state.tables.get(name, (None, 0))[0]
        return self.memo.get(name, snapshot, lambda: _read_at(self.catalog, name, columns, snapshot))

    def assets(self, state: EngineState) -> pa.Table:
        return self._table_at(state, "assets", ASSET_COLUMNS)

    def remasters(self, state: EngineState) -> pa.Table:
        return self._table_at(state, "remasters", REMASTER_COLUMNS)

    def audits(self) -> tuple[int | None, pa.Table]:
        """The audits table and its snapshot (not part of the engine's state: the audit job appends)."""
        snapshot = table(self.catalog, "audits").current_snapshot()
        snapshot_id = snapshot.snapshot_id if snapshot else None
        rows = self.memo.get(
            "audits", snapshot_id, lambda: _read_at(self.catalog, "audits", ("*",), snapshot_id)
        )
        return snapshot_id, rows

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
                row_filter=EqualTo("kind", "text"),
                snapshot_id=snapshot,
            )
            shots = np.fromiter((view.row_of.get(s, -1) for s in rows["shot_id"].to_pylist()), np.int64)
            labels = np.asarray([str(v) for v in rows["label"].to_pylist()], dtype=object)
            names, label_of = np.unique(labels, return_inverse=True) if len(labels) else ([], labels)
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

    # pages

    def overview(self) -> dict[str, Any]:
        state = self.engine.state
        view = state.view
        assets = self.assets(state)
        with duckdb.connect() as sql:
            sql.register("assets", assets)
            by_status = sql.execute(
                "SELECT status, count(*) AS assets, sum(duration_s) AS seconds "
                "FROM assets GROUP BY status ORDER BY assets DESC, status"
            ).fetchall()
            audited_runs = set(pc.unique(self.audits()[1]["run_id"]).to_pylist())
            sql.register("audited", pa.table({"run_id": pa.array(sorted(audited_runs), pa.string())}))
            ok_assets, audited = sql.execute(
                "SELECT count(*), count(*) FILTER (WHERE run_id IN (SELECT run_id FROM audited)) "
                "FROM assets WHERE status = 'ok'"
            ).fetchall()[0]
        statuses = [{"status": s, "assets": n, "seconds": secs} for s, n, secs in by_status]
        seconds = sum(s["seconds"] or 0.0 for s in statuses if s["status"] == "ok")
        remasters = self.remasters(state)
        remastered = len(pc.unique(remasters.filter(pc.equal(remasters["status"], "ok"))["asset_id"]))
        visual = state.spaces.get("visual")
        coverage = [
            _share("segmented", "assets with shots", _segmented(view), assets.num_rows),
            _share("remastered", "catalogued assets with a master or access copy", remastered, ok_assets),
            _share("described", "shots with a caption or tags", int(self._described(view).sum()), view.size),
            _share(
                "indexed",
                "shots in the visual search index",
                int((visual.positions >= 0).sum()) if visual is not None else 0,
                view.size,
            ),
            _share("audited", "catalogued assets whose run was audited", int(audited), ok_assets),
        ]
        runs = [run_row(r) for r in self.store.runs(limit=RUNS_SHOWN)]
        finished = next((r for r in runs if r["status"] != "running"), None)
        return {
            "assets": assets.num_rows,
            "shots": view.size,
            "seconds": seconds,
            "statuses": statuses,
            "coverage": coverage,
            "runs": self.run_count(),
            "running": [self._with_progress(r) for r in runs if r["status"] == "running"],
            "last": self.changes(finished, assets) if finished else None,
            "charts": {
                "statuses": _bar_chart(
                    [s["status"] for s in statuses],
                    [s["assets"] for s in statuses],
                    "assets",
                    colour_by_status=True,
                ),
                "coverage": _coverage_chart(coverage),
            },
        }

    def _described(self, view: CatalogView) -> np.ndarray:
        def described() -> np.ndarray:
            keep = np.fromiter((c is not None for c in view.captions), bool, view.size)
            for labels in (view.tag_rows, view.object_rows):
                if labels:
                    keep[np.concatenate(list(labels.values()))] = True
            return keep

        return self.memo.get("described", view.key, described)

    def changes(self, run: dict[str, Any], assets: pa.Table) -> dict[str, Any]:
        """What a run changed: rows its commits added and removed per table, the assets it wrote."""

        def tables() -> list[dict[str, Any]]:
            found = []
            for name in RUN_TABLES:
                added = deleted = 0
                for snapshot in table(self.catalog, name).snapshots():
                    summary = snapshot.summary
                    if summary is not None and summary.get("archivist.run-id") == run["run_id"]:
                        added += int(summary.get("added-records", 0) or 0)
                        deleted += int(summary.get("deleted-records", 0) or 0)
                if added or deleted:
                    found.append({"table": name, "added": added, "deleted": deleted})
            return found

        key = (run["run_id"], self.engine.state.view.key)
        mine = assets.filter(pc.equal(assets["run_id"], run["run_id"]))
        written = [
            {"name": posixpath.basename(r["uri"]), **r}
            for r in mine.select(["asset_id", "uri", "status", "error"]).to_pylist()
        ]
        return {
            "run": run,
            "tables": self.memo.get("changes", key, tables),
            "assets": sorted(written, key=lambda r: (r["status"] != "failed", r["name"])),
        }

    def run_count(self) -> int:
        with Session(self.store.engine) as session:
            return int(session.scalar(select(func.count()).select_from(Run)) or 0)

    def runs(self, limit: int) -> dict[str, Any]:
        runs = [run_row(r) for r in self.store.runs(limit=limit)]
        charted = [r for r in reversed(runs[:RUNS_CHARTED])]
        return {
            "runs": [self._with_progress(r) if r["status"] == "running" else r for r in runs],
            "limit": limit,
            "more": len(runs) == limit,
            "charts": {"stages": _stage_chart(charted), "throughput": _throughput_chart(charted)}
            if charted
            else {},
        }

    def run(self, run_id: str) -> dict[str, Any] | None:
        found = self.store.run(run_id)
        if found is None:
            return None
        row = run_row(found)
        failed = (found.summary or {}).get("failed")
        if failed is None:
            with Session(self.store.engine) as session:
                failed = [
                    {"uri": uri, "error": error}
                    for uri, error in session.execute(
                        select(AssetState.uri, AssetState.error).where(
                            AssetState.run_id == run_id, AssetState.status == "failed"
                        )
                    )
                ]
        row["failed"] = failed
        if row["status"] == "running":
            row = self._with_progress(row)
        row["charts"] = {"stages": _stage_seconds_chart(row)} if row["stages"] else {}
        return row

    def progress(self, run_id: str) -> dict[str, Any] | None:
        found = self.store.run(run_id)
        if found is None:
            return None
        row = self._with_progress(run_row(found)) if found.status == "running" else run_row(found)
        return {
            "run_id": run_id,
            "status": row["status"],
            "seconds": row["seconds"],
            "staged": row.get("staged"),
            "stages": row["stages"],
        }

    def _with_progress(self, run: dict[str, Any]) -> dict[str, Any]:
        """A running job's progress: the assets it has staged so far (its stages come as they end)."""
        with Session(self.store.engine) as session:
            staged = session.scalar(
                select(func.count())
                .select_from(AssetState)
                .where(AssetState.run_id == run["run_id"], AssetState.status == "staged")
            )
        found = next((s["rows"] for s in run["stages"] if s["stage"] == "fingerprint"), None)
        return {**run, "staged": int(staged or 0), "found": found}

    def explore(self, query: ExploreQuery) -> dict[str, Any]:
        state = self.engine.state
        view = state.view
        filters = query.filters()
        keep = view.mask(filters)
        keep = np.ones(view.size, bool) if keep is None else keep
        if query.text:
            keep &= self.screen_text(state).matching(query.text, view.size)
        if query.duplicates:
            keep &= (view.group_size > 1) == (query.duplicates == "yes")
        order = self.explore_order(view)
        rows = order[keep[order]]
        pages = max(1, math.ceil(len(rows) / PAGE_SIZE))
        page = min(query.page, pages)
        shown = rows[(page - 1) * PAGE_SIZE : page * PAGE_SIZE]
        return {
            "query": query,
            "total": len(rows),
            "catalog_shots": view.size,
            "page": page,
            "pages": pages,
            "shots": [shot_card(view, int(r)) for r in shown],
            "facets": self.facets(view),
            "notes": view.notes(filters),
            "asset_name": posixpath.basename(view.asset_uris[view.asset_row[query.asset]])
            if query.asset in view.asset_row
            else None,
        }

    def shot(self, shot_id: str) -> dict[str, Any]:
        state = self.engine.state
        view = state.view
        row = state.row(shot_id)
        detail = view.shot_detail(row)
        asset_id = detail["asset_id"]
        asset = self._asset(state, asset_id) if asset_id else None
        start, end = detail["start_s"], detail["end_s"]
        copies = np.flatnonzero(view.group == view.group[row])
        return {
            **detail,
            "name": posixpath.basename(detail["uri"] or "") or None,
            "thumbnail_url": _keyframe_url(view, row),
            "asset": asset,
            "source_url": f"{PREFIX}/media/source/{asset_id}" if asset and _playable(asset) else None,
            "remaster_url": f"{PREFIX}/media/video/{asset_id}" if asset_id in view.access_copies else None,
            "remasters": [r for r in self.remasters(state).to_pylist() if r["asset_id"] == asset_id],
            "screen_text": self.screen_text(state).of_row(row),
            "transcript": self._transcript(asset_id, start, end) if asset_id else [],
            "duplicates": [shot_card(view, int(r)) for r in copies if r != row][:NEAR_DUPLICATES],
            "has_visual_index": "visual" in state.spaces,
        }

    def _asset(self, state: EngineState, asset_id: str) -> dict[str, Any] | None:
        assets = self.assets(state)
        found = assets.filter(pc.equal(assets["asset_id"], asset_id)).to_pylist()
        return {**found[0], "name": posixpath.basename(found[0]["uri"])} if found else None

    def _transcript(self, asset_id: str, start: float, end: float) -> list[dict[str, Any]]:
        """The asset's speech segments that overlap the shot."""
        rows = read(
            self.catalog,
            "transcripts",
            columns=("start_s", "end_s", "text", "language"),
            row_filter=EqualTo("asset_id", asset_id),
        ).to_pylist()
        return sorted(
            (r for r in rows if (r["end_s"] or 0) > start and (r["start_s"] or 0) < end and r["text"]),
            key=lambda r: r["start_s"],
        )

    def source_uri(self, asset_id: str) -> str:
        state = self.engine.state
        asset = self._asset(state, asset_id)
        if asset is None or asset["status"] != "ok":
            raise MediaNotFoundError(f"asset {asset_id[:80]!r} is not a catalogued asset")
        return asset["uri"]

    def users(self, state: EngineState) -> list[tuple[str, int]]:
        """Users with events, most active first: whom "for you" can be asked for."""

        def load() -> list[tuple[str, int]]:
            events = _read_at(self.catalog, "events", ("user_id",), state.tables.get("events", (None, 0))[0])
            with duckdb.connect() as sql:
                sql.register("events", events)
                return sql.execute(
                    "SELECT user_id, count(*) AS n FROM events "
                    "GROUP BY user_id ORDER BY n DESC, user_id LIMIT 200"
                ).fetchall()

        return self.memo.get("users", state.tables.get("events", (None, 0))[0], load)

    def audit_page(self, run_id: str | None) -> dict[str, Any]:
        _, audits = self.audits()
        with duckdb.connect() as sql:
            sql.register("audits", audits)
            done = sql.execute(
                "SELECT run_id, audit_id, max(audited_at) AS audited, count(*) AS checks, "
                "count(*) FILTER (WHERE flagged) AS flagged FROM audits "
                "GROUP BY run_id, audit_id ORDER BY audited DESC"
            ).fetchall()
        latest: dict[str, tuple[str, dt.datetime, int, int]] = {}
        for run, audit_id, at, checks, flagged in done:
            latest.setdefault(run, (audit_id, at, checks, flagged))
        choices = [
            {"run_id": r, "audit_id": a, "at": at, "checks": c, "flagged": f}
            for r, (a, at, c, f) in latest.items()
        ]
        chosen = next((c for c in choices if c["run_id"] == run_id), choices[0] if choices else None)
        if chosen is None:
            return {"choices": [], "chosen": None, "missing": run_id}
        rows = [
            {**r, "detail": _json(r["detail"]), "evidence_url": _evidence_url(r["evidence_uri"])}
            for r in audits.filter(pc.equal(audits["audit_id"], chosen["audit_id"])).to_pylist()
        ]
        bias = [r for r in rows if r["audit"] == "bias"]
        shares = [
            {**r, "label": r["detail"].get("group")}
            for r in bias
            if r["metric"] in ("representation_share", "exposure_share")
        ]
        parity = [
            {**r, "label": f"{r['detail'].get('group')} · {r['metric'].replace('_', ' ')}"}
            for r in bias
            if r["metric"] in ("detection_rate", "gender_agreement")
        ]
        concentration = [
            {**r, "label": f"{r['subject']} · {r['metric'].removeprefix('exposure_')}"}
            for r in bias
            if r["metric"] in ("exposure_gini", "exposure_coverage")
        ]
        groups: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
        for r in shares:
            key = (r["metric"], r["detail"].get("source", ""), r["detail"].get("attribute", r["subject"]))
            groups.setdefault(key, []).append(r)
        return {
            "choices": choices,
            "chosen": chosen,
            "missing": run_id if run_id and run_id != chosen["run_id"] else None,
            "counts": _audit_counts(rows),
            "share_charts": [
                {
                    "title": _share_title(*name),
                    "rows": members,
                    "chart": _interval_chart(members, reference=True),
                }
                for name, members in groups.items()
            ],
            "parity": parity,
            "parity_chart": _interval_chart(parity) if parity else None,
            "concentration": concentration,
            "concentration_chart": _interval_chart(concentration) if concentration else None,
            "notes": [r for r in bias if r["value"] is None],
            "faces": [r for r in rows if r["audit"] in ("identity_drift", "manipulation")],
            "provenance": [r for r in rows if r["audit"] == "provenance"],
            "others": [
                r for r in rows if r["audit"] not in ("bias", "identity_drift", "manipulation", "provenance")
            ],
            "report_url": f"{PREFIX}/audits/{quote(chosen['run_id'])}/report",
        }

    def evidence_uri(self, key: str) -> str:
        """The evidence frame a key names; keys are hashes of the catalog's URIs, never paths."""
        snapshot, audits = self.audits()
        uris = self.memo.get(
            "evidence",
            snapshot,
            lambda: {_evidence_key(u): u for u in audits["evidence_uri"].to_pylist() if u},
        )
        if key not in uris:
            raise MediaNotFoundError("no audit names that evidence")
        return uris[key]

    def report_uri(self, run_id: str) -> str:
        if run_id not in set(pc.unique(self.audits()[1]["run_id"]).to_pylist()):
            raise MediaNotFoundError(f"run {run_id[:80]!r} has not been audited: archivist audit RUN_ID")
        return self.settings.location("reports", run_id, "audit.html")


# -- rows for templates ----------------------------------------------------------------------------


def run_row(run: Run) -> dict[str, Any]:
    """A run as the pages show it: times in UTC, per-stage throughput, the summary's counts."""
    summary = run.summary or {}
    started = _utc(run.started_at)
    ended = _utc(run.finished_at) if run.finished_at else None
    seconds = ((ended or dt.datetime.now(dt.UTC)) - started).total_seconds()
    rank = {name: i for i, name in enumerate(STAGE_ORDER)}
    stages = [
        {
            "stage": s.step,
            "rows": s.rows,
            "failures": s.failures,
            "seconds": s.seconds,
            "rate": s.rows / s.seconds if s.seconds >= 0.01 else None,
        }
        for s in sorted(run.steps, key=lambda s: (rank.get(s.step, len(rank)), s.step))
    ]
    assets = summary.get("assets", {})
    shots = summary.get("shots")
    return {
        "run_id": run.run_id,
        "job": run.job,
        "status": run.status,
        "error": run.error,
        "pipeline_version": run.pipeline_version,
        "started_at": started,
        "finished_at": ended,
        "seconds": seconds,
        "assets_ok": assets.get("ok"),
        "assets_failed": assets.get("failed"),
        "assets_skipped": assets.get("skipped"),
        "shots": shots,
        "shots_per_s": shots / seconds if shots and seconds > 0 else None,
        "stages": stages,
        "failures": sum(s["failures"] for s in stages),
    }


def shot_card(view: CatalogView, row: int) -> dict[str, Any]:
    asset = int(view.shot_asset[row])
    return {
        "shot_id": view.shot_ids[row],
        "caption": view.captions[row],
        "start_s": float(view.start_s[row]),
        "end_s": float(view.end_s[row]),
        "asset": posixpath.basename(view.asset_uris[asset]) if asset >= 0 else None,
        "thumbnail_url": _keyframe_url(view, row),
        "monochrome": bool(view.monochrome[row]),
        "faces": int(view.face_count[row]),
        "copies": int(view.group_size[row]) - 1,
    }


def hit_card(engine: QueryEngine, hit: Any) -> dict[str, Any]:
    view = engine.state.view
    row = view.row_of.get(hit.shot_id)
    card = shot_card(view, row) if row is not None else {"shot_id": hit.shot_id, "caption": hit.caption}
    return {**card, "score": hit.score, "copies": len(hit.duplicates)}


def _keyframe_url(view: CatalogView, row: int) -> str | None:
    return f"{PREFIX}/media/keyframes/{view.shot_ids[row]}" if view.keyframe_uris[row] else None


def _segmented(view: CatalogView) -> int:
    return len(np.unique(view.shot_asset[view.shot_asset >= 0]))


def _share(stage: str, meaning: str, done: int, total: int) -> dict[str, Any]:
    return {
        "stage": stage,
        "meaning": meaning,
        "done": done,
        "total": total,
        "share": done / total if total else 0.0,
    }


def _playable(asset: Mapping[str, Any]) -> bool:
    suffix = posixpath.splitext(asset["uri"])[1].lower()
    return asset["status"] == "ok" and asset["video_codec"] in PLAYABLE_CODECS and suffix in PLAYABLE_SUFFIXES


def _status_of(error: Exception) -> int:
    """The API's status for each error a search can meet, so a page and the API answer alike."""
    for kind, status in (
        (ImageTooLargeError, 413),
        (QueryImageError, 415),
        (UnknownShotError, 404),
        (UnknownUserError, 404),
        (IndexMissingError, 503),
    ):
        if isinstance(error, kind):
            return status
    return 400


def _evidence_key(uri: str) -> str:
    return hashlib.sha256(uri.encode()).hexdigest()[:24]


def _evidence_url(uri: str | None) -> str | None:
    return f"{PREFIX}/media/evidence/{_evidence_key(uri)}" if uri else None


def _audit_counts(rows: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    counts: dict[str, dict[str, Any]] = {}
    for r in rows:
        entry = counts.setdefault(r["audit"], {"audit": r["audit"], "checks": 0, "flagged": 0})
        entry["checks"] += 1
        entry["flagged"] += int(bool(r["flagged"]))
    return list(counts.values())


def _share_title(metric: str, source: str, attribute: str) -> str:
    where = "in the catalog" if metric == "representation_share" else f"in {source} results (rank-weighted)"
    return f"{attribute.replace('_', ' ')}: share of faces {where}"


def _json(text: str | None) -> dict[str, Any]:
    try:
        value = json.loads(text) if text else {}
    except ValueError:
        return {"text": text}
    return value if isinstance(value, dict) else {"value": value}


def _read_at(catalog: SqlCatalog, name: str, columns: tuple[str, ...], snapshot_id: int | None) -> pa.Table:
    if snapshot_id is None:
        schema = table(catalog, name).schema().as_arrow()
        empty = pa.Table.from_pylist([], schema=schema)
        return empty if columns == ("*",) else empty.select(list(columns))
    return read(catalog, name, columns=columns, snapshot_id=snapshot_id)


def _utc(when: dt.datetime) -> dt.datetime:
    """SQLite hands back naive datetimes for timezone-aware columns; they were written in UTC."""
    return when if when.tzinfo else when.replace(tzinfo=dt.UTC)


# -- charts (Plotly figure specs, drawn by the page's script) --------------------------------------

STATUS_COLOURS = {"ok": "#2e7d32", "failed": "#c62828", "running": "#1565c0", "succeeded": "#2e7d32"}
LAYOUT = {
    "margin": {"l": 50, "r": 20, "t": 30, "b": 40},
    "height": 280,
    "font": {"family": "system-ui, sans-serif", "size": 12},
    "paper_bgcolor": "rgba(0,0,0,0)",
    "plot_bgcolor": "rgba(0,0,0,0)",
}


def _bar_chart(
    labels: Sequence[str], values: Sequence[float], axis: str, *, colour_by_status: bool = False
) -> dict[str, Any]:
    colours = [STATUS_COLOURS.get(label, "#607d8b") for label in labels] if colour_by_status else "#3f51b5"
    return {
        "data": [{"type": "bar", "x": list(labels), "y": list(values), "marker": {"color": colours}}],
        "layout": {**LAYOUT, "yaxis": {"title": {"text": axis}}},
    }


def _coverage_chart(coverage: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    stages = [c["stage"] for c in coverage][::-1]
    return {
        "data": [
            {
                "type": "bar",
                "orientation": "h",
                "y": stages,
                "x": [round(100 * c["share"], 1) for c in coverage][::-1],
                "text": [f"{c['done']:,} of {c['total']:,}" for c in coverage][::-1],
                "textposition": "auto",
                "marker": {"color": "#3f51b5"},
            }
        ],
        "layout": {
            **LAYOUT,
            "margin": {**LAYOUT["margin"], "l": 90},
            "xaxis": {"range": [0, 100], "title": {"text": "%"}},
        },
    }


def _stage_chart(runs: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Seconds per stage, stacked, per run (oldest left): where each run's time went."""
    names = [r["run_id"] for r in runs]
    stages = sorted(
        {s["stage"] for r in runs for s in r["stages"]}, key=lambda s: (STAGE_ORDER + (s,)).index(s)
    )
    traces = []
    for stage in stages:
        seconds = [next((s["seconds"] for s in r["stages"] if s["stage"] == stage), 0.0) for r in runs]
        if any(seconds):
            traces.append({"type": "bar", "name": stage, "x": names, "y": [round(v, 3) for v in seconds]})
    return {
        "data": traces,
        "layout": {
            **LAYOUT,
            "height": 320,
            "barmode": "stack",
            "yaxis": {"title": {"text": "seconds"}},
            "xaxis": {"type": "category", "showticklabels": False, "title": {"text": "runs, oldest first"}},
        },
    }


def _throughput_chart(runs: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    return {
        "data": [
            {
                "type": "scatter",
                "mode": "lines+markers",
                "name": "shots per second",
                "x": [r["run_id"] for r in runs],
                "y": [round(r["shots_per_s"], 3) if r["shots_per_s"] else 0 for r in runs],
            },
            {
                "type": "bar",
                "name": "failures",
                "x": [r["run_id"] for r in runs],
                "y": [(r["assets_failed"] or 0) + r["failures"] for r in runs],
                "yaxis": "y2",
                "marker": {"color": "#c62828"},
                "opacity": 0.5,
            },
        ],
        "layout": {
            **LAYOUT,
            "yaxis": {"title": {"text": "shots / s"}},
            "yaxis2": {
                "title": {"text": "failures"},
                "overlaying": "y",
                "side": "right",
                "rangemode": "tozero",
            },
            "xaxis": {"type": "category", "showticklabels": False, "title": {"text": "runs, oldest first"}},
            "legend": {"orientation": "h"},
        },
    }


def _stage_seconds_chart(run: Mapping[str, Any]) -> dict[str, Any]:
    stages = [s for s in run["stages"] if s["seconds"] > 0]
    return {
        "data": [
            {
                "type": "bar",
                "orientation": "h",
                "y": [s["stage"] for s in stages][::-1],
                "x": [round(s["seconds"], 3) for s in stages][::-1],
                "marker": {"color": "#3f51b5"},
            }
        ],
        "layout": {
            **LAYOUT,
            "height": max(200, 24 * len(stages) + 60),
            "margin": {**LAYOUT["margin"], "l": 90},
            "xaxis": {"title": {"text": "seconds"}},
        },
    }


def _interval_chart(rows: Sequence[Mapping[str, Any]], *, reference: bool = False) -> dict[str, Any]:
    """Values with their confidence intervals as error bars, and beside each the mark it is judged
    by: the reference share it is held against, or the value above which it is flagged."""
    labels = [r["label"] or r["subject"] for r in rows]
    values = [r["value"] or 0.0 for r in rows]
    low = [max(0.0, (r["value"] or 0.0) - r["ci_low"]) if r["ci_low"] is not None else 0.0 for r in rows]
    high = [max(0.0, r["ci_high"] - (r["value"] or 0.0)) if r["ci_high"] is not None else 0.0 for r in rows]
    data: list[dict[str, Any]] = [
        {
            "type": "bar",
            "name": "estimate",
            "x": labels,
            "y": values,
            "marker": {"color": ["#c62828" if r["flagged"] else "#3f51b5" for r in rows]},
            "error_y": {
                "type": "data",
                "symmetric": False,
                "array": high,
                "arrayminus": low,
                "color": "#222",
            },
        }
    ]
    name, marks = (
        ("reference", [r["detail"].get("reference") for r in rows])
        if reference
        else ("flagged above", [r["threshold"] for r in rows])
    )
    if any(v is not None for v in marks):
        data.append(
            {
                "type": "scatter",
                "mode": "markers",
                "name": name,
                "x": labels,
                "y": marks,
                "marker": {"symbol": "line-ew-open", "size": 28, "color": "#ff8f00", "line": {"width": 3}},
            }
        )
    return {
        "data": data,
        "layout": {
            **LAYOUT,
            "yaxis": {"rangemode": "tozero"},
            "legend": {"orientation": "h"},
            "showlegend": len(data) > 1,
        },
    }


# -- media ------------------------------------------------------------------------------------------


def stream_source(settings: Settings, uri: str, request: Request) -> Response:
    """An asset's source file, whole or the byte range asked for. Unlike the warehouse's media, a
    source lives wherever the archive keeps it; it is served only because the catalog names it as
    the asset's URI, which the client cannot choose."""
    media_type = mimetypes.guess_type(uri)[0] or "application/octet-stream"
    return ranged_file(
        settings,
        uri,
        request,
        media_type,
        missing="the asset's source file is gone from where the catalog says it was",
    )


@dataclass(frozen=True)
class StaticFile:
    """A file the pages load: its URL carries a hash of its content, so browsers may keep it for good."""

    path: Path
    url: str


def static_files() -> dict[str, StaticFile]:
    found = {}
    for name, path in STATIC_FILES.items():
        digest = hashlib.sha256(path.read_bytes()).hexdigest()[:12]
        found[name] = StaticFile(path, f"{PREFIX}/static/{name}?v={digest}")
    plotly = plotly_path()
    if plotly is not None:
        version = importlib.metadata.version("plotly")
        found["plotly.min.js"] = StaticFile(plotly, f"{PREFIX}/static/plotly.min.js?v={version}")
    return found


def plotly_path() -> Path | None:
    """plotly.js as the Python package ships it (found without importing the package)."""
    spec = importlib.util.find_spec("plotly")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(spec.submodule_search_locations[0]) / "package_data" / "plotly.min.js"
    return path if path.is_file() else None


class Gzipped:
    """The large script compressed once, in memory, for browsers that take gzip (4.8 MB → 1.4 MB)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._data: dict[Path, bytes] = {}

    def __call__(self, path: Path) -> bytes:
        with self._lock:
            if path not in self._data:
                self._data[path] = gzip.compress(path.read_bytes(), compresslevel=6, mtime=0)
            return self._data[path]


# -- the router -------------------------------------------------------------------------------------


def dashboard_router(settings: Settings, engine: QueryEngine, access: Access) -> APIRouter:
    """The dashboard's pages and media, for `create_app` to include."""
    board = Dashboard(settings, engine)
    gate = Gate(access)
    files = static_files()
    gzipped = Gzipped()
    router = APIRouter(include_in_schema=False)
    pages = [Depends(gate.page)]
    media = [Depends(gate.media)]

    def render(request: Request, name: str, context: dict[str, Any], status: int = 200) -> Response:
        context = {
            "prefix": PREFIX,
            "static": {name: file.url for name, file in files.items()},
            **context,
        }
        return TEMPLATES.TemplateResponse(
            request, name, context, status_code=status, headers={"content-security-policy": CSP}
        )

    def problem(request: Request, status: int, title: str, message: str) -> Response:
        return render(request, "problem.html", {"page": "", "title": title, "message": message}, status)

    @router.get("/")
    def root() -> RedirectResponse:
        return RedirectResponse(PREFIX, status_code=307)

    @router.get(PREFIX, dependencies=pages)
    def overview(request: Request) -> Response:
        return render(request, "overview.html", {"page": "overview", **board.overview()})

    @router.get(f"{PREFIX}/runs", dependencies=pages)
    def runs(request: Request, limit: int = RUNS_SHOWN) -> Response:
        return render(request, "runs.html", {"page": "runs", **board.runs(min(max(limit, 1), 1000))})

    @router.get(f"{PREFIX}/runs/{{run_id}}", dependencies=pages)
    def run(request: Request, run_id: str) -> Response:
        found = board.run(run_id)
        if found is None:
            return problem(
                request, 404, "No such run", f"no run {run_id[:80]!r}: see the runs page for run ids"
            )
        return render(request, "run.html", {"page": "runs", "run": found})

    @router.get(f"{PREFIX}/runs/{{run_id}}/progress", dependencies=media)
    def progress(run_id: str) -> Response:
        found = board.progress(run_id)
        if found is None:
            raise HTTPException(404, f"no run {run_id[:80]!r}")
        return Response(json.dumps(found, default=str), media_type="application/json")

    @router.get(f"{PREFIX}/explore", dependencies=pages)
    def explore(request: Request) -> Response:
        query = ExploreQuery.parse(request.query_params.multi_items())
        try:
            found = board.explore(query)
        except QueryError as exc:
            state = engine.state
            found = {
                "query": query,
                "error": str(exc),
                "facets": board.facets(state.view),
                "shots": [],
                "total": 0,
            }
            return render(request, "explore.html", {"page": "explore", **found}, 400)
        return render(request, "explore.html", {"page": "explore", **found})

    @router.get(f"{PREFIX}/shots/{{shot_id}}", dependencies=pages)
    def shot(request: Request, shot_id: str) -> Response:
        try:
            found = board.shot(shot_id)
        except UnknownShotError as exc:
            return problem(request, 404, "No such shot", str(exc))
        return render(request, "shot.html", {"page": "explore", "shot": found})

    def search_page(
        request: Request, answer: Callable[[], Result] | None, context: dict[str, Any]
    ) -> Response:
        state = engine.state
        context = {"page": "search", "users": board.users(state), "q": "", "like": "", "user": "", **context}
        if answer is None:
            return render(request, "search.html", context)
        try:
            result = answer()
        except (QueryError, QueryImageError, UnknownShotError, UnknownUserError, IndexMissingError) as exc:
            return render(request, "search.html", {**context, "error": str(exc)}, _status_of(exc))
        return render(
            request,
            "search.html",
            {**context, "hits": [hit_card(engine, h) for h in result.hits], "meta": result.meta},
        )

    @router.get(f"{PREFIX}/search", dependencies=pages)
    def search(request: Request, q: str = "", like: str = "", user: str = "") -> Response:
        q, like, user = q.strip(), like.strip(), user.strip()
        if q:
            return search_page(request, lambda: engine.by_text(q, top=RESULTS), {"q": q, "mode": "text"})
        if like:
            context = {"like": like, "mode": "like"}
            return search_page(request, lambda: more_like_this(engine, like, top=RESULTS), context)
        if user:
            return search_page(
                request, lambda: for_you(engine, user, top=RESULTS), {"user": user, "mode": "user"}
            )
        return search_page(request, None, {})

    @router.post(f"{PREFIX}/search", dependencies=pages)
    def search_image(request: Request, image: Annotated[UploadFile, File()]) -> Response:
        data = image.file.read()

        def answer() -> Result:
            if not data:
                raise QueryImageError("the uploaded image is empty: choose a JPEG, PNG or WebP picture")
            return engine.by_image(decode_query_image(data), top=RESULTS)

        return search_page(request, answer, {"mode": "image", "image_name": image.filename or "picture"})

    @router.get(f"{PREFIX}/audits", dependencies=pages)
    def audits(request: Request, run: str = "") -> Response:
        return render(request, "audits.html", {"page": "audits", **board.audit_page(run or None)})

    @router.get(f"{PREFIX}/audits/{{run_id}}/report", dependencies=media)
    def report(run_id: str, request: Request) -> Response:
        response = stream(settings, board.report_uri(run_id), request, "text/html")
        response.headers["content-security-policy"] = REPORT_CSP
        return response

    @router.get(f"{PREFIX}/media/keyframes/{{shot_id}}", dependencies=media)
    def keyframe(shot_id: str, request: Request) -> Response:
        return keyframe_response(settings, engine, shot_id, request)

    @router.get(f"{PREFIX}/media/video/{{asset_id}}", dependencies=media)
    def remaster(asset_id: str, request: Request) -> Response:
        uri = engine.state.view.access_copies.get(asset_id)
        if uri is None:
            raise MediaNotFoundError(
                f"asset {asset_id[:80]!r} has no access copy: the remaster stage makes one"
            )
        return stream(settings, uri, request, "video/mp4")

    @router.get(f"{PREFIX}/media/source/{{asset_id}}", dependencies=media)
    def source(asset_id: str, request: Request) -> Response:
        return stream_source(settings, board.source_uri(asset_id), request)

    @router.get(f"{PREFIX}/media/evidence/{{key}}", dependencies=media)
    def evidence(key: str, request: Request) -> Response:
        return stream(settings, board.evidence_uri(key), request, "image/jpeg")

    @router.get(f"{PREFIX}/static/{{name}}")
    def static(name: str, request: Request) -> Response:
        """Open to all (nothing in it is the archive's), and cached for good: URLs carry a version."""
        file = files.get(name)
        if file is None:
            if name == "plotly.min.js":
                raise MediaNotFoundError("the charting library is not installed: pip install plotly")
            raise MediaNotFoundError(f"no static file {name[:80]!r}")
        headers = {"cache-control": "public, max-age=31536000, immutable", "vary": "accept-encoding"}
        media_type = mimetypes.guess_type(name)[0] or "application/octet-stream"
        if file.path.stat().st_size > 1 << 20 and "gzip" in request.headers.get("accept-encoding", ""):
            body = gzipped(file.path)
            return Response(body, media_type=media_type, headers={**headers, "content-encoding": "gzip"})
        return FileResponse(file.path, media_type=media_type, headers=headers)

    @router.get(f"{PREFIX}/login")
    def login_form(request: Request, next: str = PREFIX) -> Response:
        if access.open_reads:
            return RedirectResponse(safe_next(next), status_code=303)
        return render(request, "login.html", {"page": "", "next": safe_next(next)})

    @router.post(f"{PREFIX}/login")
    def login(
        request: Request, token: Annotated[str, Form()], next: Annotated[str, Form()] = PREFIX
    ) -> Response:
        if access.open_reads:
            return RedirectResponse(safe_next(next), status_code=303)
        if not access.token or not hmac.compare_digest(token.encode(), access.token.encode()):
            context = {"page": "", "next": safe_next(next), "error": "that is not this service's token"}
            return render(request, "login.html", context, 403)
        response = RedirectResponse(safe_next(next), status_code=303)
        response.set_cookie(
            COOKIE,
            session_value(access.token),
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
            path=PREFIX,
        )
        return response

    return router
