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

Frames: the tracks link the faces the faces stage saw on each keyframe of a shot. A shot has one
keyframe unless it is a long take whose picture changes (`actors.keyframe_choice`, up to 4); the
catalog's `faces` rows today are keyframe 0's (`actors.faces.FaceAnalyzer.catalog_rows`), and an
observation's keyframe is read from a `keyframe_index` column where the table has one. No extra
frames are decoded here: this step runs on the driver after the commit, where the pipeline's rule is
that pixels do not travel; sampling more frames per shot belongs in the faces stage, whose actors
already hold the decoded keyframes.

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


def track_id(shot_id: str, keyframe_index: int, face_index: int) -> str:
    """A track is named by its shot and its first observation, so a re-run names it alike."""
    return hashlib.sha256(f"{shot_id}:{keyframe_index}:{face_index}".encode()).hexdigest()[:32]


def shot_tracks(faces: pa.Table) -> dict[str, list[Track]]:
    """Per shot, its faces linked into tracks (faces too small to carry a descriptor are nobody's
    appearance: they cannot be told apart, and are left out)."""
    rows = faces.to_pylist()
    by_shot: dict[str, list[Observation]] = {}
    for row in rows:
        if row["identity"] is None or row["box"] is None:
            continue
        by_shot.setdefault(str(row["shot_id"]), []).append(
            Observation(
                keyframe_index=int(row.get("keyframe_index") or 0),
                face_index=int(row["face_index"] or 0),
                box=tuple(float(v) for v in row["box"]),  # type: ignore[arg-type]
                score=float(row["score"] or 0.0),
                identity=np.asarray(row["identity"], np.float32),
            )
        )
    return {shot: link_tracks(observations) for shot, observations in sorted(by_shot.items())}


def refresh_people(
    catalog: SqlCatalog,
    *,
    run_id: str,
    join_distance: float = JOIN_DISTANCE,
    group_distance: float = GROUP_DISTANCE,
) -> dict[str, int]:
    """Rebuild the tracks from the catalog's faces and place them among the people; what changed."""
    columns = [c for c in ("shot_id", "asset_id", "face_index", "keyframe_index", "box", "score", "identity")]
    faces = read(catalog, "faces")
    faces = faces.select([c for c in columns if c in faces.column_names])
    spans = {
        r["shot_id"]: r for r in read(catalog, "shots", columns=("shot_id", "start_s", "end_s")).to_pylist()
    }
    asset_of = dict(zip(faces["shot_id"].to_pylist(), faces["asset_id"].to_pylist(), strict=True))
    tracks = {
        track_id(shot, t.observations[0].keyframe_index, t.observations[0].face_index): (shot, t)
        for shot, found in shot_tracks(faces).items()
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
        if row is None:
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
    return {
        "track_id": tid,
        "shot_id": shot,
        "asset_id": asset,
        "start_s": span["start_s"],
        "end_s": span["end_s"],
        "keyframe_indexes": [o.keyframe_index for o in track.observations],
        "face_indexes": [o.face_index for o in track.observations],
        "box": list(best.box),
        "keyframe_index": best.keyframe_index,
        "score": best.score,
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
