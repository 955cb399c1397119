"""The explore grid and the shot page: the catalog's shots, filtered, paged, and one in detail."""

from __future__ import annotations

import math
import posixpath
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import numpy as np

from exports import webvtt
from exports.record import UnknownAssetError, load_records
from indexes.filters import Filters
from indexes.query import QueryEngine
from indexes.view import CatalogView
from serve.dashboard.data import DashboardData
from serve.dashboard.qc import qc_panel
from serve.dashboard.urls import access_copy_url, keyframe_url, source_url, track_url
from serve.media import MediaNotFoundError

PAGE_SIZE = 60
NEAR_DUPLICATES = 12
PLAYABLE_CODECS = {"h264", "vp8", "vp9", "av1"}
PLAYABLE_SUFFIXES = {".mp4", ".m4v", ".mov", ".webm"}
"""What Chromium, Firefox and Safari all play in a `<video>`; other sources show their keyframe."""


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


def explore_page(data: DashboardData, query: ExploreQuery) -> dict[str, Any]:
    """The shots the query keeps, newest catalogued first, one page of them as cards
    (QueryError from a filter that cannot be read)."""
    state = data.engine.state
    view = state.view
    filters = query.filters()
    keep = view.mask(filters)
    keep = np.ones(view.size, bool) if keep is None else keep
    if query.text:
        keep &= data.screen_text(state).matching(query.text, view.size)
    if query.duplicates:
        keep &= (view.group_size > 1) == (query.duplicates == "yes")
    order = data.explore_order(view)
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
        "facets": data.facets(view),
        "notes": view.notes(filters),
        "asset_name": posixpath.basename(view.asset_uris[view.asset_row[query.asset]])
        if query.asset in view.asset_row
        else None,
    }


def explore_error_page(data: DashboardData, query: ExploreQuery, error: Exception) -> dict[str, Any]:
    """The form refilled and the error said, with no shots."""
    facets = data.facets(data.engine.state.view)
    return {"query": query, "error": str(error), "facets": facets, "shots": [], "total": 0}


def shot_page(data: DashboardData, shot_id: str) -> dict[str, Any]:
    """A shot in detail: its asset, players, remasters, text, transcript and near-duplicates
    (UnknownShotError for a shot the catalog does not have)."""
    state = data.engine.state
    view = state.view
    row = state.row(shot_id)
    detail = view.shot_detail(row)
    asset_id = detail["asset_id"]
    asset = _named(data.asset(state, asset_id)) if asset_id else None
    start, end = detail["start_s"], detail["end_s"]
    copies = np.flatnonzero(view.group == view.group[row])
    speech = data.transcript(asset_id, -math.inf, math.inf) if asset_id else []
    return {
        **detail,
        "name": posixpath.basename(detail["uri"] or "") or None,
        "thumbnail_url": _keyframe_url(view, row),
        "further_keyframes": [
            keyframe_url(shot_id, k) for k in sorted(view.further_keyframes.get(row, {}))
        ],
        "asset": asset,
        "source_url": source_url(asset_id) if asset and _playable(asset) else None,
        "remaster_url": access_copy_url(asset_id) if asset_id in view.access_copies else None,
        "remasters": [r for r in data.remasters(state).to_pylist() if r["asset_id"] == asset_id],
        "screen_text": data.screen_text(state).of_row(row),
        "transcript": [s for s in speech if (s["end_s"] or 0) > start and (s["start_s"] or 0) < end],
        "tracks": tracks(asset_id, speech) if asset_id else [],
        "duplicates": [shot_card(view, int(r)) for r in copies if r != row][:NEAR_DUPLICATES],
        "has_visual_index": "visual" in state.spaces,
        "qc": qc_panel(data.qc_record(asset_id)) if asset_id else None,
    }


def labels(typed: str) -> tuple[str, ...]:
    """Tags as typed into the shot page's correction form: separated by commas."""
    return tuple(label.strip() for label in typed.split(",") if label.strip())


def tracks(asset_id: str, speech: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The `<track>`s of the asset's players: its shots' captions (shown by default), its
    transcript where speech was transcribed, and a chapter per shot (for the player's menu)."""

    def one(kind: str, sidecar: str, srclang: str, label: str, default: bool = False) -> dict[str, Any]:
        return {"kind": kind, "src": track_url(asset_id, sidecar), "srclang": srclang, "label": label,
                "default": default}  # fmt: skip

    found = [one("captions", "captions", "en", "Shot captions (machine-generated)", default=True)]
    if speech:
        language = next((s["language"] for s in speech if s.get("language")), None) or "und"
        found.append(one("captions", "transcript", language, "Transcript (machine-generated)"))
    return [*found, one("chapters", "chapters", "en", "Shots")]


def track(data: DashboardData, asset_id: str, kind: str) -> bytes:
    """An asset's WebVTT sidecar as `archivist export` writes it (MediaNotFoundError for an asset
    or a kind there is none of)."""
    if kind not in webvtt.KINDS:
        raise MediaNotFoundError(f"no track {kind[:40]!r}: the tracks are {', '.join(webvtt.KINDS)}")
    try:
        (record,) = load_records(data.catalog, [asset_id])
    except UnknownAssetError as exc:
        raise MediaNotFoundError(str(exc)) from None
    return webvtt.render(record, kind)


def source_uri(data: DashboardData, asset_id: str) -> str:
    """Where a catalogued asset's source file is (the catalog says; a client cannot choose)."""
    asset = data.asset(data.engine.state, asset_id)
    if asset is None or asset["status"] != "ok":
        raise MediaNotFoundError(f"asset {asset_id[:80]!r} is not a catalogued asset")
    return asset["uri"]


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
    """A search or recommendation hit as a card, with its score."""
    view = engine.state.view
    row = view.row_of.get(hit.shot_id)
    card = shot_card(view, row) if row is not None else {"shot_id": hit.shot_id, "caption": hit.caption}
    if row is not None and hit.keyframe_index and view.keyframe_uri(row, hit.keyframe_index):
        card["thumbnail_url"] = keyframe_url(hit.shot_id, hit.keyframe_index)  # the one that matched
    return {**card, "score": hit.score, "copies": len(hit.duplicates)}


def _keyframe_url(view: CatalogView, row: int) -> str | None:
    return keyframe_url(view.shot_ids[row]) if view.keyframe_uris[row] else None


def _named(asset: dict[str, Any] | None) -> dict[str, Any] | None:
    return {**asset, "name": posixpath.basename(asset["uri"])} if asset else None


def _playable(asset: Mapping[str, Any]) -> bool:
    suffix = posixpath.splitext(asset["uri"])[1].lower()
    return asset["status"] == "ok" and asset["video_codec"] in PLAYABLE_CODECS and suffix in PLAYABLE_SUFFIXES
