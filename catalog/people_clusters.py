"""The arithmetic of people: linking a shot's face observations into tracks, and tracks into people.

Both steps compare dlib face descriptors (128-d, `catalog.schema.IDENTITY_DIM`): two pictures of one
person are usually under 0.6 apart (Euclidean), of two people above. Within a shot the position of
the face helps too (a face does not jump across the frame between two pictures of one take), so a
link there needs a close descriptor and a plausible box. Across the archive only the descriptor
counts, and a track joins a person by its distance to the person's centroid (the mean of its
tracks' descriptors), which is steadier than any one picture.

Nothing here reads or writes the catalog: `jobs.people` feeds it the rows and commits the result.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

LINK_DISTANCE = 0.6
"""Most descriptor distance between two observations of one face within a shot (dlib's own rule)."""
LINK_SHIFT = 1.5
"""Most movement of a face's centre between two pictures of a shot, in widths of its box."""
JOIN_DISTANCE = 0.42
"""Most distance from a track to a person's centroid for the track to join that person. Tighter than
dlib's 0.6 between two pictures: archive faces are small, grey and soft, and such descriptors crowd
together (different people's 1 % quantile 0.53, one person's clips 90 % under 0.37 and all under
0.43, measured on re-encoded, resized clips of `tests/benchmarks/bench_people.py` at seed 0; the
benchmark reports at another seed). A wrong join merges two people for good; a missed one leaves
two clusters a curator merges in one action."""
GROUP_DISTANCE = 0.42
"""Most distance between two new tracks (average linkage) for them to found one new person."""
SAME_BOX = 0.5
"""Least overlap (intersection over union) at which a box of a re-run is the same face as before."""


@dataclass(frozen=True)
class Observation:
    """One face on one picture of a shot: a `face_sightings` row. The picture is a keyframe
    (`keyframe_index`) or a track frame (`track_frame`), which is not kept."""

    keyframe_index: int | None
    track_frame: int | None
    time_s: float
    face_index: int
    box: tuple[float, float, float, float]
    score: float
    identity: np.ndarray | None

    @property
    def picture(self) -> tuple[float, int, int]:
        """Which picture it is on, in time order (a keyframe and a track frame can share a time)."""
        if self.keyframe_index is not None:
            return (self.time_s, 0, self.keyframe_index)
        return (self.time_s, 1, self.track_frame or 0)


@dataclass
class Track:
    """One appearance of a face in a shot: its observations, one per picture at most."""

    observations: list[Observation] = field(default_factory=list)

    @property
    def identity(self) -> np.ndarray | None:
        """The mean of its descriptors (None: no observation was large enough to identify)."""
        found = [o.identity for o in self.observations if o.identity is not None]
        return np.mean(found, axis=0).astype(np.float32) if found else None

    @property
    def best(self) -> Observation | None:
        """The surest observation on a keyframe (its box on a picture that is kept stands for the
        track); None for a face seen only on track frames."""
        kept = [o for o in self.observations if o.keyframe_index is not None]
        return max(kept, key=lambda o: o.score) if kept else None

    @property
    def first(self) -> Observation:
        """The observation the track is named by: its keyframe 0 face where it has one (the name
        it had before track frames were followed), else its earliest."""
        return next((o for o in self.observations if o.keyframe_index == 0), self.observations[0])


def link_tracks(observations: Iterable[Observation]) -> list[Track]:
    """A shot's observations linked into tracks: picture by picture in time order, each observation
    extends the open track whose last observation is nearest by descriptor (within LINK_DISTANCE,
    the face moved at most LINK_SHIFT box widths), else starts a track. Closest pairs are linked
    first, and a track takes one observation per picture, so two people side by side stay two
    tracks."""
    tracks: list[Track] = []
    by_picture: dict[tuple[float, int, int], list[Observation]] = {}
    for obs in observations:
        by_picture.setdefault(obs.picture, []).append(obs)
    for picture in sorted(by_picture):
        found = sorted(by_picture[picture], key=lambda o: o.face_index)
        pairs = sorted(
            (cost, t, o)
            for t, track in enumerate(tracks)
            for o, obs in enumerate(found)
            if (cost := _link_cost(track.observations[-1], obs)) is not None
        )
        taken_tracks: set[int] = set()
        taken_obs: set[int] = set()
        for _, t, o in pairs:
            if t in taken_tracks or o in taken_obs:
                continue
            tracks[t].observations.append(found[o])
            taken_tracks.add(t)
            taken_obs.add(o)
        tracks.extend(Track([obs]) for o, obs in enumerate(found) if o not in taken_obs)
    return tracks


def _link_cost(last: Observation, obs: Observation) -> float | None:
    if last.identity is None or obs.identity is None:
        return None
    distance = float(np.linalg.norm(last.identity - obs.identity))
    width = max(last.box[2] - last.box[0], obs.box[2] - obs.box[0], 1.0)
    shift = float(
        np.hypot(_centre(last.box)[0] - _centre(obs.box)[0], _centre(last.box)[1] - _centre(obs.box)[1])
    )
    if distance > LINK_DISTANCE or shift > LINK_SHIFT * width:
        return None
    return distance


def _centre(box: Sequence[float]) -> tuple[float, float]:
    return ((box[0] + box[2]) / 2, (box[1] + box[3]) / 2)


def overlap(a: Sequence[float], b: Sequence[float]) -> float:
    """Intersection over union of two boxes (x0, y0, x1, y1)."""
    width = min(a[2], b[2]) - max(a[0], b[0])
    height = min(a[3], b[3]) - max(a[1], b[1])
    if width <= 0 or height <= 0:
        return 0.0
    inter = width * height
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return float(inter / union) if union > 0 else 0.0


def assign(
    identities: Mapping[str, np.ndarray],
    centroids: Mapping[str, np.ndarray],
    *,
    join_distance: float = JOIN_DISTANCE,
    group_distance: float = GROUP_DISTANCE,
) -> tuple[dict[str, str], list[list[str]]]:
    """Tracks without a person (`identities`, by track id) placed among the people there are
    (`centroids`, by person id): each joins the nearest person within `join_distance`; the rest
    are grouped among themselves by average linkage within `group_distance`, each group a new
    person to be named by the caller. Returns (track → existing person, new groups of tracks).
    Existing people are never merged or renamed here: that is the stability promise."""
    joined: dict[str, str] = {}
    ids = sorted(identities)
    left: list[str] = []
    if centroids and ids:
        people = sorted(centroids)
        matrix = np.stack([centroids[p] for p in people])
        for track in ids:
            distances = np.linalg.norm(matrix - identities[track], axis=1)
            nearest = int(np.argmin(distances))
            if distances[nearest] <= join_distance:
                joined[track] = people[nearest]
            else:
                left.append(track)
    else:
        left = ids
    return joined, group(left, identities, group_distance)


def group(tracks: Sequence[str], identities: Mapping[str, np.ndarray], distance: float) -> list[list[str]]:
    """Average-linkage clusters of tracks, cut at `distance`; each cluster's tracks sorted, the
    clusters in the order of their first track (so the same input makes the same new ids)."""
    if not tracks:
        return []
    if len(tracks) == 1:
        return [list(tracks)]
    from scipy.cluster.hierarchy import fcluster, linkage

    vectors = np.stack([identities[t] for t in tracks]).astype(np.float64)
    labels = fcluster(
        linkage(vectors, method="average", metric="euclidean"), t=distance, criterion="distance"
    )
    clusters: dict[int, list[str]] = {}
    for track, label in zip(tracks, labels, strict=True):
        clusters.setdefault(int(label), []).append(track)
    return sorted((sorted(c) for c in clusters.values()), key=lambda c: c[0])


def centroid(vectors: Sequence[np.ndarray]) -> np.ndarray:
    """The mean of some descriptors. Not scaled to length 1: dlib's distances (and so its 0.6 rule,
    and the thresholds here) are of the descriptors as they are, whose lengths vary (1.2-1.5 on
    small grey faces); scaling them shrinks every distance and merges people."""
    return np.mean(np.stack(vectors), axis=0).astype(np.float32)
