"""People across the archive, and what curators say of them: names, merges, splits, opt-outs.

The machine's rows are `face_tracks` (one appearance of a face in a shot) and `people` (clusters of
tracks with ids given once and never renumbered), both rewritten by the people step after each run
(`jobs.people`). What a curator does is a row of `people_corrections`: who, when, what, the value
before; appended by the service or the CLI and never by a run. Every reader folds the corrections
over the machine's rows (`roster`), as `catalog.corrections` does for captions and tags, so a re-run
that rebuilds the clusters underneath leaves every name, merge, split and opt-out standing:

- **name**: the latest name a curator gave a person (or any person merged into it) is its name.
  Names exist only where a person entered them: the machine never names anyone.
- **merge** B into A: B's appearances are A's from then on; B's id stays known and leads to A.
- **split**: some appearances of a person leave it for a new person (a new id). The appearances are
  kept by track id and, should a re-run give the track another id, by its shot and box.
- **exclude** / **include**: a person opted out is absent from name search, from the exports and
  from every list that is not a curator's (`Roster.visible`). Opting out wins over a merge: a person
  any of whose merged parts is excluded is excluded, until an include of the merged person (after
  the merge) takes the opt-outs back.

The correction fold is general over a "kind" of cluster (`PERSON`, `VOICE`): voices can be named,
merged and excluded with the same rows and `fold_corrections`.

The public functions below are what the CLI (`jobs.cli_people`), the HTTP API (`serve.people`) and
the dashboard's People page use; each raises `PeopleError` (bad input: the message says what to
change) or `UnknownPersonError` (no such person), and writes nothing then.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np
import pyarrow as pa
from pyiceberg.catalog.sql import SqlCatalog

from catalog.iceberg import append, read
from catalog.people_clusters import SAME_BOX, overlap
from catalog.schema import PEOPLE_CORRECTIONS
from catalog.versions import committing

PERSON = "person"
VOICE = "voice"
KINDS: dict[str, str] = {PERSON: "a face's appearances across the archive", VOICE: "a speaker's voice"}
"""The kinds of cluster a curator can name, by `people_corrections.kind`."""

NAME = "name"
MERGE = "merge"
SPLIT = "split"
EXCLUDE = "exclude"
INCLUDE = "include"
ACTIONS: dict[str, str] = {
    NAME: "the cluster's name (`value`: the name)",
    MERGE: "the cluster is part of another from now on (`value`: the other's id)",
    SPLIT: "some appearances left the cluster for a new one (`value`: JSON {new id, tracks})",
    EXCLUDE: "the cluster is opted out of search and exports",
    INCLUDE: "an opt-out taken back",
}
"""What a curator can do to a cluster, by `people_corrections.action`."""

MAX_NAME_CHARS = 200
MAX_CURATOR_CHARS = 80
MAX_NOTE_CHARS = 1000
MAX_SPLIT_TRACKS = 1000
PERSON_ID_PREFIX = "P"
PERSON_ID_DIGITS = 6
CURATOR_RUN = "curator"
"""The `created_run_id` of a person a curator's split made."""


PEOPLE_TRACK_COLUMNS = (
    "track_id",
    "shot_id",
    "asset_id",
    "start_s",
    "end_s",
    "seen_s",
    "box",
    "keyframe_index",
    "score",
    "person_id",
)
"""What a reader that shows people (the search view) reads of `face_tracks`: all but descriptors."""
PEOPLE_CORRECTION_COLUMNS = tuple(PEOPLE_CORRECTIONS.names)


class PeopleError(ValueError):
    """A curator's action that cannot be kept as asked: the message says what to change."""


class PeopleConflict(PeopleError):
    """A well-formed action the catalog's present state does not allow (merging a person with
    itself, splitting off appearances that are not the person's): the API answers 409, not 422."""


class UnknownPersonError(LookupError):
    """A person (or voice) id the catalog does not hold."""


@dataclass(frozen=True)
class Appearance:
    """One track: a person seen in one shot, at `seen_s` (its keyframes' and track frames' times).
    The box is the detector's surest on a keyframe, on that keyframe; empty for a face seen only
    on track frames, which are not kept, so it has no picture to show."""

    track_id: str
    shot_id: str
    asset_id: str
    start_s: float | None
    end_s: float | None
    seen_s: tuple[float, ...]
    keyframe_index: int
    box: tuple[float, ...]
    score: float | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "track_id": self.track_id,
            "shot_id": self.shot_id,
            "asset_id": self.asset_id,
            "start_s": self.start_s,
            "end_s": self.end_s,
            "seen_s": list(self.seen_s),
            "keyframe_index": self.keyframe_index,
            "box": list(self.box),
            "score": self.score,
        }


@dataclass(frozen=True)
class Person:
    """A person as readers see them: the machine's cluster with the curators' corrections folded in."""

    person_id: str
    name: str | None
    named_by: str | None
    named_at: dt.datetime | None
    excluded: bool
    appearances: int
    shots: int
    assets: int
    merged: tuple[str, ...] = ()
    """The ids merged into this person (each leads here)."""

    def as_dict(self) -> dict[str, Any]:
        return {
            "person_id": self.person_id,
            "name": self.name,
            "named_by": self.named_by,
            "named_at": self.named_at.isoformat() if self.named_at else None,
            "excluded": self.excluded,
            "appearances": self.appearances,
            "shots": self.shots,
            "assets": self.assets,
            "merged": list(self.merged),
        }


@dataclass(frozen=True)
class PersonDetail:
    """A person with every appearance (by asset, then time) and the curators' history."""

    person: Person
    appearances: list[Appearance]
    representatives: list[Appearance]
    """A few appearances to show as crops: the detector's surest, one per shot."""
    history: list[dict[str, Any]]
    """Every curator's row about this person or a person merged into it, oldest first."""

    def as_dict(self) -> dict[str, Any]:
        return {
            **self.person.as_dict(),
            "appearance_list": [a.as_dict() for a in self.appearances],
            "representatives": [a.as_dict() for a in self.representatives],
            "asset_ids": sorted({a.asset_id for a in self.appearances}),
            "history": [_jsonable(r) for r in self.history],
        }


@dataclass(frozen=True)
class ClusterCorrections:
    """The curators' rows of one kind of cluster, folded: what wins for each cluster."""

    names: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    """Per cluster, its latest name row."""
    merged_into: Mapping[str, str] = field(default_factory=dict)
    """Per cluster merged away, the cluster it was merged into."""
    split_tracks: Mapping[str, list[tuple[str, Mapping[str, Any]]]] = field(default_factory=dict)
    """Per cluster a split made, the appearances it took: (track id, {shot_id, box})."""
    excluded: Mapping[str, bool] = field(default_factory=dict)
    """Per cluster, whether its latest exclude/include says it is opted out."""
    history: Mapping[str, Sequence[Mapping[str, Any]]] = field(default_factory=dict)
    """Per cluster, every row naming it, oldest first."""

    def root(self, cluster_id: str) -> str:
        """The cluster this one is now part of (itself, unless merged away)."""
        return _root(self.merged_into, cluster_id)

    @cached_property
    def _merged_parts(self) -> dict[str, list[str]]:
        parts: dict[str, list[str]] = {}
        for cluster in sorted(self.merged_into):
            parts.setdefault(self.root(cluster), []).append(cluster)
        return parts

    def parts(self, cluster_id: str) -> list[str]:
        """The cluster and every cluster merged into it (each of which leads here)."""
        return [cluster_id, *self._merged_parts.get(cluster_id, [])]

    def name_row(self, cluster_id: str) -> Mapping[str, Any] | None:
        """Its latest name row: its own (the kept cluster's name wins a merge), else the latest a
        cluster merged into it was given."""
        own = self.names.get(cluster_id)
        if own is not None:
            return own
        rows = [self.names[p] for p in self.parts(cluster_id) if p in self.names]
        return max(rows, key=lambda r: _instant(r["at"])) if rows else None

    def is_excluded(self, cluster_id: str) -> bool:
        """Opted out: it, or any cluster merged into it, was excluded and not included again."""
        return any(self.excluded.get(p, False) for p in self.parts(cluster_id))

    def history_of(self, cluster_id: str) -> list[Mapping[str, Any]]:
        """Every curator's row about the cluster or a cluster merged into it, oldest first."""
        rows = {r["correction_id"]: r for p in self.parts(cluster_id) for r in self.history.get(p, [])}
        return sorted(rows.values(), key=lambda r: _instant(r["at"]))


def fold_corrections(rows: Iterable[Mapping[str, Any]] | pa.Table, kind: str = PERSON) -> ClusterCorrections:
    """Fold `people_corrections` rows of one kind (any clusters, any order): the latest by `at` wins
    (ties by the order they were written in)."""
    listed = rows.to_pylist() if isinstance(rows, pa.Table) else list(rows)
    ordered = sorted(
        ((i, r) for i, r in enumerate(listed) if r["kind"] == kind),
        key=lambda pair: (_instant(pair[1]["at"]), pair[0]),
    )
    names: dict[str, Mapping[str, Any]] = {}
    merged: dict[str, str] = {}
    splits: dict[str, list[tuple[str, Mapping[str, Any]]]] = {}
    excluded: dict[str, bool] = {}
    history: dict[str, list[Mapping[str, Any]]] = {}
    for _, row in ordered:
        cluster = str(row["cluster_id"])
        history.setdefault(cluster, []).append(row)
        action = row["action"]
        if action == NAME:
            names[cluster] = row
        elif action == MERGE:
            merged[cluster] = str(row["value"])
            history.setdefault(str(row["value"]), []).append(row)
        elif action == SPLIT:
            split = json.loads(row["value"])
            new = str(split["person_id"])
            history.setdefault(new, []).append(row)
            splits[new] = [(str(t["track_id"]), t) for t in split["tracks"]]
        elif action in (EXCLUDE, INCLUDE):
            excluded[cluster] = action == EXCLUDE
            if action == INCLUDE:  # taken back for the whole: the parts merged into it by then too
                excluded.update((part, False) for part in merged if _root(merged, part) == cluster)
    return ClusterCorrections(names, merged, splits, excluded, history)


def _root(merged_into: Mapping[str, str], cluster_id: str) -> str:
    seen = {cluster_id}
    while cluster_id in merged_into:
        cluster_id = merged_into[cluster_id]
        if cluster_id in seen:  # a cycle cannot be written (merge checks), but never loop
            break
        seen.add(cluster_id)
    return cluster_id


class Roster:
    """People as every reader sees them: the machine's tracks and clusters with the curators'
    corrections folded over them. Built by `roster`; cheap to build for a few hundred thousand
    tracks, and what the search view, the exports and the API consult."""

    def __init__(self, people: pa.Table, tracks: pa.Table, corrections: pa.Table) -> None:
        self.corrections = fold_corrections(corrections, PERSON)
        self.machine_people = {str(r["person_id"]): r for r in people.to_pylist() if r["kind"] == PERSON}
        self.tracks: dict[str, dict[str, Any]] = {str(r["track_id"]): r for r in tracks.to_pylist()}
        pinned = self._pins()
        self.person_of: dict[str, str] = {
            track: self.corrections.root(pinned.get(track, str(row["person_id"])))
            for track, row in self.tracks.items()
        }
        """Per track, the person it is an appearance of (after merges and splits)."""
        self.members: dict[str, list[str]] = {}
        for track, person in sorted(self.person_of.items()):
            self.members.setdefault(person, []).append(track)
        self._parts: dict[str, list[str]] = {}
        for given in sorted(set(self.machine_people) | set(self.corrections.split_tracks)):
            self._parts.setdefault(self.corrections.root(given), []).append(given)

    def _pins(self) -> dict[str, str]:
        """Per track, the person a split moved it to (found by id, else by its shot and box)."""
        by_shot: dict[str, list[dict[str, Any]]] = {}
        for row in self.tracks.values():
            by_shot.setdefault(str(row["shot_id"]), []).append(row)
        pinned: dict[str, str] = {}
        splits = sorted(
            self.corrections.split_tracks.items(),
            key=lambda item: _instant(self.corrections.history[item[0]][0]["at"]),
        )
        for person, moved in splits:
            for track_id, where in moved:
                if track_id in self.tracks:
                    pinned[track_id] = person
                    continue
                box = where.get("box") or ()
                same = [
                    r
                    for r in by_shot.get(str(where.get("shot_id")), [])
                    if box and r["box"] is not None and overlap(box, r["box"]) >= SAME_BOX
                ]
                if same:
                    pinned[str(max(same, key=lambda r: overlap(box, r["box"]))["track_id"])] = person
        return pinned

    def exists(self, person_id: str) -> bool:
        """Whether the id was ever given (by the machine or a split): merged-away ids exist too."""
        return person_id in self.machine_people or person_id in self.corrections.split_tracks

    def resolve(self, person_id: str) -> str:
        """The person an id stands for now (merged-away ids lead to the person they joined);
        UnknownPersonError for an id never given."""
        if not self.exists(person_id):
            raise UnknownPersonError(
                f"person {person_id[:40]!r} is not in the catalog: list people with `archivist people list`"
            )
        return self.corrections.root(person_id)

    def parts(self, person_id: str) -> list[str]:
        """The person's id and every id merged into it."""
        return self._parts.get(person_id, [person_id])

    def name(self, person_id: str) -> str | None:
        """Its latest name given by a curator (to it or to a person merged into it)."""
        row = self.corrections.name_row(person_id)
        return str(row["value"]) if row is not None else None

    def is_excluded(self, person_id: str) -> bool:
        """Opted out: it, or any person merged into it, was excluded and not included again."""
        return self.corrections.is_excluded(person_id)

    def people(self) -> list[str]:
        """Every person who has at least one appearance now, by id."""
        return sorted(self.members)

    def visible(self, person_id: str) -> bool:
        """Whether search and exports may show this person: it has appearances and is not opted out."""
        return person_id in self.members and not self.is_excluded(person_id)

    def find(self, name: str) -> list[str]:
        """The visible people with exactly this name (case and spacing aside)."""
        wanted = normal_name(name)
        return [p for p in self.people() if self.visible(p) and normal_name(self.name(p) or "") == wanted]

    def names_by_shot(self) -> dict[str, list[str]]:
        """Per shot, the names of the visible named people who appear in it (sorted)."""
        found: dict[str, set[str]] = {}
        for person in self.people():
            name = self.name(person)
            if name is None or not self.visible(person):
                continue
            for track in self.members[person]:
                found.setdefault(str(self.tracks[track]["shot_id"]), set()).add(name)
        return {shot: sorted(names) for shot, names in found.items()}

    def shots_of(self, person_id: str) -> list[str]:
        """The shots a person appears in (asset by asset, in time order)."""
        tracks = sorted(
            (self.tracks[t] for t in self.members.get(person_id, [])),
            key=lambda r: (r["asset_id"], r["start_s"] or 0.0, r["shot_id"]),
        )
        return list(dict.fromkeys(str(r["shot_id"]) for r in tracks))

    def person(self, person_id: str) -> Person:
        """The person as readers see them (`person_id` already resolved)."""
        tracks = [self.tracks[t] for t in self.members.get(person_id, [])]
        named = self.corrections.name_row(person_id)
        return Person(
            person_id=person_id,
            name=str(named["value"]) if named is not None else None,
            named_by=str(named["curator"]) if named is not None else None,
            named_at=_instant(named["at"]) if named is not None else None,
            excluded=self.is_excluded(person_id),
            appearances=len(tracks),
            shots=len({r["shot_id"] for r in tracks}),
            assets=len({r["asset_id"] for r in tracks}),
            merged=tuple(p for p in self.parts(person_id) if p != person_id),
        )

    def appearances(self, person_id: str) -> list[Appearance]:
        """Every appearance of the person, asset by asset in time order."""
        rows = sorted(
            (self.tracks[t] for t in self.members.get(person_id, [])),
            key=lambda r: (r["asset_id"], r["start_s"] or 0.0, r["track_id"]),
        )
        return [_appearance(r) for r in rows]

    def centroids(self) -> dict[str, np.ndarray]:
        """Per person with appearances, the mean of its tracks' descriptors (after the curators'
        merges and splits: a new track joins the person a curator made)."""
        from catalog.people_clusters import centroid

        found = {}
        for person, tracks in self.members.items():
            vectors = [
                np.asarray(self.tracks[t]["identity"], np.float32)
                for t in tracks
                if self.tracks[t].get("identity") is not None
            ]
            if vectors:
                found[person] = centroid(vectors)
        return found


def roster(catalog: SqlCatalog) -> Roster:
    """The people of the catalog as readers see them, read now."""
    return Roster(read(catalog, "people"), read(catalog, "face_tracks"), read(catalog, "people_corrections"))


def normal_name(name: str) -> str:
    """A name as compared: spaces collapsed, case folded (a search for "jane  doe" finds Jane Doe)."""
    return re.sub(r"\s+", " ", name).strip().casefold()


def list_people(catalog: SqlCatalog, *, include_excluded: bool = True) -> list[Person]:
    """Every person with at least one appearance, by id. Curators see the opted-out too
    (`include_excluded`), marked as such; anything shown to others must pass False."""
    found = roster(catalog)
    return [found.person(p) for p in found.people() if include_excluded or not found.is_excluded(p)]


def person_detail(catalog: SqlCatalog, person_id: str, *, representatives: int = 6) -> PersonDetail:
    """One person (a merged-away id answers with the person it joined): every appearance, a few
    crops to show, and the curators' history. UnknownPersonError for an id never given."""
    found = roster(catalog)
    resolved = found.resolve(person_id)
    appearances = found.appearances(resolved)
    best: dict[str, Appearance] = {}
    for a in sorted(appearances, key=lambda a: -(a.score or 0.0)):
        if a.box:
            best.setdefault(a.shot_id, a)
    history = found.corrections.history_of(resolved)
    return PersonDetail(
        found.person(resolved), appearances, list(best.values())[:representatives], [dict(r) for r in history]
    )


def find_people(catalog: SqlCatalog, name: str) -> list[Person]:
    """The people (not opted out) a curator gave exactly this name, case and spacing aside."""
    found = roster(catalog)
    return [found.person(p) for p in found.find(name)]


def name_person(
    catalog: SqlCatalog, person_id: str, name: str, *, curator: str, note: str | None = None
) -> dict[str, Any]:
    """Name a person (a merged-away id names the person it joined); the row kept, with the name
    before. PeopleError for an empty or over-long name, UnknownPersonError for an unknown id."""
    tidy_name = checked_name(name)
    who, why = checked_curator(curator), checked_note(note)
    found = roster(catalog)
    person = found.resolve(person_id)
    _require_appearances(found, person)
    return keep_correction(catalog, person, NAME, tidy_name, found.name(person), who, why)


def merge_people(
    catalog: SqlCatalog, keep_id: str, other_id: str, *, curator: str, note: str | None = None
) -> dict[str, Any]:
    """Make `other_id` part of `keep_id` (its appearances, its name if `keep_id` has none); the row
    kept. PeopleError for a person merged with itself, UnknownPersonError for an unknown id."""
    who, why = checked_curator(curator), checked_note(note)
    found = roster(catalog)
    keep, other = found.resolve(keep_id), found.resolve(other_id)
    refuse_self_merge(keep_id, other_id, keep, other, "person")
    _require_appearances(found, keep)
    _require_appearances(found, other)
    before = (
        f"{keep}: {len(found.members[keep])} appearances; {other}: {len(found.members[other])} appearances"
    )
    return keep_correction(catalog, other, MERGE, keep, before, who, why)


def refuse_self_merge(keep_id: str, other_id: str, keep: str, other: str, noun: str) -> None:
    """PeopleConflict where the two ids of a merge are one cluster (the same id, or one already
    merged into the other): a cluster merged with itself would lead to itself."""
    if keep == other:
        same = "the same id" if keep_id == other_id else f"already one {noun} ({keep})"
        raise PeopleConflict(f"cannot merge {keep_id[:40]} with {other_id[:40]}: {same}")


def split_person(
    catalog: SqlCatalog, person_id: str, track_ids: Sequence[str], *, curator: str, note: str | None = None
) -> dict[str, Any]:
    """Move some appearances (track ids) of a person to a new person; the row kept, with the new
    person's id as `new_person_id`. PeopleError for no tracks, tracks not the person's, or every
    track (a split must leave the person something)."""
    who, why = checked_curator(curator), checked_note(note)
    wanted = list(dict.fromkeys(str(t).strip() for t in track_ids if str(t).strip()))
    if not wanted:
        raise PeopleError("say which appearances leave the person: give at least one track id")
    if len(wanted) > MAX_SPLIT_TRACKS:
        raise PeopleError(f"at most {MAX_SPLIT_TRACKS} appearances can be split off at once")
    with committing(catalog):  # the new id is taken under the lock the people step takes its ids under
        found = roster(catalog)
        person = found.resolve(person_id)
        members = set(found.members.get(person, []))
        strangers = [t for t in wanted if t not in members]
        if strangers:
            raise PeopleConflict(
                f"track {strangers[0][:40]!r} is not an appearance of {person}: "
                f"see `archivist people show {person}`"
            )
        if len(wanted) == len(members):
            raise PeopleConflict(f"a split must leave {person} at least one appearance: to rename, use name")
        new = next_person_id(found)
        moved = [
            {"track_id": t, "shot_id": found.tracks[t]["shot_id"], "box": found.tracks[t]["box"]}
            for t in wanted
        ]
        value = json.dumps({"person_id": new, "tracks": moved})
        before = f"{person}: {len(members)} appearances"
        row = keep_correction(catalog, person, SPLIT, value, before, who, why)
    return {**row, "new_person_id": new}


def exclude_person(
    catalog: SqlCatalog, person_id: str, *, curator: str, excluded: bool = True, note: str | None = None
) -> dict[str, Any]:
    """Opt a person out of search and exports (`excluded`), or take the opt-out back; the row kept."""
    who, why = checked_curator(curator), checked_note(note)
    found = roster(catalog)
    person = found.resolve(person_id)
    before = "excluded" if found.is_excluded(person) else "included"
    return keep_correction(catalog, person, EXCLUDE if excluded else INCLUDE, None, before, who, why)


def next_person_id(found: Roster) -> str:
    """The next id never given: one past the highest given by the machine or a split."""
    taken = [*found.machine_people, *found.corrections.split_tracks]
    numbers = [
        int(p[len(PERSON_ID_PREFIX) :]) for p in taken if p.startswith(PERSON_ID_PREFIX) and p[1:].isdigit()
    ]
    return person_id(max(numbers, default=0) + 1)


def person_id(number: int) -> str:
    """The id of the n-th person ever found."""
    return f"{PERSON_ID_PREFIX}{number:0{PERSON_ID_DIGITS}d}"


def read_people_corrections(catalog: SqlCatalog) -> pa.Table:
    """Every curator's row about people and voices (no run writes them: always the newest)."""
    return read(catalog, "people_corrections")


def keep_correction(
    catalog: SqlCatalog,
    cluster_id: str,
    action: str,
    value: str | None,
    before: str | None,
    curator: str,
    note: str | None,
    *,
    kind: str = PERSON,
) -> dict[str, Any]:
    row = {
        "correction_id": uuid.uuid4().hex,
        "kind": kind,
        "cluster_id": cluster_id,
        "action": action,
        "value": value,
        "before": before,
        "curator": curator,
        "at": dt.datetime.now(dt.UTC),
        "note": note,
    }
    append(catalog, "people_corrections", pa.Table.from_pylist([row], schema=PEOPLE_CORRECTIONS))
    return row


def _require_appearances(found: Roster, person: str) -> None:
    if person not in found.members:
        raise PeopleConflict(f"person {person} has no appearances left in the catalog")


def checked_name(name: str) -> str:
    tidy = _tidy(name)
    if not tidy:
        raise PeopleError("a name cannot be empty")
    if len(tidy) > MAX_NAME_CHARS:
        raise PeopleError(f"a name is at most {MAX_NAME_CHARS} characters (this one has {len(tidy)})")
    return tidy


def checked_curator(curator: str) -> str:
    tidy = _tidy(curator or "")
    if not tidy:
        raise PeopleError("say who is correcting: the curator's name is required")
    if len(tidy) > MAX_CURATOR_CHARS:
        raise PeopleError(f"the curator's name is at most {MAX_CURATOR_CHARS} characters")
    return tidy


def checked_note(note: str | None) -> str | None:
    tidy = _tidy(note or "") or None
    if tidy is not None and len(tidy) > MAX_NOTE_CHARS:
        raise PeopleError(f"a note is at most {MAX_NOTE_CHARS} characters")
    return tidy


def _tidy(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def _appearance(row: Mapping[str, Any]) -> Appearance:
    return Appearance(
        track_id=str(row["track_id"]),
        shot_id=str(row["shot_id"]),
        asset_id=str(row["asset_id"]),
        start_s=row["start_s"],
        end_s=row["end_s"],
        seen_s=tuple(row.get("seen_s") or ()),
        keyframe_index=int(row["keyframe_index"] or 0),
        box=tuple(float(v) for v in row["box"] or ()),
        score=row["score"],
    )


def _instant(value: Any) -> dt.datetime:
    if isinstance(value, dt.datetime):
        return value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)
    return dt.datetime.fromisoformat(str(value))


def _jsonable(row: Mapping[str, Any]) -> dict[str, Any]:
    return {k: (v.isoformat() if isinstance(v, dt.datetime) else v) for k, v in row.items()}
