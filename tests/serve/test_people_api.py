"""People through the service: every people route wants the token even on loopback, a curator's name
finds the person's shots in the search, an opted-out person is found nowhere, and bad input is a
4xx that changes nothing."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from catalog_helpers import SAMPLE, FakeText, asset_id, fake_image, write_catalog
from fastapi.testclient import TestClient

from actors.stage import registry
from catalog import schema
from catalog.iceberg import open_catalog, read
from catalog.settings import Settings
from exports import ebucore, pbcore
from exports.record import PERSON_SUBJECT, load_records, subjects
from indexes.query import QueryEngine
from jobs.commit import commit_tables
from jobs.people import refresh_people
from serve.app import create_app

TOKEN = "curator-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
CAST = {0: ["A"], 1: ["A"], 6: ["A", "B"], 10: ["B"]}
"""Shots of SAMPLE with faces: A in reel-a's first two shots and in reel-c, B in reel-c and reel-e."""


def faces_of(settings: Settings, ids: list[str]) -> None:
    """Commit faces with descriptors for the shots of CAST, then run the people step."""
    rng = np.random.default_rng(3)
    people = {w: v / np.linalg.norm(v) for w, v in zip("AB", rng.normal(size=(2, 128)), strict=True)}
    rows = []
    for shot, cast in CAST.items():
        for i, who in enumerate(cast):
            seen = people[who] + rng.normal(scale=0.02, size=128)
            rows.append(
                {
                    "shot_id": ids[shot],
                    "asset_id": asset_id(SAMPLE[shot].asset),
                    "face_index": i,
                    "box": [10.0 + 80 * i, 10.0, 60.0 + 80 * i, 70.0],
                    "score": 0.9,
                    "identity": (seen / np.linalg.norm(seen)).tolist(),
                    "model": "test",
                    "run_id": "r2",
                    "pipeline_version": "p1",
                }
            )
    catalog = open_catalog(settings)
    faces = pa.Table.from_pylist(rows, schema=schema.FACES)
    assets = sorted({asset_id(s.asset) for s in SAMPLE})
    commit_tables(catalog, {"faces": faces}, [registry()["faces"]], assets, run_id="r2")
    refresh_people(catalog, run_id="r2")


@pytest.fixture
def archive(tmp_path: Path) -> tuple[Settings, list[str]]:
    settings = Settings(home=str(tmp_path / "home"), catalog_url=None, api_token=TOKEN)
    ids = write_catalog(settings, SAMPLE)
    faces_of(settings, ids)
    return settings, ids


@pytest.fixture
def client(archive) -> TestClient:
    engine = QueryEngine(archive[0], encode_text=FakeText(), embed_image=fake_image("car"))
    return TestClient(create_app(archive[0], engine=engine))


def person_in(client: TestClient, shot_id: str) -> str:
    for person in client.get("/people", headers=AUTH).json()["people"]:
        detail = client.get(f"/people/{person['person_id']}", headers=AUTH).json()
        if shot_id in {a["shot_id"] for a in detail["appearance_list"]}:
            return str(person["person_id"])
    raise AssertionError(f"nobody appears in {shot_id}")


def searched(client: TestClient, words: str, **headers: str) -> list[str]:
    response = client.get("/search", params={"q": words, "top": 13, "fold": "false"}, headers=headers)
    assert response.status_code == 200, response.text
    return [h["shot_id"] for h in response.json()["hits"]]


def test_people_routes_need_the_token_even_on_loopback(archive, client: TestClient) -> None:
    for method, path, body in [
        ("get", "/people", None),
        ("get", "/people/P000001", None),
        ("get", "/people/P000001/shots", None),
        ("post", "/people/P000001/name", {"curator": "Ada", "name": "Jane Doe"}),
        ("post", "/people/P000001/exclude", {"curator": "Ada"}),
    ]:
        bare = client.request(method, path, json=body)
        assert bare.status_code == 401, (path, bare.text)
        wrong = client.request(method, path, json=body, headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 403, (path, wrong.text)
    untokened = TestClient(
        create_app(
            Settings(home=archive[0].home, catalog_url=None, api_token=None),
            engine=QueryEngine(archive[0], encode_text=FakeText()),
        )
    )
    refused = untokened.get("/people", headers=AUTH)
    assert refused.status_code == 403 and "ARCHIVIST_API_TOKEN" in refused.json()["error"]
    assert read(open_catalog(archive[0]), "people_corrections").num_rows == 0


def test_a_name_finds_the_persons_shots_and_an_opt_out_hides_them(archive, client: TestClient) -> None:
    _, ids = archive
    people = client.get("/people", headers=AUTH).json()["people"]
    assert len(people) == 2 and all(p["name"] is None for p in people)  # nobody is named by the machine
    jane = person_in(client, ids[0])
    named = client.post(f"/people/{jane}/name", json={"curator": "Ada", "name": "Jane Doe"}, headers=AUTH)
    assert named.status_code == 201 and named.json()["correction"]["before"] is None
    hers = {ids[0], ids[1], ids[6]}

    assert set(searched(client, "jane doe", **AUTH)[:3]) == hers
    assert set(searched(client, "Jane Doe")[:3]) != hers  # no token: no face search
    found = client.get("/people", params={"name": "JANE  DOE"}, headers=AUTH).json()["people"]
    assert [p["person_id"] for p in found] == [jane]
    assert set(client.get(f"/people/{jane}/shots", headers=AUTH).json()["shots"]) == hers
    detail = client.get(f"/people/{jane}", headers=AUTH).json()
    assert detail["name"] == "Jane Doe" and detail["appearances"] == 3
    crop_from = client.get(detail["representatives"][0]["keyframe_url"])  # the picture to crop
    assert crop_from.status_code == 200 and crop_from.headers["content-type"] == "image/jpeg"
    assert [h["action"] for h in detail["history"]] == ["name"]

    reel_c = asset_id(SAMPLE[6].asset)
    (record,) = load_records(open_catalog(archive[0]), [reel_c])
    assert ("Jane Doe", PERSON_SUBJECT) in subjects(record)
    assert "Jane Doe" in pbcore.to_bytes(record).decode() and "Jane Doe" in ebucore.to_bytes(record).decode()

    out = client.post(f"/people/{jane}/exclude", json={"curator": "Ada"}, headers=AUTH)
    assert out.status_code == 201
    (record,) = load_records(open_catalog(archive[0]), [reel_c])
    assert all(s.people == [] for s in record.shots)  # an opted-out person's name reaches no export
    assert "Jane Doe" not in pbcore.to_bytes(record).decode() + ebucore.to_bytes(record).decode()
    assert set(searched(client, "Jane Doe", **AUTH)[:3]) != hers
    assert client.get(f"/people/{jane}/shots", headers=AUTH).json() == {
        "person_id": jane,
        "excluded": True,
        "shots": [],
    }
    listed = client.get("/people", params={"include_excluded": "false"}, headers=AUTH).json()["people"]
    assert jane not in {p["person_id"] for p in listed}
    assert client.get("/people", params={"name": "Jane Doe"}, headers=AUTH).json()["people"] == []


def test_merge_and_split_through_the_api(archive, client: TestClient) -> None:
    _, ids = archive
    a, b = person_in(client, ids[0]), person_in(client, ids[10])
    merged = client.post(f"/people/{a}/merge", json={"curator": "Ada", "other": b}, headers=AUTH)
    assert merged.status_code == 201, merged.text
    assert client.get(f"/people/{b}", headers=AUTH).json()["person_id"] == a
    detail = client.get(f"/people/{a}", headers=AUTH).json()
    assert detail["appearances"] == 5 and detail["merged"] == [b]
    moved = [x["track_id"] for x in detail["appearance_list"] if x["shot_id"] == ids[10]]
    split = client.post(f"/people/{a}/split", json={"curator": "Ada", "track_ids": moved}, headers=AUTH)
    assert split.status_code == 201, split.text
    new = split.json()["correction"]["new_person_id"]
    assert new not in (a, b)
    assert client.get(f"/people/{new}/shots", headers=AUTH).json()["shots"] == [ids[10]]


@pytest.mark.parametrize(
    ("path", "body", "status"),
    [
        ("/people/P999999/name", {"curator": "Ada", "name": "Jane Doe"}, 404),
        ("/people/{a}/name", {"curator": "Ada", "name": ""}, 422),
        ("/people/{a}/name", {"curator": "Ada", "name": "J" * 10_000}, 422),
        ("/people/{a}/name", {"curator": "Ada", "name": "J" * 201}, 422),
        ("/people/{a}/name", {"curator": "", "name": "Jane Doe"}, 422),
        ("/people/{a}/name", {"curator": " \t ", "name": "Jane Doe"}, 422),
        ("/people/{a}/merge", {"curator": "Ada", "other": "{a}"}, 409),
        ("/people/{a}/merge", {"curator": "Ada", "other": "P999999"}, 404),
        ("/people/{a}/split", {"curator": "Ada", "track_ids": []}, 422),
        ("/people/{a}/split", {"curator": "Ada", "track_ids": ["nope"]}, 409),
        ("/people/{a}/split", {"curator": "Ada", "track_ids": ["  "]}, 422),
        ("/people/nobody/exclude", {"curator": "Ada"}, 404),
    ],
)
def test_bad_input_is_a_4xx_and_changes_nothing(archive, client: TestClient, path, body, status) -> None:
    a = person_in(client, archive[1][0])
    body = {k: (v.replace("{a}", a) if isinstance(v, str) else v) for k, v in body.items()}
    response = client.post(path.replace("{a}", a), json=body, headers=AUTH)
    assert response.status_code == status, response.text
    assert set(response.json()) == {"error", "detail"} and response.json()["error"]
    assert read(open_catalog(archive[0]), "people_corrections").num_rows == 0


ECMA_SPACE = r"\t\n\v\f\r \xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\ufeff"
"""What `\\s` means in a JSON Schema pattern (ECMAScript's WhiteSpace and LineTerminator), which
Python's `\\s` is not: a client's validator reads the pattern this way."""


def test_the_schema_refuses_every_name_the_catalog_counts_as_blank(client: TestClient) -> None:
    """A client that follows the published schema is never refused for a blank name: every
    character Python strips (U+001C-U+001F and U+0085 too, which JSON Schema's white space is not)
    fails the schema's pattern, read as a JSON Schema validator reads it."""
    schemas = client.get("/openapi.json").json()["components"]["schemas"]
    pattern = schemas["NameIn"]["properties"]["name"]["pattern"]
    as_ecma = pattern.replace(r"\S", f"[^{ECMA_SPACE}]").replace(r"\s", ECMA_SPACE)
    blank = [chr(i) for i in range(0x110000) if chr(i).isspace()]
    assert "\x1c" in blank and not [c for c in blank if re.search(as_ecma, c)]
    assert re.search(as_ecma, " Jane ")
