"""People across the archive: tracks clustered into people whose ids never change across runs, and
curators' names, merges, splits and opt-outs that no run undoes; bad input changes nothing."""

from __future__ import annotations

import hashlib

import numpy as np
import pyarrow as pa
import pytest
from test_catalog import asset_rows, shot_rows

from actors.stage import registry
from catalog import schema
from catalog.iceberg import open_catalog, read
from catalog.people import (
    MAX_NAME_CHARS,
    PeopleError,
    UnknownPersonError,
    exclude_person,
    find_people,
    list_people,
    merge_people,
    name_person,
    person_detail,
    roster,
    split_person,
)
from catalog.settings import Settings
from jobs.commit import commit_tables
from jobs.people import refresh_people, shot_tracks

STAGES = [registry()[name] for name in ("segment", "faces")]
RNG = np.random.default_rng(7)
FACES = {
    who: (v / np.linalg.norm(v)).astype(np.float32)
    for who, v in zip("ABCD", RNG.normal(size=(4, 128)), strict=True)
}
"""Four people's descriptors: random unit vectors are ~1.4 apart, as different faces are."""


def seen(who: str, rng: np.random.Generator) -> list[float]:
    """A picture of `who`: their descriptor with noise (pictures of one person ~0.3 apart)."""
    v = FACES[who] + rng.normal(scale=0.02, size=128)
    return (v / np.linalg.norm(v)).astype(np.float32).tolist()


def run_tables(asset: str, cast: list[list[str]], run_id: str, seed: int = 0) -> dict[str, pa.Table]:
    """A run's rows of one asset: a shot per entry of `cast`, with a face per person in it."""
    rng = np.random.default_rng(seed)
    shots = shot_rows(asset, len(cast), run_id)
    ids = shots["shot_id"].to_pylist()
    faces = [
        {
            "shot_id": shot,
            "asset_id": asset,
            "face_index": i,
            "box": [10.0 + 100 * i, 10.0, 70.0 + 100 * i, 80.0],
            "score": 0.9,
            "identity": seen(who, rng),
            "model": "centerface+dlib",
            "run_id": run_id,
            "pipeline_version": "p1",
        }
        for shot, people in zip(ids, cast, strict=True)
        for i, who in enumerate(people)
    ]
    return {
        "assets": asset_rows(asset, run_id=run_id),
        "shots": shots,
        "faces": pa.Table.from_pylist(faces, schema=schema.FACES),
    }


def committed(catalog, asset: str, cast: list[list[str]], run_id: str, seed: int = 0) -> dict[str, int]:
    commit_tables(catalog, run_tables(asset, cast, run_id, seed), STAGES, [asset], run_id=run_id)
    return refresh_people(catalog, run_id=run_id)


def people_by_truth(catalog, asset_cast: dict[str, list[list[str]]]) -> dict[str, set[str]]:
    """Which person ids each true identity got."""
    found = roster(catalog)
    shots = {r["shot_id"]: r for r in read(catalog, "shots").to_pylist()}
    truth: dict[str, set[str]] = {}
    for track, row in found.tracks.items():
        shot = shots[row["shot_id"]]
        who = asset_cast[row["asset_id"]][shot["shot_index"]][int(row["face_indexes"][0])]
        truth.setdefault(who, set()).add(found.person_of[track])
    return truth


def test_tracks_become_people_and_a_new_run_adds_without_renumbering(settings: Settings) -> None:
    catalog = open_catalog(settings)
    cast = {"a": [["A"], ["A", "B"], ["B"]], "b": [["C", "A"], ["D"]]}
    first = committed(catalog, "a", cast["a"], "r1")
    assert first["tracks"] == 4 and first["new_people"] == 2
    ids_before = {who: ids for who, ids in people_by_truth(catalog, {"a": cast["a"]}).items()}
    assert all(len(ids) == 1 for ids in ids_before.values())

    second = committed(catalog, "b", cast["b"], "r2", seed=1)
    assert second["kept"] == 4 and second["joined"] == 1 and second["new_people"] == 2
    ids_after = people_by_truth(catalog, cast)
    assert all(len(ids) == 1 for ids in ids_after.values()), ids_after
    assert ids_after["A"] == ids_before["A"] and ids_after["B"] == ids_before["B"]
    assert len(set().union(*ids_after.values())) == 4
    assert {p.person_id for p in list_people(catalog)} == set().union(*ids_after.values())


def test_a_name_merge_split_and_opt_out_survive_a_rerun(settings: Settings) -> None:
    catalog = open_catalog(settings)
    cast = [["A"], ["A"], ["B"], ["C"]]
    committed(catalog, "a", cast, "r1")
    who = {w: next(iter(ids)) for w, ids in people_by_truth(catalog, {"a": cast}).items()}
    name_person(catalog, who["A"], "  Jane   Doe ", curator="Ada")
    merge_people(catalog, who["A"], who["B"], curator="Ada", note="same woman, other light")
    detail = person_detail(catalog, who["A"])
    assert detail.person.name == "Jane Doe" and detail.person.appearances == 3
    assert person_detail(catalog, who["B"]).person.person_id == who["A"]  # a merged id leads on
    split = split_person(catalog, who["A"], [detail.appearances[-1].track_id], curator="Ada")
    exclude_person(catalog, who["C"], curator="Ada")

    # A re-run with changed detector settings renumbers the shot's faces: every correction stands
    tables = run_tables("a", cast, "r2", seed=3)
    faces = tables["faces"].to_pylist()
    for row in faces:
        row["box"] = [v + 2.0 for v in row["box"]]
    tables["faces"] = pa.Table.from_pylist(faces, schema=schema.FACES)
    commit_tables(catalog, tables, STAGES, ["a"], run_id="r2")
    refresh_people(catalog, run_id="r2")

    jane = person_detail(catalog, who["A"])
    assert jane.person.name == "Jane Doe" and jane.person.appearances == 2
    assert [p.person_id for p in find_people(catalog, "jane doe")] == [who["A"]]
    assert person_detail(catalog, split["new_person_id"]).person.appearances == 1
    assert find_people(catalog, "Jane Doe")[0].merged == (who["B"],)
    found = roster(catalog)
    assert found.is_excluded(who["C"]) and not found.visible(who["C"])
    assert all(who["C"] != p.person_id for p in list_people(catalog, include_excluded=False))
    assert "Jane Doe" in {n for names in found.names_by_shot().values() for n in names}


@pytest.mark.parametrize(
    ("act", "error"),
    [
        (lambda c, p: name_person(c, "P999999", "Jane Doe", curator="Ada"), UnknownPersonError),
        (lambda c, p: name_person(c, p, "", curator="Ada"), PeopleError),
        (lambda c, p: name_person(c, p, "   ", curator="Ada"), PeopleError),
        (lambda c, p: name_person(c, p, "J" * 10_000, curator="Ada"), PeopleError),
        (lambda c, p: name_person(c, p, "Jane Doe", curator=""), PeopleError),
        (lambda c, p: merge_people(c, p, p, curator="Ada"), PeopleError),
        (lambda c, p: merge_people(c, p, "P999999", curator="Ada"), UnknownPersonError),
        (lambda c, p: split_person(c, p, [], curator="Ada"), PeopleError),
        (lambda c, p: split_person(c, p, ["not-a-track"], curator="Ada"), PeopleError),
        (lambda c, p: split_person(c, p, [t for t in roster(c).members[p]], curator="Ada"), PeopleError),
        (lambda c, p: exclude_person(c, "nobody", curator="Ada"), UnknownPersonError),
    ],
)
def test_bad_input_is_refused_and_changes_nothing(settings: Settings, act, error) -> None:
    catalog = open_catalog(settings)
    committed(catalog, "a", [["A"], ["A"]], "r1")
    (person,) = roster(catalog).people()
    with pytest.raises(error) as raised:
        act(catalog, person)
    assert "\n" not in str(raised.value) and len(str(raised.value)) < 200
    assert read(catalog, "people_corrections").num_rows == 0
    assert MAX_NAME_CHARS < 10_000


def test_a_shots_faces_on_its_keyframes_link_into_one_track_per_appearance() -> None:
    """A long take's keyframes: two people side by side, walking right; the second leaves after
    keyframe 1; on keyframe 2 a look-alike of the first appears across the frame (too far to be her)."""
    rng = np.random.default_rng(11)
    rows = []
    for keyframe, cast in enumerate([["A", "B"], ["A", "B"], ["A", "A"]]):
        for i, who in enumerate(cast):
            x = 400.0 if keyframe == 2 and i == 1 else 20.0 + 100 * i + 15 * keyframe
            rows.append(
                {
                    "shot_id": "s",
                    "asset_id": "a",
                    "keyframe_index": keyframe,
                    "face_index": i,
                    "box": [x, 20.0, x + 60, 90.0],
                    "score": 0.9 - 0.1 * i,
                    "identity": seen(who, rng),
                }
            )
    (tracks,) = shot_tracks(pa.Table.from_pylist(rows)).values()
    observed = sorted([(o.keyframe_index, o.face_index) for o in t.observations] for t in tracks)
    assert observed == [[(0, 0), (1, 0), (2, 0)], [(0, 1), (1, 1)], [(2, 1)]]
    assert all(t.identity is not None and t.identity.shape == (128,) for t in tracks)


def test_track_frames_follow_a_face_and_find_who_passes_between_keyframes(settings: Settings) -> None:
    """One shot: A on the keyframe (2 s) and both track frames (1 s, 3 s), moving right; B seen on
    the 3 s track frame only. A is one track seen thrice, named as before track frames existed; B is
    an appearance of their own with no box to crop (their picture is not kept)."""
    catalog = open_catalog(settings)
    rng = np.random.default_rng(3)
    tables = run_tables("a", [["A"]], "r1")
    shot = tables["shots"]["shot_id"][0].as_py()
    pictures = [(None, 0, 1.0, ["A"]), (0, None, 2.0, ["A"]), (None, 1, 3.0, ["A", "B"])]
    sightings = [
        {
            "shot_id": shot,
            "asset_id": "a",
            "keyframe_index": keyframe,
            "track_frame": frame,
            "time_s": at,
            "face_index": i,
            "box": [10.0 + 20 * at + 200 * i, 10.0, 70.0 + 20 * at + 200 * i, 80.0],
            "score": 0.9 if frame is None else 0.95,
            "identity": seen(who, rng),
            "model": "centerface+dlib",
            "run_id": "r1",
            "pipeline_version": "p1",
        }
        for keyframe, frame, at, cast in pictures
        for i, who in enumerate(cast)
    ]
    tables["face_sightings"] = pa.Table.from_pylist(sightings, schema=schema.FACE_SIGHTINGS)
    commit_tables(catalog, tables, STAGES, ["a"], run_id="r1")
    assert refresh_people(catalog, run_id="r1")["tracks"] == 2

    # the name this track had when a shot's tracks were linked from its keyframe 0's faces alone
    old_track = hashlib.sha256(f"{shot}:0:0".encode()).hexdigest()[:32]

    tracks = {r["track_id"]: r for r in read(catalog, "face_tracks").to_pylist()}
    followed, passing = tracks[old_track], next(r for t, r in tracks.items() if t != old_track)
    assert followed["seen_s"] == [1.0, 2.0, 3.0] and followed["keyframe_indexes"] == [0]
    assert followed["box"] == [50.0, 10.0, 110.0, 80.0] and followed["keyframe_index"] == 0
    assert passing["seen_s"] == [3.0] and passing["box"] is None
    assert followed["person_id"] != passing["person_id"]
    detail = person_detail(catalog, passing["person_id"])
    assert [a.seen_s for a in detail.appearances] == [(3.0,)] and detail.representatives == []
