"""The exports as `archivist serve` answers them: IIIF manifests and collection, WebVTT tracks,
CORS for viewers on other sites, and the ranged access copy a manifest names."""

from __future__ import annotations

import io
import json

import pytest
import webvtt
from catalog_helpers import SAMPLE, FakeText, asset_id, fake_image, write_catalog
from fastapi.testclient import TestClient

from catalog.settings import Settings
from exports.formats import IIIF_INSTALL
from indexes.query import QueryEngine
from serve.app import create_app

REEL_C = asset_id("reel-c")


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> TestClient:
    settings = Settings(home=str(tmp_path_factory.mktemp("exports-http") / "home"), catalog_url=None)
    write_catalog(settings, SAMPLE, access_copies=["reel-c"])
    engine = QueryEngine(settings, encode_text=FakeText(), embed_image=fake_image("car"))
    return TestClient(create_app(settings, engine=engine))


def test_manifest_is_served_with_cors_and_loads_into_iiif_prezi3(client: TestClient) -> None:
    iiif_prezi3 = pytest.importorskip("iiif_prezi3", reason=IIIF_INSTALL)
    response = client.get(f"/iiif/{REEL_C}/manifest.json")
    assert response.status_code == 200 and response.headers["access-control-allow-origin"] == "*"
    assert response.headers["content-type"].startswith("application/ld+json")
    document = response.json()
    assert document["id"] == f"http://testserver/iiif/{REEL_C}/manifest.json"
    loaded = iiif_prezi3.Manifest(**{k: v for k, v in document.items() if k != "@context"})
    assert loaded.items[0].duration == 60.0
    assert len(loaded.structures[0].items) == 3  # reel-c's three shots
    video = str(loaded.items[0].items[0].items[0].body.id)
    assert video == f"http://testserver/media/video/{REEL_C}"
    ranged = client.get(video.removeprefix("http://testserver"), headers={"Range": "bytes=10-19"})
    assert ranged.status_code == 206 and ranged.content == bytes(range(10, 20))
    assert ranged.headers["content-range"] == f"bytes 10-19/{256 * 400}"


def test_collection_lists_every_asset(client: TestClient) -> None:
    pytest.importorskip("iiif_prezi3", reason=IIIF_INSTALL)
    response = client.get("/iiif/collection.json")
    assert response.status_code == 200 and response.headers["access-control-allow-origin"] == "*"
    items = response.json()["items"]
    assert len(items) == 5 and {i["type"] for i in items} == {"Manifest"}


def test_vtt_tracks_are_served_and_parse(client: TestClient) -> None:
    response = client.get(f"/vtt/{REEL_C}/chapters.vtt")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/vtt")
    assert response.headers["access-control-allow-origin"] == "*"
    cues = webvtt.from_buffer(io.StringIO(response.text))
    assert [c.identifier for c in cues] == ["shot-1", "shot-2", "shot-3"]


def test_unknown_asset_or_track_is_a_404_in_the_api_shape(client: TestClient) -> None:
    missing = client.get("/vtt/nope/chapters.vtt")
    assert missing.status_code == 404 and "'nope' is not in the catalog" in missing.json()["error"]
    assert client.get(f"/vtt/{REEL_C}/subtitles.vtt").status_code == 404
    assert set(json.loads(client.get("/vtt/nope/captions.vtt").text)) == {"error", "detail"}


def test_without_iiif_prezi3_iiif_is_a_503_saying_what_to_install(client: TestClient, monkeypatch) -> None:
    import exports.http

    monkeypatch.setattr(exports.http, "iiif_available", lambda: False)
    response = client.get(f"/iiif/{REEL_C}/manifest.json")
    assert response.status_code == 503 and IIIF_INSTALL in response.json()["error"]
