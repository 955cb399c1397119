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


SIZE = 256 * 400
"""The stand-in access copy: bytes 0..255, 400 times."""


def test_media_carry_cors_and_expose_the_range_headers(client: TestClient) -> None:
    origin = {"Origin": "https://viewer.example.org"}
    for path in (f"/media/video/{REEL_C}", f"/iiif/{REEL_C}/manifest.json", f"/vtt/{REEL_C}/captions.vtt"):
        response = client.get(path, headers=origin)
        assert response.status_code == 200 and response.headers["access-control-allow-origin"] == "*", path
        exposed = {h.strip().lower() for h in response.headers["access-control-expose-headers"].split(",")}
        assert {"content-range", "accept-ranges", "content-length"} <= exposed
    video = client.get(f"/media/video/{REEL_C}", headers=origin)
    assert video.headers["accept-ranges"] == "bytes" and int(video.headers["content-length"]) == SIZE
    # the dashboard's media are behind its session cookie: not for other sites
    dashboard = client.get(f"/dashboard/media/video/{REEL_C}", headers=origin)
    assert dashboard.status_code == 200 and "access-control-allow-origin" not in dashboard.headers


def test_media_answer_ranges_with_206_and_the_right_bytes(client: TestClient) -> None:
    path = f"/media/video/{REEL_C}"
    for header, first, last in (
        ("bytes=0-0", 0, 0),
        ("bytes=300-", 300, SIZE - 1),
        ("bytes=-10", SIZE - 10, SIZE - 1),
    ):
        response = client.get(path, headers={"Range": header})
        assert response.status_code == 206, header
        assert response.content == (bytes(range(256)) * 400)[first : last + 1]
        assert response.headers["content-range"] == f"bytes {first}-{last}/{SIZE}"
        assert response.headers["content-length"] == str(last - first + 1)
        assert response.headers["access-control-allow-origin"] == "*"


def test_a_range_past_the_end_is_a_416_a_viewer_can_read(client: TestClient) -> None:
    response = client.get(f"/media/video/{REEL_C}", headers={"Range": f"bytes={SIZE}-"})
    assert response.status_code == 416 and response.headers["content-range"] == f"bytes */{SIZE}"
    assert response.headers["access-control-allow-origin"] == "*" and response.json()["detail"] == {
        "size": SIZE
    }
    missing = client.get(f"/media/video/{'0' * 64}")
    assert missing.status_code == 404 and missing.headers["access-control-allow-origin"] == "*"


def test_cors_preflights_for_ranged_and_authorised_reads_are_answered(client: TestClient) -> None:
    response = client.options(
        f"/media/video/{REEL_C}",
        headers={
            "Origin": "https://viewer.example.org",
            "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "range, authorization",
        },
    )
    assert response.status_code == 204 and response.headers["access-control-allow-origin"] == "*"
    allowed = {h.strip().lower() for h in response.headers["access-control-allow-headers"].split(",")}
    assert {"range", "authorization"} <= allowed and "GET" in response.headers["access-control-allow-methods"]


def test_an_asset_without_an_access_copy_is_painted_with_its_source_as_served(client: TestClient) -> None:
    """Not its `file://` URI, which no viewer on a web page may load."""
    pytest.importorskip("iiif_prezi3", reason=IIIF_INSTALL)
    reel_a = asset_id("reel-a")
    document = client.get(f"/iiif/{reel_a}/manifest.json").json()
    body = document["items"][0]["items"][0]["items"][0]["body"]
    assert body["id"] == f"http://testserver/media/source/{reel_a}" and body["format"] == "video/mp4"
    # the catalog's source URI does not exist on this machine: a 404 saying so, readable by the viewer
    source = client.get(f"/media/source/{reel_a}")
    assert source.status_code == 404 and "gone from where the catalog says" in source.json()["error"]
    assert source.headers["access-control-allow-origin"] == "*"
    assert client.get(f"/media/source/{'0' * 64}").status_code == 404


@pytest.mark.parametrize("document", ["pbcore.xml", "ebucore.xml", "mets.xml"])
def test_the_xml_documents_are_served_as_export_writes_them(client: TestClient, document: str) -> None:
    from lxml import etree

    answer = client.get(f"/exports/{REEL_C}/{document}")
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("application/xml")
    assert answer.headers["access-control-allow-origin"] == "*"
    root = etree.fromstring(answer.content)
    assert REEL_C in answer.text and root.tag.endswith(("pbcoreDescriptionDocument", "ebuCoreMain", "mets"))


def test_an_unknown_document_or_asset_is_a_404_that_names_what_there_is(client: TestClient) -> None:
    unknown = client.get(f"/exports/{REEL_C}/mods.xml")
    assert unknown.status_code == 404 and "pbcore.xml, ebucore.xml, mets.xml" in unknown.text
    assert client.get("/exports/no-such-asset/pbcore.xml").status_code == 404
