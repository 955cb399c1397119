"""Voices through the service: every voice route wants the token even on loopback, a curator's name
of a voice finds the shots it speaks in (for a token holder only, as a person's name does), a merge
takes the other voice's shots along, an opted-out voice is found by name nowhere, and bad input is
a 4xx that changes nothing."""

from __future__ import annotations

from pathlib import Path

import pytest
from catalog_helpers import asset_id
from fastapi.testclient import TestClient
from voice_helpers import service, voiced_archive

from catalog.iceberg import open_catalog, read
from catalog.settings import Settings
from serve.people import SOME_TEXT

TOKEN = "curator-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def archive(tmp_path: Path) -> tuple[Settings, list[str]]:
    return voiced_archive(tmp_path / "home", TOKEN)


def client_for(settings: Settings) -> TestClient:
    return service(settings)


@pytest.fixture
def client(archive) -> TestClient:
    return client_for(archive[0])


def named_first(client: TestClient, words: str, **headers: str) -> set[str]:
    """The shots the search puts first because the words are a name (scored 1)."""
    response = client.get("/search", params={"q": words, "top": 13, "fold": "false"}, headers=headers)
    assert response.status_code == 200, response.text
    return {h["shot_id"] for h in response.json()["hits"] if h["score"] == 1.0}


def corrections(settings: Settings) -> int:
    return read(open_catalog(settings), "people_corrections").num_rows


def test_voice_routes_need_the_token_even_on_loopback(archive, client: TestClient) -> None:
    for method, path, body in [
        ("get", "/voices", None),
        ("get", "/voices/V000001", None),
        ("post", "/voices/V000001/name", {"curator": "Ada", "name": "Jane Doe"}),
        ("post", "/voices/V000001/merge", {"curator": "Ada", "other": "V000002"}),
        ("post", "/voices/V000001/exclude", {"curator": "Ada"}),
    ]:
        bare = client.request(method, path, json=body)
        assert bare.status_code == 401, (path, bare.text)
        wrong = client.request(method, path, json=body, headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 403, (path, wrong.text)
    untokened = client_for(Settings(home=archive[0].home, catalog_url=None, api_token=None))
    refused = untokened.get("/voices", headers=AUTH)
    assert refused.status_code == 403 and "the voices API is disabled" in refused.json()["error"]
    assert corrections(archive[0]) == 0


def test_a_voice_named_is_found_where_it_speaks_and_a_merge_brings_the_others_shots(
    archive, client: TestClient
) -> None:
    _, ids = archive
    listed = client.get("/voices", headers=AUTH).json()["voices"]
    assert [(v["name"], v["assets"], v["seconds"]) for v in listed] == [(None, 2, 0.9), (None, 1, 0.4)]
    jane, other = (v["voice_id"] for v in listed)  # the most heard first
    detail = client.get(f"/voices/{jane}", headers=AUTH).json()
    assert sorted(
        (s["asset_id"], s["speaker"], s["turns"][0]["start_s"]) for s in detail["speaker_list"]
    ) == sorted([(asset_id("reel-c"), "S1", 5.0), (asset_id("reel-e"), "S1", 13.5)])

    named = client.post(f"/voices/{jane}/name", json={"curator": "Ada", "name": "Jane Doe"}, headers=AUTH)
    assert named.status_code == 201 and named.json()["correction"]["before"] is None
    assert named_first(client, "jane  DOE", **AUTH) == {ids[5], ids[12]}  # the shots her turns overlap
    assert named_first(client, "Jane Doe") == set()  # no token: no voice search

    merged = client.post(f"/voices/{jane}/merge", json={"curator": "Ada", "other": other}, headers=AUTH)
    assert merged.status_code == 201, merged.text
    assert named_first(client, "Jane Doe", **AUTH) == {ids[0], ids[5], ids[12]}
    gone = client.get(f"/voices/{other}", headers=AUTH).json()  # a merged-away id leads to the voice
    assert gone["voice_id"] == jane and gone["merged"] == [other] and gone["speakers"] == 3
    assert [h["action"] for h in gone["history"]] == ["name", "merge"]

    out = client.post(f"/voices/{other}/exclude", json={"curator": "Ada"}, headers=AUTH)
    assert out.status_code == 201
    assert named_first(client, "Jane Doe", **AUTH) == set()  # an opted-out voice is never found by name
    assert [v["excluded"] for v in client.get("/voices", headers=AUTH).json()["voices"]] == [True]
    back = client.post(f"/voices/{jane}/exclude", json={"curator": "Ada", "excluded": False}, headers=AUTH)
    assert back.status_code == 201
    assert named_first(client, "Jane Doe", **AUTH) == {ids[0], ids[5], ids[12]}


@pytest.mark.parametrize(
    ("path", "body", "status"),
    [
        ("/voices/V999999/name", {"curator": "Ada", "name": "Jane Doe"}, 404),
        ("/voices/V000001/name", {"curator": "Ada", "name": ""}, 422),
        ("/voices/V000001/name", {"curator": "Ada", "name": " \t "}, 422),
        ("/voices/V000001/name", {"curator": "Ada", "name": "J" * 10_000}, 422),
        ("/voices/V000001/name", {"curator": "", "name": "Jane Doe"}, 422),
        ("/voices/V000001/name", {"curator": "Ada", "name": "Jane Doe", "age": 40}, 422),
        ("/voices/V000001/merge", {"curator": "Ada", "other": "V000001"}, 409),
        ("/voices/V000001/merge", {"curator": "Ada", "other": "V999999"}, 404),
        ("/voices/V000001/merge", {"curator": "Ada"}, 422),
        ("/voices/nobody/exclude", {"curator": "Ada"}, 404),
    ],
)
def test_bad_input_is_a_4xx_and_changes_nothing(archive, client: TestClient, path, body, status) -> None:
    response = client.post(path, json=body, headers=AUTH)
    assert response.status_code == status, response.text
    assert set(response.json()) == {"error", "detail"} and response.json()["error"]
    assert corrections(archive[0]) == 0


def test_an_unknown_voice_is_a_404(client: TestClient) -> None:
    response = client.get("/voices/V999999", headers=AUTH)
    assert response.status_code == 404 and "no voice 'V999999'" in response.json()["error"]


def test_the_schema_states_the_catalogs_limits(client: TestClient) -> None:
    """A client learns the rules from the document: what it allows, the catalog keeps."""
    body = client.get("/openapi.json").json()["components"]["schemas"]["VoiceNameIn"]
    limits = {"minLength": 1, "maxLength": 200, "pattern": SOME_TEXT}
    assert {k: body["properties"]["name"][k] for k in limits} == limits
    assert {k: body["properties"]["curator"][k] for k in limits} == {**limits, "maxLength": 80}
    assert body["additionalProperties"] is False and body["required"] == ["curator", "name"]
