"""`archivist people …`: a curator lists, names, merges, splits and opts out people from the shell;
a mistake is one line and exit status 2, with nothing written."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pytest
from typer.testing import CliRunner

from actors.stage import registry
from catalog import schema
from catalog.iceberg import open_catalog, read
from catalog.settings import Settings
from jobs.cli import app
from jobs.commit import commit_tables
from jobs.people import refresh_people


def shot_rows(count: int) -> pa.Table:
    stamp = {"asset_id": "a", "run_id": "r1", "pipeline_version": "p1"}
    return pa.Table.from_pylist(
        [
            {"shot_id": schema.shot_id("a", i, i + 1), "shot_index": i, "start_s": i, "end_s": i + 1, **stamp}
            for i in range(count)
        ],
        schema=schema.SHOTS,
    )


@pytest.fixture
def archive(settings: Settings) -> Settings:
    """One asset, three shots: A, A, then B (descriptors far apart, pictures of one person close)."""
    rng = np.random.default_rng(5)
    people = {w: v / np.linalg.norm(v) for w, v in zip("AB", rng.normal(size=(2, 128)), strict=True)}
    shots = shot_rows(3)
    faces = []
    for shot, who in zip(shots["shot_id"].to_pylist(), "AAB", strict=True):
        seen = people[who] + rng.normal(scale=0.02, size=128)
        faces.append(
            {
                "shot_id": shot,
                "asset_id": "a",
                "face_index": 0,
                "box": [10.0, 10.0, 60.0, 70.0],
                "score": 0.9,
                "identity": (seen / np.linalg.norm(seen)).tolist(),
                "run_id": "r1",
                "pipeline_version": "p1",
            }
        )
    catalog = open_catalog(settings)
    tables = {
        "assets": pa.Table.from_pylist(
            [
                {
                    "asset_id": "a",
                    "uri": "/a.mp4",
                    "size_bytes": 1,
                    "status": "ok",
                    "run_id": "r1",
                    "pipeline_version": "p1",
                }
            ],
            schema=schema.ASSETS,
        ),
        "shots": shots,
        "faces": pa.Table.from_pylist(faces, schema=schema.FACES),
    }
    commit_tables(catalog, tables, [registry()[n] for n in ("segment", "faces")], ["a"], run_id="r1")
    refresh_people(catalog, run_id="r1")
    return settings


def people(args: list[str]) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, ["people", *args])
    return result.exit_code, result.stdout, result.stderr


def test_a_curator_names_merges_splits_and_excludes_from_the_shell(archive: Settings) -> None:
    code, listed, _ = people(["list", "--json"])
    assert code == 0
    found = json.loads(listed)
    assert [p["appearances"] for p in found] == [2, 1] and all(p["name"] is None for p in found)
    a, b = found[0]["person_id"], found[1]["person_id"]

    code, said, _ = people(["name", a, "Jane Doe", "--curator", "Ada"])
    assert code == 0 and "Jane Doe" in said
    code, said, _ = people(["merge", a, b, "--curator", "Ada", "--json"])
    assert code == 0 and json.loads(said)["value"] == a
    code, shown, _ = people(["show", b, "--json"])
    detail = json.loads(shown)
    assert (
        code == 0 and detail["person_id"] == a and detail["appearances"] == 3 and detail["name"] == "Jane Doe"
    )
    track = detail["appearance_list"][-1]["track_id"]
    code, said, _ = people(["split", a, track, "--curator", "Ada", "--json"])
    new = json.loads(said)["new_person_id"]
    assert code == 0 and new not in (a, b)
    code, said, _ = people(["exclude", new, "--curator", "Ada"])
    assert code == 0 and "excluded" in said
    code, listed, _ = people(["list", "--json"])
    by_id = {p["person_id"]: p for p in json.loads(listed)}
    assert by_id[a]["appearances"] == 2 and by_id[new]["excluded"] is True
    code, shown, _ = people(["show", a])
    assert code == 0 and "Jane Doe" in shown and "merge" in shown


@pytest.mark.parametrize(
    "args",
    [
        ["name", "P999999", "Jane Doe", "--curator", "Ada"],
        ["name", "{a}", "", "--curator", "Ada"],
        ["name", "{a}", "J" * 10_000, "--curator", "Ada"],
        ["merge", "{a}", "{a}", "--curator", "Ada"],
        ["split", "{a}", "not-a-track", "--curator", "Ada"],
        ["exclude", "nobody", "--curator", "Ada"],
        ["show", "nobody"],
    ],
)
def test_a_mistake_is_one_line_and_changes_nothing(archive: Settings, args: list[str]) -> None:
    a = json.loads(people(["list", "--json"])[1])[0]["person_id"]
    code, _, said = people([arg.replace("{a}", a) for arg in args])
    assert code == 2
    assert said.startswith("error:") and said.count("\n") == 1, said
    assert read(open_catalog(archive), "people_corrections").num_rows == 0
