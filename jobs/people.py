"""The people step: after a run's commit, its faces become tracks, and tracks join people.

Like the duplicate groups and the indexes, people are derived from the whole committed catalog (an
appearance filmed today is of a person catalogued years ago), so the step runs after the run's
catalog version is recorded, reads the `faces` rows at that version, and rewrites `face_tracks` and
`people` whole. What makes it incremental is what it keeps from the tables it replaces:

- a track that was there before (same id, or, should a re-run with other detector settings have
  renumbered a shot's faces, the same shot and an overlapping box) keeps its person;
- a new track joins the nearest person within `JOIN_DISTANCE` of its descriptor (people as the
  curators left them: a split-off person gathers its new appearances too);
- the tracks left over are grouped among themselves, each group a new person with an id one past
  the highest ever given. An id once given is kept in `people` even when its last appearance goes,
  so it is never given again, and no person is ever renumbered or merged by the machine.

Pictures: the tracks link the faces the faces stage saw on each picture of a shot (its
`face_sightings` rows): its keyframes (one, or up to 4 for a long take whose picture changes) and
the few track frames segment sampled from it (`track_frames`, 2 by default, near its quarters). A
shot catalogued before sightings were kept is linked from its `faces` rows, its keyframe 0's. No
frame is decoded here: this step runs on the driver after the commit, where the pipeline's rule is
that pixels do not travel.

Atomic for readers: both tables are written holding the catalog's commit lock (so a curator's split
cannot take the same new id), `people` first: a reader between the two commits sees new ids with no
appearance yet (listed nowhere), never an appearance of an id it cannot find.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Mapping
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pyiceberg.catalog.sql import SqlCatalog

from catalog.iceberg import read, replace_all
from catalog.people import PERSON, Roster, next_person_id, person_id, roster
from catalog.people_clusters import (
    GROUP_DISTANCE,
    JOIN_DISTANCE,
    SAME_BOX,
    Observation,
    Track,
    assign,
    centroid,
    link_tracks,
    overlap,
)
from catalog.schema import FACE_TRACKS, IDENTITY_DIM, PEOPLE
from catalog.versions import committing

SIGHTING_COLUMNS = (
    "shot_id",
    "asset_id",
    "keyframe_index",
    "track_frame",
    "time_s",
    "face_index",
    "box",
    "score",
    "identity",
)


def track_id(shot_id: str, first: Observation) -> str:
    """A track is named by its shot and its `Track.first` observation, so a re-run names it alike
    (and a track named before track frames were followed keeps its name)."""
    picture = first.keyframe_index if first.keyframe_index is not None else f"f{first.track_frame}"
    return hashlib.sha256(f"{shot_id}:{picture}:{first.face_index}".encode()).hexdigest()[:32]


def shot_tracks(sightings: pa.Table) -> dict[str, list[Track]]:
    """Per shot, its sightings linked into tracks (faces too small to carry a descriptor are
    nobody's appearance: they cannot be told apart, and are left out)."""
    by_shot: dict[str, list[Observation]] = {}
    for row in sightings.to_pylist():
        if row["identity"] is None or row["box"] is None:
            continue
        keyframe, frame = row.get("keyframe_index"), row.get("track_frame")
        by_shot.setdefault(str(row["shot_id"]), []).append(
            Observation(
                keyframe_index=None if keyframe is None and frame is not None else int(keyframe or 0),
                track_frame=None if frame is None else int(frame),
                time_s=float(row.get("time_s") or 0.0),
                face_index=int(row["face_index"] or 0),
                box=tuple(float(v) for v in row["box"]),  # type: ignore[arg-type]
                score=float(row["score"] or 0.0),
                identity=np.asarray(row["identity"], np.float32),
            )
        )
    return {shot: link_tracks(observations) for shot, observations in sorted(by_shot.items())}


def read_sightings(catalog: SqlCatalog) -> pa.Table:
    """Every face on every picture of every shot: the `face_sightings` rows, and, for a shot that
    has none (catalogued before they were kept), its `faces` rows as keyframe 0's sightings."""
    sightings = read(catalog, "face_sightings", columns=SIGHTING_COLUMNS)
    faces = read(catalog, "faces", columns=("shot_id", "asset_id", "face_index", "box", "score", "identity"))
    older = faces.filter(pc.invert(pc.is_in(faces["shot_id"], value_set=sightings["shot_id"].unique())))
    older = older.append_column("keyframe_index", pa.array([0] * older.num_rows, pa.int32()))
    older = older.append_column("track_frame", pa.nulls(older.num_rows, pa.int32()))
    older = older.append_column("time_s", pa.nulls(older.num_rows, pa.float64()))
    return pa.concat_tables(
        [sightings.select(SIGHTING_COLUMNS), older.select(SIGHTING_COLUMNS)], promote_options="permissive"
    )


def refresh_people(
    catalog: SqlCatalog,
    *,
    run_id: str,
    join_distance: float = JOIN_DISTANCE,
    group_distance: float = GROUP_DISTANCE,
) -> dict[str, int]:
    """Rebuild the tracks from the catalog's faces and place them among the people; what changed."""
    sightings = read_sightings(catalog)
    spans = {
        r["shot_id"]: r for r in read(catalog, "shots", columns=("shot_id", "start_s", "end_s")).to_pylist()
    }
    asset_of = dict(zip(sightings["shot_id"].to_pylist(), sightings["asset_id"].to_pylist(), strict=True))
    tracks = {
        track_id(shot, t.first): (shot, t)
        for shot, found in shot_tracks(sightings).items()
        for t in found
        if shot in spans
    }
    with committing(catalog):
        before = roster(catalog)
        machine, kept = _kept(before, tracks)
        left = {t: v[1].identity for t, v in tracks.items() if t not in machine}
        identities = {t: vec for t, vec in left.items() if vec is not None}
        joined, groups = assign(
            identities, before.centroids(), join_distance=join_distance, group_distance=group_distance
        )
        machine.update(joined)
        first = int(next_person_id(before)[1:])
        new_ids = []
        for offset, members in enumerate(groups):
            new_ids.append(person_id(first + offset))
            machine.update({t: new_ids[-1] for t in members})
        now = dt.datetime.now(dt.UTC)
        track_rows = [
            _track_row(tid, shot, t, spans[shot], asset_of[shot], machine[tid], run_id)
            for tid, (shot, t) in tracks.items()
        ]
        people_rows = _people_rows(before, track_rows, new_ids, run_id, now)
        replace_all(catalog, "people", pa.Table.from_pylist(people_rows, schema=PEOPLE), run_id=run_id)
        replace_all(
            catalog, "face_tracks", pa.Table.from_pylist(track_rows, schema=FACE_TRACKS), run_id=run_id
        )
    return {
        "tracks": len(track_rows),
        "kept": kept,
        "joined": len(joined),
        "new_people": len(new_ids),
        "people": len({r["person_id"] for r in track_rows}),
    }


def _kept(before: Roster, tracks: Mapping[str, tuple[str, Track]]) -> tuple[dict[str, str], int]:
    """The tracks that were there before (by id, else by shot and box) with their machine person."""
    by_shot: dict[str, list[dict[str, Any]]] = {}
    for old in before.tracks.values():
        by_shot.setdefault(str(old["shot_id"]), []).append(old)
    machine: dict[str, str] = {}
    for tid, (shot, track) in tracks.items():
        row: dict[str, Any] | None = before.tracks.get(tid)
        if row is None and track.best is not None:
            box = track.best.box
            same = [
                r
                for r in by_shot.get(shot, [])
                if r["box"] is not None and overlap(box, r["box"]) >= SAME_BOX
            ]
            row = max(same, key=lambda r: overlap(box, r["box"])) if same else None
        if row is not None:
            machine[tid] = str(row["person_id"])
    return machine, len(machine)


def _track_row(
    tid: str, shot: str, track: Track, span: Mapping[str, Any], asset: str, person: str, run_id: str
) -> dict[str, Any]:
    best = track.best
    identity = track.identity
    on_keyframes = [o for o in track.observations if o.keyframe_index is not None]
    return {
        "track_id": tid,
        "shot_id": shot,
        "asset_id": asset,
        "start_s": span["start_s"],
        "end_s": span["end_s"],
        "keyframe_indexes": [o.keyframe_index for o in on_keyframes],
        "face_indexes": [o.face_index for o in on_keyframes],
        "seen_s": sorted({o.time_s for o in track.observations}),
        "box": None if best is None else list(best.box),
        "keyframe_index": None if best is None else best.keyframe_index,
        "score": max(o.score for o in track.observations),
        "identity": None if identity is None else identity.tolist(),
        "person_id": person,
        "run_id": run_id,
    }


def _people_rows(
    before: Roster, track_rows: list[dict[str, Any]], new_ids: list[str], run_id: str, now: dt.datetime
) -> list[dict[str, Any]]:
    """Every id ever given by the machine (none dropped: an id is never given twice), each with the
    centroid and count of its machine tracks now."""
    vectors: dict[str, list[np.ndarray]] = {}
    for row in track_rows:
        vectors.setdefault(row["person_id"], []).append(np.asarray(row["identity"], np.float32))
    rows = []
    ids = sorted(
        {*before.machine_people, *new_ids, *(p for p in vectors if p not in before.corrections.split_tracks)}
    )
    for pid in ids:
        old = before.machine_people.get(pid)
        members = vectors.get(pid, [])
        kept_centroid = old["centroid"] if old is not None else None
        rows.append(
            {
                "person_id": pid,
                "kind": PERSON,
                "centroid": centroid(members).tolist() if members else kept_centroid or [0.0] * IDENTITY_DIM,
                "track_count": len(members),
                "created_run_id": old["created_run_id"] if old is not None else run_id,
                "created_at": old["created_at"] if old is not None else now,
                "run_id": run_id,
            }
        )
    return rows
