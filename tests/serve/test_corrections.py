"""Curators' corrections through the service: the API and the dashboard's form keep them, and every
read (hits, filters, the shot's detail and page, exports) shows the curator's caption and tags."""

from __future__ import annotations

from pathlib import Path

import pytest
from catalog_helpers import SAMPLE, FakeText, fake_image, write_catalog
from fastapi.testclient import TestClient
from lxml import etree

from catalog.settings import Settings
from exports import ebucore, iiif, pbcore, webvtt
from exports.record import load_records
from indexes.query import QueryEngine
from serve.app import create_app

TOKEN = "curator-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def archive(tmp_path: Path) -> tuple[Settings, list[str]]:
    settings = Settings(home=str(tmp_path / "home"), catalog_url=None, api_token=TOKEN)
    return settings, write_catalog(settings, SAMPLE)


@pytest.fixture
def client(archive) -> TestClient:
    engine = QueryEngine(archive[0], encode_text=FakeText(), embed_image=fake_image("car"))
    return TestClient(create_app(archive[0], engine=engine))


def error_of(response) -> str:
    body = response.json()
    assert set(body) == {"error", "detail"}, body
    return body["error"]


def correct(client: TestClient, shot_id: str, **body) -> dict:
    response = client.post(f"/shots/{shot_id}/corrections", json=body, headers=AUTH)
    assert response.status_code == 201, response.text
    return response.json()


def test_a_corrected_caption_and_tags_reach_hits_filters_and_the_shot(client: TestClient, archive) -> None:
    _, ids = archive
    stored = correct(
        client,
        ids[0],
        curator="Ada Archivist",
        caption="A retriever running on the lawn of the old rectory.",
        add_tags=["rectory"],
        remove_tags=["golden retriever"],
        note="from the can's label",
    )["corrections"]
    assert [c["field"] for c in stored] == ["caption", "tag_removed", "tag_added"]
    assert stored[0]["before"] == "A shot of a dog." and stored[0]["curator"] == "Ada Archivist"
    assert stored[1]["before"] == "golden retriever" and stored[2]["before"] == ""

    hits = client.get("/search", params={"q": "dog", "top": 5, "fold": "false"}).json()["hits"]
    hit = next(h for h in hits if h["shot_id"] == ids[0])
    assert hit["caption"] == "A retriever running on the lawn of the old rectory."

    found = client.get("/search", params={"q": "dog", "tag": "rectory", "top": 5}).json()["hits"]
    assert [h["shot_id"] for h in found] == [ids[0]]
    carrying = client.get(
        "/search", params={"q": "dog", "tag": "golden retriever", "top": 5, "fold": "false"}
    )
    assert ids[0] not in {h["shot_id"] for h in carrying.json()["hits"]}
    assert {ids[1], ids[3]} <= {h["shot_id"] for h in carrying.json()["hits"]}  # others keep theirs

    shot = client.get(f"/shots/{ids[0]}").json()
    assert shot["caption"] == "A retriever running on the lawn of the old rectory."
    assert shot["machine_caption"] == "A shot of a dog."
    assert shot["caption_corrected"]["curator"] == "Ada Archivist"
    assert shot["tags"] == ["rectory"]
    assert [(c["field"], c["value"], c["before"]) for c in shot["corrections"]] == [
        ("caption", "A retriever running on the lawn of the old rectory.", "A shot of a dog."),
        ("tag_removed", "golden retriever", "golden retriever"),
        ("tag_added", "rectory", ""),
    ]
    untouched = client.get(f"/shots/{ids[1]}").json()
    assert untouched["caption_corrected"] is None and untouched["corrections"] == []


def test_the_history_keeps_each_value_before_and_the_latest_wins(client: TestClient, archive) -> None:
    _, ids = archive
    correct(client, ids[5], curator="Ada", caption="A black and white car.")
    correct(client, ids[5], curator="Ben", caption="A 1950s Citroën DS, black and white.")
    correct(client, ids[5], curator="Ben", add_tags=["citroën"])
    correct(client, ids[5], curator="Ada", remove_tags=["Citroën"])  # a label's case does not matter
    shot = client.get(f"/shots/{ids[5]}").json()
    assert shot["caption"] == "A 1950s Citroën DS, black and white."
    assert shot["caption_corrected"]["curator"] == "Ben"
    assert [(c["curator"], c["before"]) for c in shot["corrections"] if c["field"] == "caption"] == [
        ("Ada", "A shot of a car."),
        ("Ben", "A black and white car."),
    ]
    assert shot["tags"] == [] and shot["corrections"][-1]["before"] == "citroën"


def test_bad_corrections_are_refused_with_one_message_and_change_nothing(client: TestClient, archive) -> None:
    _, ids = archive
    url = f"/shots/{ids[0]}/corrections"
    unknown = client.post(
        f"/shots/{'0' * 32}/corrections", json={"curator": "Ada", "caption": "x"}, headers=AUTH
    )
    assert unknown.status_code == 404 and "is not in the catalog" in error_of(unknown)
    cases = {
        "caption: String should have at least 1 character": {"curator": "Ada", "caption": ""},
        "caption: String should match pattern": {"curator": "Ada", "caption": "   "},
        "curator: Field required": {"caption": "A dog."},
        "curator: String should have at most 80 characters": {"curator": "A" * 81, "caption": "A dog."},
        "nothing to correct": {"curator": "Ada"},
    }
    for message, body in cases.items():
        response = client.post(url, json=body, headers=AUTH)
        assert response.status_code == 422, (body, response.text)
        assert message in error_of(response), (message, error_of(response))
    assert client.post(url, json={"curator": "Ada", "caption": "x"}).status_code == 401
    wrong = {"Authorization": "Bearer not-it"}
    assert client.post(url, json={"curator": "Ada", "caption": "x"}, headers=wrong).status_code == 403
    assert client.get(f"/shots/{ids[0]}").json()["corrections"] == []


def test_the_dashboard_form_corrects_and_the_page_shows_who_and_the_history(
    client: TestClient, archive
) -> None:
    _, ids = archive
    url = f"/dashboard/shots/{ids[2]}/corrections"
    form = {
        "curator": "Ada Archivist",
        "caption": "A beagle asleep by the fire.",
        "add_tags": "fireside, hearth",
        "remove_tags": "beagle",
        "note": "",
    }
    response = client.post(url, data=form, follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"].endswith(f"/dashboard/shots/{ids[2]}")
    page = client.get(response.headers["location"]).text
    assert "A beagle asleep by the fire." in page
    assert 'id="caption-corrected"' in page and "corrected by Ada Archivist" in page
    assert 'id="corrections"' in page and "A shot of a dog." in page  # the history: before → after
    assert "hearth" in page and "fireside" in page
    explore = client.get("/dashboard/explore", params={"tag": "hearth"}).text
    assert ids[2] in explore
    assert ids[2] not in client.get("/dashboard/explore", params={"tag": "beagle"}).text

    unchanged = {"curator": "Ada", "caption": "A beagle asleep by the fire.", "add_tags": "dog"}
    assert client.post(url, data=unchanged, follow_redirects=False).status_code == 303
    history = client.get(f"/shots/{ids[2]}").json()["corrections"]
    assert [c["field"] for c in history].count("caption") == 1  # the caption left as it was is no change

    refused = client.post(url, data={"curator": "", "caption": "Another."}, follow_redirects=False)
    assert refused.status_code == 422 and "the curator&#39;s name is required" in refused.text
    cross = client.post(
        url, data={"curator": "Eve", "caption": "Pwned."}, headers={"Origin": "https://evil.example"},
        follow_redirects=False,
    )  # fmt: skip
    assert cross.status_code == 403
    assert client.get(f"/shots/{ids[2]}").json()["caption"] == "A beagle asleep by the fire."
    missing = client.post(f"/dashboard/shots/{'0' * 32}/corrections", data={"curator": "Ada", "caption": "x"})
    assert missing.status_code == 404


def test_exports_carry_the_curators_caption_marked_as_theirs(client: TestClient, archive) -> None:
    settings, ids = archive
    correct(
        client, ids[8], curator="Ada Archivist", caption="Brighton beach, August 1958.", add_tags=["pier"]
    )
    (record,) = load_records(_catalog(settings), [_asset_of(client, ids[8])])
    shot = next(s for s in record.shots if s.shot["shot_id"] == ids[8])
    assert shot.caption is not None and shot.caption["caption"] == "Brighton beach, August 1958."
    assert shot.correction is not None and shot.correction["curator"] == "Ada Archivist"
    assert "pier" in {t["label"] for t in shot.tags}

    pb = pbcore.to_bytes(record).decode()
    assert "Brighton beach, August 1958." in pb and "corrected by Ada Archivist on " in pb
    assert 'subjectType="curator tag"' in pb
    ebu = ebucore.to_bytes(record).decode()
    assert "Brighton beach, August 1958." in ebu and "corrected by Ada Archivist on " in ebu
    assert "Brighton beach, August 1958." in webvtt.render(record, "captions").decode()
    manifest = iiif.manifest(record, "http://archive.example").model_dump_json()
    assert "Brighton beach, August 1958." in manifest
    root = etree.fromstring(pbcore.to_bytes(record))
    assert root is not None
    other = next(s for s in record.shots if s.shot["shot_id"] != ids[8])
    assert other.correction is None


def _catalog(settings: Settings):
    from catalog.iceberg import open_catalog

    return open_catalog(settings)


def _asset_of(client: TestClient, shot_id: str) -> str:
    return str(client.get(f"/shots/{shot_id}").json()["asset_id"])
