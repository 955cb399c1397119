"""The catalog columns queries filter on and answer with, held in memory per snapshot.

A query must not scan tables: a FAISS search takes a millisecond, an Iceberg
scan tens of them. So the few columns a hit needs (asset, times, caption,
keyframe, duplicate group) and the ones filters test (tags, objects, faces,
safety, monochrome, catalogue date) are read once, at the tables' current
snapshots, into arrays indexed by a shot's row here, and read again only when
a snapshot changes. At a few dozen bytes a shot plus its labels, a million
shots cost a few hundred MB.

Where the understanding stages' results live in the catalog: tags (of the
kinds in `catalog.schema.TAG_KINDS`) of kind 'object' are detected objects,
kind 'text' is text read on screen, every other kind (ImageNet, technical)
counts as a tag (`indexes.filters.NOT_TAG_FILTER_KINDS`); the unsafe-content score is
the shots' `nsfw_score`; faces are rows of the `faces` table; access copies
are `remasters` rows of kind 'access'.

Curators' corrections (`catalog.corrections`) are folded in as the view is read: a corrected
shot's caption is the curator's, its tags the machine's plus the added less the removed, so
hits, filters, facets and the shot pages all see them. The view is read again when the
corrections table's snapshot moves, like any other table's.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pyiceberg.catalog.sql import SqlCatalog

from catalog.corrections import TAG_ADDED, Effective, effective
from catalog.iceberg import read, table, visible
from catalog.people import PEOPLE_CORRECTION_COLUMNS, PEOPLE_TRACK_COLUMNS, Roster, normal_name
from catalog.versions import Version
from catalog.voices import VoiceRoster
from indexes.filters import NOT_TAG_FILTER_KINDS, OBJECT_FILTER_KIND, Filters

SAFE_BELOW = 0.2
"""open_nsfw's own guidance: below 0.2 safe (see actors.safety)."""

TABLE_COLUMNS: dict[str, tuple[str, ...]] = {
    "shots": ("shot_id", "asset_id", "start_s", "end_s", "keyframe_uri", "is_monochrome", "nsfw_score"),
    "keyframes": ("shot_id", "keyframe_index", "keyframe_uri"),
    "assets": ("asset_id", "uri", "processed_at"),
    "captions": ("shot_id", "caption"),
    "tags": ("shot_id", "kind", "label"),
    "faces": ("shot_id",),
    "dup_groups": ("shot_id", "dup_group", "group_size"),
    "remasters": ("asset_id", "kind", "output_uri", "status"),
    "corrections": ("correction_id", "shot_id", "field", "value", "before", "curator", "at", "note"),
    "face_tracks": PEOPLE_TRACK_COLUMNS,
    "people": ("person_id", "kind"),
    "people_corrections": PEOPLE_CORRECTION_COLUMNS,
    "speakers": ("asset_id", "speaker", "seconds", "turns"),
    "voices": ("asset_id", "speaker", "voice_id"),
}
"""What is read of each table; the view is reloaded when any of their snapshots moves."""


def table_snapshots(catalog: SqlCatalog, version: Version | None = None) -> dict[str, tuple[int | None, int]]:
    """(snapshot id, total rows) of every table the view reads, all at one catalog version
    (`version`, the latest when not given): cheap, metadata only."""
    found = {}
    for name in (*TABLE_COLUMNS, "events", "embeddings"):
        snapshot = visible(catalog, name, version)
        rows = int(snapshot.summary.get("total-records", "0")) if snapshot and snapshot.summary else 0
        found[name] = (snapshot.snapshot_id if snapshot else None, rows)
    return found


def view_key(tables: Mapping[str, tuple[int | None, int]]) -> tuple[int | None, ...]:
    """What a view was read at: the snapshot of each table it reads."""
    return tuple(tables[name][0] for name in TABLE_COLUMNS)


@dataclass(frozen=True)
class CatalogView:
    snapshots: Mapping[str, tuple[int | None, int]]
    shot_ids: list[str]
    row_of: Mapping[str, int]
    asset_ids: list[str]
    asset_uris: list[str]
    asset_row: Mapping[str, int]
    asset_catalogued: np.ndarray  # datetime64[us] per asset, NaT when unknown
    shot_asset: np.ndarray  # asset row per shot, -1 when the asset row is missing
    start_s: np.ndarray
    end_s: np.ndarray
    keyframe_uris: list[str | None]
    further_keyframes: Mapping[int, Mapping[int, str]]
    """row → {keyframe_index: URI} of a long take's keyframes besides its own (index 0)."""
    captions: list[str | None]
    monochrome: np.ndarray
    face_count: np.ndarray
    nsfw: np.ndarray  # NaN where no score
    group: np.ndarray  # duplicate-group number per shot; a shot with no copy is alone in its own
    group_names: list[str]  # `dup_group` per shot (its own id when alone)
    group_size: np.ndarray
    tag_rows: Mapping[str, np.ndarray]
    object_rows: Mapping[str, np.ndarray]
    access_copies: Mapping[str, str]
    corrections: Effective
    machine_captions: Mapping[int, str | None]
    """row → the machine's caption, of the shots whose caption a curator corrected."""
    people_rows: Mapping[str, np.ndarray] = field(default_factory=dict)
    """A curator's name of a person or a voice (`catalog.people.normal_name`) → the rows of the shots
    the person appears in and the voice speaks in (a shot whose time overlaps one of its turns);
    opted-out people and voices are not here (`Roster.visible`, `VoiceRoster.visible`)."""

    @property
    def size(self) -> int:
        return len(self.shot_ids)

    def keyframe_uri(self, row: int, keyframe: int = 0) -> str | None:
        """Where a keyframe of the shot at `row` is stored; None where it has no such keyframe."""
        return self.keyframe_uris[row] if keyframe == 0 else self.further_keyframes.get(row, {}).get(keyframe)

    @property
    def key(self) -> tuple[int | None, ...]:
        return view_key(self.snapshots)

    @classmethod
    def load(cls, catalog: SqlCatalog, snapshots: Mapping[str, tuple[int | None, int]]) -> CatalogView:
        """The view of the tables at these snapshots (from `table_snapshots`)."""
        tables = {
            name: _read(catalog, name, columns, snapshots[name][0]) for name, columns in TABLE_COLUMNS.items()
        }
        shots, assets = tables["shots"], tables["assets"]
        shot_ids = shots["shot_id"].to_pylist()
        n = len(shot_ids)
        ids = shots["shot_id"]

        asset_ids = assets["asset_id"].to_pylist()
        shot_asset = _positions(shots["asset_id"], assets["asset_id"])
        catalogued = assets["processed_at"].cast(pa.timestamp("us")).to_numpy(zero_copy_only=False)

        row_of = {shot: row for row, shot in enumerate(shot_ids)}
        captions: list[str | None] = [None] * n
        for row, caption in zip(
            _positions(tables["captions"]["shot_id"], ids),
            tables["captions"]["caption"].to_pylist(),
            strict=True,
        ):
            if row >= 0:
                captions[row] = caption
        corrections = effective(tables["corrections"])
        machine_captions: dict[int, str | None] = {}
        for shot, correction in corrections.captions.items():
            if shot in row_of:
                machine_captions[row_of[shot]] = captions[row_of[shot]]
                captions[row_of[shot]] = str(correction["value"])

        faces = _positions(tables["faces"]["shot_id"], ids)
        face_count = np.bincount(faces[faces >= 0], minlength=n).astype(np.int32)

        tags = tables["tags"]
        tag_row = _positions(tags["shot_id"], ids)
        kind = np.asarray(tags["kind"].to_pylist(), dtype=object)
        label = np.asarray(pc.utf8_lower(tags["label"]).to_pylist(), dtype=object)
        objects = (kind == OBJECT_FILTER_KIND) & (tag_row >= 0)
        others = ~np.isin(kind, NOT_TAG_FILTER_KINDS) & (tag_row >= 0)

        group_names = list(shot_ids)
        group_size = np.ones(n, np.int32)
        dups = tables["dup_groups"]
        for row, name, size in zip(
            _positions(dups["shot_id"], ids),
            dups["dup_group"].to_pylist(),
            dups["group_size"].to_pylist(),
            strict=True,
        ):
            if row >= 0:
                group_names[row] = name
                group_size[row] = size or 1
        group = np.unique(np.asarray(group_names, dtype=object), return_inverse=True)[1] if n else np.zeros(0)

        keyframes = tables["keyframes"]
        further: dict[int, dict[int, str]] = {}
        for row, index, uri in zip(
            _positions(keyframes["shot_id"], ids).tolist(),
            keyframes["keyframe_index"].to_pylist(),
            keyframes["keyframe_uri"].to_pylist(),
            strict=True,
        ):
            if row >= 0 and index and uri:
                further.setdefault(row, {})[index] = uri

        remasters = tables["remasters"].to_pylist()
        access = {
            r["asset_id"]: r["output_uri"]
            for r in remasters
            if r["kind"] == "access" and r["status"] == "ok" and r["output_uri"]
        }
        return cls(
            snapshots=dict(snapshots),
            shot_ids=shot_ids,
            row_of=row_of,
            asset_ids=asset_ids,
            asset_uris=assets["uri"].to_pylist(),
            asset_row={asset: row for row, asset in enumerate(asset_ids)},
            asset_catalogued=catalogued,
            shot_asset=shot_asset,
            start_s=_floats(shots["start_s"]),
            end_s=_floats(shots["end_s"]),
            keyframe_uris=shots["keyframe_uri"].to_pylist(),
            further_keyframes=further,
            captions=captions,
            monochrome=shots["is_monochrome"].fill_null(False).to_numpy(zero_copy_only=False).astype(bool),
            face_count=face_count,
            nsfw=shots["nsfw_score"].to_numpy(zero_copy_only=False).astype(np.float32),
            group=np.asarray(group, np.int64),
            group_names=group_names,
            group_size=group_size,
            tag_rows=_corrected(_inverted(label[others], tag_row[others]), corrections, row_of),
            object_rows=_inverted(label[objects], tag_row[objects]),
            access_copies=access,
            corrections=corrections,
            machine_captions=machine_captions,
            people_rows=_people_rows(tables, row_of),
        )

    def mask(self, filters: Filters) -> np.ndarray | None:
        """Which shots meet the filters; None when there are none to meet."""
        if not filters.active():
            return None
        keep = np.ones(self.size, bool)
        if filters.asset is not None:
            keep &= self.shot_asset == self.asset_row.get(filters.asset, -2)
        duration = self.end_s - self.start_s
        if filters.min_duration is not None:
            keep &= duration >= filters.min_duration
        if filters.max_duration is not None:
            keep &= duration <= filters.max_duration
        for labels, rows in ((filters.tags, self.tag_rows), (filters.objects, self.object_rows)):
            for label in labels:
                carries = np.zeros(self.size, bool)
                carries[rows.get(label, np.zeros(0, np.int64))] = True
                keep &= carries
        if filters.has_faces is not None:
            keep &= (self.face_count > 0) == filters.has_faces
        if filters.safe is not None:
            keep &= (self.nsfw < SAFE_BELOW) == filters.safe  # NaN compares False: unknown is not safe
        if filters.monochrome is not None:
            keep &= self.monochrome == filters.monochrome
        if filters.after is not None or filters.before is not None:
            when = np.full(self.size, np.datetime64("NaT"), "datetime64[us]")
            known = self.shot_asset >= 0
            when[known] = self.asset_catalogued[self.shot_asset[known]]
            if filters.after is not None:
                keep &= when >= _day(filters.after)
            if filters.before is not None:
                keep &= when < _day(filters.before)
        return keep

    def notes(self, filters: Filters) -> list[str]:
        """Why a filter may match nothing, said before a caller wonders."""
        notes = []
        if filters.asset is not None and filters.asset not in self.asset_row:
            notes.append(f"no asset {filters.asset} in the catalog")
        for name, labels, rows in (
            ("tag", filters.tags, self.tag_rows),
            ("object", filters.objects, self.object_rows),
        ):
            notes += [f"no shot carries {name} {label!r}" for label in labels if label not in rows]
        if filters.has_faces and not self.face_count.any():
            notes.append("no faces are in the catalog (has the faces stage run?)")
        if filters.safe is not None and np.isnan(self.nsfw).all():
            notes.append("no shot has a safety score (has the safety stage run?): none counts as safe")
        return notes

    def shot_detail(self, row: int) -> dict[str, Any]:
        asset = int(self.shot_asset[row])
        tags = sorted(label for label, rows in self.tag_rows.items() if _holds(rows, row))
        objects = sorted(label for label, rows in self.object_rows.items() if _holds(rows, row))
        return {
            "shot_id": self.shot_ids[row],
            "asset_id": self.asset_ids[asset] if asset >= 0 else None,
            "uri": self.asset_uris[asset] if asset >= 0 else None,
            "start_s": float(self.start_s[row]),
            "end_s": float(self.end_s[row]),
            "caption": self.captions[row],
            "tags": tags,
            "objects": objects,
            "faces": int(self.face_count[row]),
            "nsfw_score": None if np.isnan(self.nsfw[row]) else float(self.nsfw[row]),
            "monochrome": bool(self.monochrome[row]),
            "dup_group": self.group_names[row],
            "group_size": int(self.group_size[row]),
            **self.correction_detail(row),
        }

    def correction_detail(self, row: int) -> dict[str, Any]:
        """Whose the shot's caption is, the machine's caption a curator replaced, and every
        correction of the shot (oldest first, with the value it replaced)."""
        shot = self.shot_ids[row]
        corrected = self.corrections.corrected_caption(shot)
        return {
            "caption_corrected": None
            if corrected is None
            else {"curator": corrected["curator"], "at": corrected["at"], "note": corrected["note"]},
            "machine_caption": self.machine_captions.get(row, self.captions[row]),
            "corrections": [
                {k: r[k] for k in ("correction_id", "field", "value", "before", "curator", "at", "note")}
                for r in self.corrections.history.get(shot, [])
            ],
        }


def _people_rows(tables: Mapping[str, pa.Table], row_of: Mapping[str, int]) -> dict[str, np.ndarray]:
    rows: dict[str, set[int]] = {}
    found = Roster(tables["people"], tables["face_tracks"], tables["people_corrections"])
    for shot, names in found.names_by_shot().items():
        if shot in row_of:
            for name in names:
                rows.setdefault(normal_name(name), set()).add(row_of[shot])
    for name, spoken in _voice_rows(tables, row_of).items():
        rows.setdefault(name, set()).update(spoken)
    return {name: np.asarray(sorted(found), np.int64) for name, found in rows.items()}


def _voice_rows(tables: Mapping[str, pa.Table], row_of: Mapping[str, int]) -> dict[str, set[int]]:
    """Per name of a visible voice, the rows of the shots whose time overlaps one of its turns."""
    heard = VoiceRoster(
        tables["voices"].to_pylist(), tables["speakers"].to_pylist(), tables["people_corrections"]
    ).turns_by_name()
    if not heard:
        return {}
    shots: dict[str, list[tuple[float, float, int]]] = {}
    for shot in tables["shots"].select(["shot_id", "asset_id", "start_s", "end_s"]).to_pylist():
        if shot["shot_id"] in row_of and shot["start_s"] is not None and shot["end_s"] is not None:
            shots.setdefault(shot["asset_id"], []).append(
                (shot["start_s"], shot["end_s"], row_of[shot["shot_id"]])
            )
    return {
        name: {
            row
            for asset, turns in by_asset.items()
            for start, end, row in shots.get(asset, [])
            if any(start < turn_end and turn_start < end for turn_start, turn_end in turns)
        }
        for name, by_asset in heard.items()
    }


def _read(catalog: SqlCatalog, name: str, columns: tuple[str, ...], snapshot_id: int | None) -> pa.Table:
    if snapshot_id is None:
        schema = table(catalog, name).schema().as_arrow()
        return pa.Table.from_pylist([], schema=schema).select(list(columns))
    return read(catalog, name, columns=columns, snapshot_id=snapshot_id)


def _positions(values: pa.ChunkedArray, of: pa.ChunkedArray) -> np.ndarray:
    """Row of each value in `of`, -1 where absent."""
    if len(values) == 0:
        return np.zeros(0, np.int64)
    found = pc.index_in(values, value_set=of.combine_chunks())
    return found.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64)


def _floats(column: pa.ChunkedArray) -> np.ndarray:
    return column.fill_null(np.nan).to_numpy(zero_copy_only=False).astype(np.float64)


def _inverted(labels: np.ndarray, rows: np.ndarray) -> dict[str, np.ndarray]:
    """Sorted shot rows per label."""
    if not len(labels):
        return {}
    names, which = np.unique(labels, return_inverse=True)
    order = np.argsort(which, kind="stable")
    bounds = np.searchsorted(which[order], np.arange(len(names) + 1))
    return {str(name): np.unique(rows[order[bounds[i] : bounds[i + 1]]]) for i, name in enumerate(names)}


def _corrected(
    by_label: dict[str, np.ndarray], corrections: Effective, row_of: Mapping[str, int]
) -> dict[str, np.ndarray]:
    """Tag rows per label with the curators' tags added and removed (labels lower-cased)."""
    for shot, actions in corrections.tag_actions.items():
        row = row_of.get(shot)
        if row is None:
            continue
        for label, action in actions.items():
            held = by_label.get(label, np.zeros(0, np.int64))
            held = np.union1d(held, [row]) if action["field"] == TAG_ADDED else held[held != row]
            if len(held):
                by_label[label] = held.astype(np.int64)
            else:
                by_label.pop(label, None)
    return by_label


def _holds(rows: np.ndarray, row: int) -> bool:
    at = np.searchsorted(rows, row)
    return bool(at < len(rows) and rows[at] == row)


def _day(day: dt.date) -> np.datetime64:
    return np.datetime64(day.isoformat(), "us")
